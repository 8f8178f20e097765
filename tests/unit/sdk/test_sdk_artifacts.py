"""Uploads: content-addressed keys whose digest is the store's, skipped when stored, large arrays in
slabs; inputs of calls (refs, results, paths, tables) turned into refs; tables read back."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from neuromesh.common.v1.artifact_pb2 import ArtifactRef
from neuromesh.sdk import artifacts as artifacts_module
from neuromesh.sdk.artifacts import (Artifacts, array_key, array_sha256, file_sha256, input_key, media_type_of,
                                     parse_table, table_to_csv)
from neuromesh.sdk.errors import InvalidArgument, NotFound
from neuromesh.sdk.results import Artifact
from services.common.store import _little_endian_bytes

DTYPES = ["bool", "int8", "uint16", "int32", "int64", "uint64", "float16", "float32", "float64", "complex64"]


@pytest.mark.parametrize("dtype", DTYPES)
def test_the_array_digest_is_the_stores_whatever_the_layout_and_byte_order(dtype):
    rng = np.random.default_rng(7)
    array = (rng.normal(size=(6, 5, 4)) * 50).astype(dtype)
    # what ArtifactStore.put_array records as the array's sha256
    expected = hashlib.sha256(_little_endian_bytes(np.ascontiguousarray(array))).hexdigest()
    assert array_sha256(array) == expected
    assert array_sha256(np.asfortranarray(array)) == expected
    assert array_sha256(array.astype(array.dtype.newbyteorder(">"))) == expected
    assert array_sha256(array, slab_bytes=array[0].nbytes) == expected   # hashed slab by slab


def test_keys_tell_apart_equal_bytes_of_other_shapes_and_dtypes():
    zeros = np.zeros(4, "float32")
    keys = {array_key(array_sha256(a), a.dtype, a.shape) for a in (zeros, zeros.reshape(2, 2), zeros.view("int32"))}
    assert len(keys) == 3
    assert all(k.startswith(f"inputs/{array_sha256(zeros)}-") for k in keys)


def test_an_array_is_uploaded_once_under_its_content_key(artifacts, store):
    array = np.arange(12.0).reshape(3, 4)
    ref = artifacts.upload_array(array)
    assert ref.key == array_key(array_sha256(array), "float64", (3, 4)) and ref.sha256 == array_sha256(array)
    again = artifacts.upload_array(array.copy(order="F"))
    assert again == ref and store.puts == [ref.key]
    assert (artifacts.stats.uploaded, artifacts.stats.skipped, artifacts.stats.bytes_uploaded) == (1, 1, 96)


def test_a_large_array_goes_in_whole_chunk_slabs_and_gets_the_same_digest(store, monkeypatch):
    monkeypatch.setattr(artifacts_module, "SLAB_BYTES", 2**20)
    artifacts = Artifacts(store, large_array_bytes=2**20)
    array = np.random.default_rng(0).integers(0, 255, size=(4096, 2304), dtype=np.uint8)  # chunks of 2048 rows
    ref = artifacts.upload_array(array)
    assert ref.sha256 == array_sha256(array) and ref.key == array_key(ref.sha256, "uint8", (4096, 2304))
    assert [block for _, block in store.blocks] == [(0, 2048), (2048, 4096)]
    np.testing.assert_array_equal(store.get_array(ref), array)
    assert artifacts.upload_array(array) == ref and artifacts.stats.skipped == 1


def test_strings_and_objects_are_refused_before_anything_is_sent(artifacts, store):
    for bad in (np.array(["a", "b"]), np.array([{}, []], dtype=object)):
        with pytest.raises(InvalidArgument, match="dtype") as caught:
            artifacts.upload_array(bad, field="unit_ids")
        assert caught.value.field == "unit_ids"
    assert store.puts == []


def test_files_and_bytes_go_to_inputs_slash_their_sha256(artifacts, store, tmp_path):
    path = tmp_path / "sub-01_dwi.nii.gz"
    path.write_bytes(b"\x1f\x8b" + bytes(range(200)))
    ref = artifacts.upload_file(path)
    assert ref.key == input_key(file_sha256(path)) == f"inputs/{hashlib.sha256(path.read_bytes()).hexdigest()}"
    assert ref.media_type == "application/x-nifti"
    assert artifacts.upload_bytes(path.read_bytes()) == ref and store.puts == [ref.key]


def test_a_missing_path_says_how_to_name_a_stored_artifact(artifacts):
    with pytest.raises(InvalidArgument) as caught:
        artifacts.file_input("no/such/file.nwb", field="nwb")
    assert caught.value.field == "nwb" and caught.value.reason == "FILE_NOT_FOUND"
    assert "s3://bucket/key" in caught.value.message


def test_inputs_that_name_stored_artifacts_are_not_uploaded(artifacts, store):
    ref = ArtifactRef(bucket="neuromesh", key="derived/x/counts", sha256="ab" * 32)
    assert artifacts.array_input(ref, field="features").key == "derived/x/counts"
    assert artifacts.array_input(Artifact(ref, artifacts), field="features").sha256 == "ab" * 32
    assert artifacts.array_input("s3://neuromesh/derived/x/counts", field="features").key == "derived/x/counts"
    with pytest.raises(InvalidArgument, match="this client's bucket") as caught:
        artifacts.array_input("s3://other-lab/derived/x/counts", field="features")
    assert caught.value.reason == "WRONG_BUCKET"
    with pytest.raises(InvalidArgument, match="without a key"):
        artifacts.array_input(ArtifactRef(), field="features")
    assert store.puts == []


def test_an_npy_path_is_uploaded_as_an_array_memory_mapped(artifacts, tmp_path):
    array = np.arange(20, dtype=np.int16).reshape(4, 5)
    np.save(tmp_path / "counts.npy", array)
    ref = artifacts.array_input(tmp_path / "counts.npy", field="features")
    assert ref.key == array_key(array_sha256(array), "int16", (4, 5))
    with pytest.raises(InvalidArgument, match="not a .npy file"):
        artifacts.array_input(tmp_path / "counts.csv", field="features")


def test_a_kilosort_folder_gets_one_prefix_for_its_contents(artifacts, store, tmp_path):
    (tmp_path / "spike_times.npy").write_bytes(b"times")
    (tmp_path / "spike_clusters.npy").write_bytes(b"clusters")
    (tmp_path / "pc_features.npy").write_bytes(b"large and not needed")
    prefix = artifacts.upload_folder(tmp_path, ["spike_times.npy", "spike_clusters.npy", "params.py"])
    assert sorted(store.puts) == [f"{prefix}/spike_clusters.npy", f"{prefix}/spike_times.npy"]
    assert artifacts.upload_folder(tmp_path, ["spike_times.npy", "spike_clusters.npy"]) == prefix
    (tmp_path / "spike_times.npy").write_bytes(b"other times")
    assert artifacts.upload_folder(tmp_path, ["spike_times.npy", "spike_clusters.npy"]) != prefix


def test_tables_go_as_csv_from_columns_rows_or_frames_and_come_back():
    pandas = pytest.importorskip("pandas")
    columns = {"pre": [1, 2], "post": np.array([2, 3]), "weight": [0.5, 1.5]}
    csv = table_to_csv(columns)
    assert csv == b"pre,post,weight\n1,2,0.5\n2,3,1.5\n"
    assert table_to_csv([{"pre": 1, "post": 2, "weight": 0.5}, {"pre": 2, "post": 3, "weight": 1.5}]) == csv
    assert table_to_csv(pandas.DataFrame(columns)) == csv
    plain = parse_table(csv, as_frame=False)
    assert plain["pre"].dtype.kind == "i" and plain["weight"].tolist() == [0.5, 1.5]
    assert list(parse_table(csv).columns) == ["pre", "post", "weight"]
    with pytest.raises(InvalidArgument, match="different lengths"):
        table_to_csv({"pre": [1, 2], "post": [1]}, field="synapses")


def test_downloads_refuse_refs_of_another_bucket(artifacts):
    with pytest.raises(InvalidArgument, match="bucket") as caught:
        artifacts.get_bytes(ArtifactRef(bucket="other", key="x"))
    assert caught.value.reason == "WRONG_BUCKET"


def test_store_errors_come_out_as_sdk_errors(artifacts):
    with pytest.raises(NotFound) as caught:
        artifacts.stat("inputs/nothing-here")
    assert caught.value.reason == "ARTIFACT_NOT_FOUND"


@pytest.mark.parametrize("name, media_type", [("a.nwb", "application/x-nwb"), ("stack.TIFF", "image/tiff"),
                                              ("edges.csv", "text/csv"), ("x.nii", "application/x-nifti"),
                                              ("blob", "application/octet-stream")])
def test_media_types_by_suffix(name, media_type):
    assert media_type_of(name) == media_type
