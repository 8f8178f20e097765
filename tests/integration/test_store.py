"""The artifact store against a real S3 server (SeaweedFS ``weed mini``), through the minio SDK."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import socket
import time
import urllib.request

import numpy as np
import pytest
import zarr
from zarr.abc.store import OffsetByteRequest, RangeByteRequest, SuffixByteRequest
from zarr.core.buffer import default_buffer_prototype
from zarr.core.buffer.cpu import Buffer

from neuromesh.common.v1.artifact_pb2 import ArtifactRef
from neuromesh.stack.processes import free_port
from services.common.errors import (AlreadyExists, DataLoss, FailedPrecondition, InvalidArgument, NotFound,
                                    Unavailable)
from services.common.settings import Settings
from services.common.store import (ARRAY_MEDIA_TYPE, BYTES_MEDIA_TYPE, JSON_MEDIA_TYPE, ArtifactStore,
                                   choose_chunks)
from services.common.zarr_minio import MinioZarrStore

pytestmark = pytest.mark.integration

DTYPES = ["float32", "float64", "int32", "uint8", "uint64", "bool"]


def settings_for(server, bucket: str) -> Settings:
    return Settings(s3_endpoint=server.endpoint, s3_access_key=server.access_key,
                    s3_secret_key=server.secret_key, bucket=bucket)


@pytest.fixture
def store(s3_server, bucket_name) -> ArtifactStore:
    store = ArtifactStore.from_settings(settings_for(s3_server, bucket_name))
    store.ensure_bucket()
    return store


def random_array(shape, dtype, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt == np.bool_:
        return rng.random(shape) < 0.5
    if dt.kind == "f":
        return rng.standard_normal(shape).astype(dt)
    info = np.iinfo(dt)
    return rng.integers(info.min, info.max, size=shape, dtype=dt, endpoint=True)


def sha256_of(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def count_gets(monkeypatch, store: ArtifactStore) -> list[str]:
    """Record the object names of every GET the store's client sends from now on."""
    names: list[str] = []
    original = store.client.get_object

    def get_object(bucket, name, *args, **kwargs):
        names.append(name)
        return original(bucket, name, *args, **kwargs)

    monkeypatch.setattr(store.client, "get_object", get_object)
    return names


# --- arrays ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_array_round_trip_keeps_values_dtype_and_digest(store, dtype):
    array = random_array((37, 23, 11), dtype, seed=DTYPES.index(dtype))
    ref = store.put_array(f"arrays/{dtype}", array, chunks=(8, 8, 8))  # 5 x 3 x 2 chunks, ragged edges

    assert ref.bucket == store.bucket and ref.key == f"arrays/{dtype}"
    assert ref.media_type == ARRAY_MEDIA_TYPE
    assert list(ref.shape) == [37, 23, 11] and ref.dtype == dtype
    assert ref.size_bytes == array.nbytes
    assert ref.sha256 == sha256_of(array)
    assert ref.etag
    assert store.stat(ref.key) == ref

    back = store.get_array(ref, dtype=dtype, verify_sha256=True)
    assert back.dtype == np.dtype(dtype) and back.shape == array.shape
    np.testing.assert_array_equal(back, array)
    assert back.flags.writeable


def test_array_digest_is_independent_of_chunking_and_memory_layout(store):
    array = random_array((40, 30), "float64")
    a = store.put_array("layout/a", array, chunks=(7, 30))
    b = store.put_array("layout/b", np.asfortranarray(array), chunks=(40, 4))
    c = store.put_array("layout/c", array[::-1][::-1])
    assert a.sha256 == b.sha256 == c.sha256 == sha256_of(array)


def test_default_chunks_and_codecs(store):
    labels = np.repeat(np.arange(64, dtype=np.uint64), 2**15).reshape(256, 128, 64)   # 16 MiB of ids
    ref = store.put_array("defaults/labels", labels)
    z = store.open_array(ref)
    assert z.chunks == choose_chunks(labels.shape, 8)
    codecs = json.loads(store.get_bytes("defaults/labels/zarr.json"))["codecs"]
    assert [c["name"] for c in codecs] == ["bytes", "zstd", "crc32c"]   # integers: compressed
    stored = sum(o.size for o in store.client.list_objects(store.bucket, prefix="defaults/labels/", recursive=True))
    assert stored < labels.nbytes / 20
    np.testing.assert_array_equal(store.get_array(ref), labels)

    floats = store.put_array("defaults/rates", random_array((100, 50), "float32"))
    codecs = json.loads(store.get_bytes(f"{floats.key}/zarr.json"))["codecs"]
    assert [c["name"] for c in codecs] == ["bytes", "crc32c"]           # floats: checksum only


@pytest.mark.parametrize("array", [np.float64(3.5), np.zeros((0, 4), dtype=bool), np.arange(5, dtype=np.int32)],
                         ids=["0-d", "empty", "1-d"])
def test_edge_shapes_round_trip(store, array):
    ref = store.put_array("edge", array)
    back = store.get_array(ref)
    assert back.shape == np.shape(array) and back.dtype == np.asarray(array).dtype
    np.testing.assert_array_equal(back, array)
    assert ref.sha256 == sha256_of(np.asarray(array))


def test_read_block_equals_numpy_slice_and_fetches_only_touched_chunks(store, monkeypatch):
    volume = random_array((64, 128, 160), "float32")                      # 5 MiB
    ref = store.put_array("em/raw", volume, chunks=(16, 32, 32))          # 4 x 4 x 5 = 80 chunks
    gets = count_gets(monkeypatch, store)

    block = store.read_block(ref, (slice(10, 30), slice(40, 70), slice(5, 40)))

    np.testing.assert_array_equal(block, volume[10:30, 40:70, 5:40])
    touched = {f"em/raw/c/{i}/{j}/{k}" for i in (0, 1) for j in (1, 2) for k in (0, 1)}
    assert {g for g in gets if "/c/" in g} == touched                   # 8 of 80 chunks
    assert len(gets) == len(touched) + 1                                 # + zarr.json, nothing else

    gets.clear()
    np.testing.assert_array_equal(store.read_block(ref, (12, slice(None), -1)), volume[12, :, -1])
    assert len([g for g in gets if "/c/" in g]) == 4                     # one chunk row along axis 1


def test_open_array_streams_chunk_rows(store):
    volume = random_array((48, 20, 20), "int32")
    ref = store.put_array("stream/vol", volume, chunks=(16, 20, 20))
    z = store.open_array(ref, dtype="int32")
    assert isinstance(z, zarr.Array) and z.read_only
    total = sum(int(z[i:i + 16].astype(np.int64).sum()) for i in range(0, 48, 16))
    assert total == int(volume.astype(np.int64).sum())


def test_block_writer_in_c_order_hashes_while_writing(store, monkeypatch):
    volume = random_array((50, 40, 30), "float32")
    writer = store.create_array("blocks/in-order", volume.shape, "float32", chunks=(8, 16, 16))
    for z in range(0, 50, 7):                        # slabs not aligned with the 8-deep chunks
        writer[z:z + 7] = volume[z:z + 7]
    gets = count_gets(monkeypatch, store)
    ref = writer.finalize()
    assert not [g for g in gets if "/c/" in g]       # the digest needed no read-back
    assert ref.sha256 == sha256_of(volume)
    assert list(ref.shape) == [50, 40, 30] and ref.size_bytes == volume.nbytes
    np.testing.assert_array_equal(store.get_array(ref, verify_sha256=True), volume)
    assert writer.finalize() == ref                  # idempotent


def test_block_writer_out_of_order_tiles_get_the_same_digest(store):
    volume = random_array((30, 45), "uint64")
    writer = store.create_array("blocks/tiles", volume.shape, np.uint64, chunks=(10, 10))
    tiles = [(slice(y, y + 13), slice(x, x + 17)) for y in range(0, 30, 13) for x in range(0, 45, 17)]
    for tile in reversed(tiles):
        writer[tile] = volume[tile]
    ref = writer.finalize()
    assert ref.sha256 == sha256_of(volume)
    np.testing.assert_array_equal(store.get_array(ref), volume)


def test_block_writer_names_the_region_never_written(store):
    volume = random_array((40, 30), "int32")
    writer = store.create_array("blocks/forgot-last", volume.shape, "int32", chunks=(8, 30))
    for z in range(0, 32, 8):                        # off by one block: rows 32:40 never written
        writer[z:z + 8] = volume[z:z + 8]
    with pytest.raises(FailedPrecondition, match=r"\[32:40, 0:30\]") as info:
        writer.finalize()
    assert info.value.reason == "ARRAY_INCOMPLETE"
    with pytest.raises(FailedPrecondition) as info:   # readers see an unfinished array
        store.get_array("blocks/forgot-last")
    assert info.value.reason == "ARTIFACT_INCOMPLETE"
    writer[32:] = volume[32:]
    assert writer.finalize().sha256 == sha256_of(volume)


def test_block_writer_takes_python_numbers_and_broadcasts(store):
    writer = store.create_array("blocks/filled", (6, 4), "uint8", chunks=(3, 4))
    writer[...] = 7
    writer[2] = np.arange(4, dtype=np.uint8)        # an int index: one row, written over the fill
    expected = np.full((6, 4), 7, np.uint8)
    expected[2] = np.arange(4)
    assert writer.finalize().sha256 == sha256_of(expected)
    np.testing.assert_array_equal(store.get_array("blocks/filled"), expected)
    with pytest.raises(InvalidArgument, match="cannot write 300 into the uint8 array"):
        store.create_array("blocks/overflow", (2,), "uint8")[...] = 300


def test_block_writer_refuses_wrong_blocks_and_cleans_up_on_error(store):
    with pytest.raises(RuntimeError, match="segmentation crashed"):
        with store.create_array("blocks/aborted", (20, 20), "uint8", chunks=(10, 10)) as writer:
            writer[:10] = np.ones((10, 20), np.uint8)
            with pytest.raises(InvalidArgument, match=r"shape \(10, 21\) does not fit selection of shape \(10, 20\)"):
                writer[10:] = np.ones((10, 21), np.uint8)
            with pytest.raises(InvalidArgument, match="cannot write a float64 block into the uint8 array"):
                writer[10:] = np.ones((10, 20))
            raise RuntimeError("segmentation crashed")
    assert not store.exists("blocks/aborted")        # the key is free for the retry
    store.put_array("blocks/aborted", np.zeros((20, 20), np.uint8))


# --- bytes, JSON, files -----------------------------------------------------------------------


def test_bytes_round_trip_with_digest_in_metadata(store):
    data = np.random.default_rng(1).bytes(100_003)
    ref = store.put_bytes("blobs/model.pt", data, media_type="application/x-pytorch")
    assert ref.sha256 == hashlib.sha256(data).hexdigest()
    assert ref.size_bytes == len(data) and ref.media_type == "application/x-pytorch" and ref.etag
    assert store.get_bytes(ref) == data == store.get_bytes("blobs/model.pt")
    head = store.client.stat_object(store.bucket, "blobs/model.pt")
    assert head.metadata["x-amz-meta-sha256"] == ref.sha256
    assert store.stat("blobs/model.pt") == ref
    assert store.put_bytes("blobs/raw", b"x").media_type == BYTES_MEDIA_TYPE


def test_json_round_trip_is_canonical(store):
    value = {"bin_ms": 20, "lags": [0, 1, 2], "name": "décodage", "nested": {"b": None, "a": True}}
    ref = store.put_json("jobs/1/params.json", value)
    assert ref.media_type == JSON_MEDIA_TYPE
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
    assert ref.sha256 == hashlib.sha256(canonical).hexdigest()
    assert store.get_json(ref) == value
    # key order does not change the content, so content-addressed re-runs match
    again = store.put_json("jobs/1/params.json", dict(reversed(list(value.items()))), if_exists="return_existing")
    assert again == ref
    with pytest.raises(InvalidArgument, match="not JSON"):
        store.put_json("jobs/1/nan.json", {"x": float("nan")})


def test_file_round_trip_multipart(store, tmp_path):
    source = tmp_path / "recording.nwb"
    data = np.random.default_rng(2).bytes(2 * 16 * 2**20 + 3)   # three 16 MiB parts
    source.write_bytes(data)
    ref = store.put_file("inputs/recording.nwb", source, media_type="application/x-nwb")
    assert ref.sha256 == hashlib.sha256(data).hexdigest() and ref.size_bytes == len(data)
    assert "-" in ref.etag                                       # a multipart upload's etag
    target = tmp_path / "out" / "copy.nwb"
    target.parent.mkdir()
    got = store.get_file(ref, target)
    assert target.read_bytes() == data
    assert got.sha256 == ref.sha256 and got.media_type == "application/x-nwb"
    assert [p.name for p in target.parent.iterdir()] == ["copy.nwb"]   # no temporary left behind


# --- never overwritten ---------------------------------------------------------------------------


def test_overwrite_is_refused_naming_bucket_and_key(store, tmp_path):
    store.put_bytes("taken/blob", b"one")
    store.put_array("taken/array", np.zeros(3, np.float32))
    (tmp_path / "f").write_bytes(b"two")
    attempts = [
        lambda: store.put_bytes("taken/blob", b"two"),
        lambda: store.put_json("taken/blob", {}),
        lambda: store.put_file("taken/blob", tmp_path / "f"),
        lambda: store.put_array("taken/blob", np.ones(3)),
        lambda: store.put_array("taken/array", np.ones(3, np.float32)),
        lambda: store.put_bytes("taken/array", b"x"),
        lambda: store.create_array("taken/array", (3,), "float32"),
        lambda: store.presigned_put_url("taken/blob"),
    ]
    for attempt in attempts:
        with pytest.raises(AlreadyExists, match=f"s3://{store.bucket}/taken/"):
            attempt()
    assert store.get_bytes("taken/blob") == b"one"
    np.testing.assert_array_equal(store.get_array("taken/array"), np.zeros(3, np.float32))


def test_content_addressed_put_returns_the_existing_artifact(store):
    array = random_array((20, 20), "float32")
    first = store.put_array("cas/result", array)
    assert store.put_array("cas/result", array.copy(), if_exists="return_existing") == first
    with pytest.raises(AlreadyExists, match="exists with sha256") as info:
        store.put_array("cas/result", array + 1, if_exists="return_existing")
    assert info.value.reason == "ARTIFACT_CONFLICT"

    blob = store.put_bytes("cas/blob", b"abc")
    assert store.put_bytes("cas/blob", b"abc", if_exists="return_existing") == blob
    with pytest.raises(AlreadyExists):
        store.put_bytes("cas/blob", b"abd", if_exists="return_existing")


# --- errors ------------------------------------------------------------------------------------


def test_missing_key_is_not_found(store, tmp_path):
    for read in (store.get_bytes, store.get_json, store.get_array, store.stat, store.open_array,
                 lambda k: store.read_block(k, (0,)), lambda k: store.get_file(k, tmp_path / "x"),
                 store.presigned_get_url):
        with pytest.raises(NotFound, match=f"s3://{store.bucket}/no/such/key does not exist") as info:
            read("no/such/key")
        assert info.value.reason == "ARTIFACT_NOT_FOUND"
        assert info.value.metadata == {"bucket": store.bucket, "key": "no/such/key"}
    assert not store.exists("no/such/key")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("region", [None, "us-east-1"], ids=["region-asked", "region-set"])
def test_missing_bucket_is_not_found(s3_server, bucket_name, region):
    # with no region the SDK first asks the bucket's location; with one it goes straight to the
    # object, whose bare 404 on HEAD it reads as "no such key"
    settings = settings_for(s3_server, bucket_name).model_copy(update={"s3_region": region})
    store = ArtifactStore.from_settings(settings)   # the bucket was never created
    for call in (lambda: store.get_bytes("k"), lambda: store.stat("k"), lambda: store.get_array("k"),
                 lambda: store.put_bytes("k", b"x"), lambda: store.put_array("k", np.zeros(2)),
                 lambda: store.list(), lambda: store.exists("k")):
        with pytest.raises(NotFound, match=f"bucket '{bucket_name}' does not exist") as info:
            call()
        assert info.value.reason == "BUCKET_NOT_FOUND"


def test_wrong_dtype_names_expected_and_actual(store):
    ref = store.put_array("typed", np.zeros((4, 4), np.float32))
    with pytest.raises(InvalidArgument, match="holds float32, not the expected uint8") as info:
        store.get_array(ref, dtype="uint8")
    assert info.value.metadata["expected"] == "uint8" and info.value.metadata["actual"] == "float32"
    with pytest.raises(InvalidArgument, match="cannot be stored as an array artifact"):
        store.put_array("strings", np.array(["a", "b"]))


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "a//b", "dir/"])
def test_invalid_keys_are_refused_before_any_request(store, key):
    with pytest.raises(InvalidArgument, match="invalid key"):
        store.put_bytes(key, b"x")
    with pytest.raises(InvalidArgument, match="invalid key"):
        store.get_array(key)


def test_truncated_object_is_data_loss(store, tmp_path):
    data = b"spike times " * 1000
    ref = store.put_bytes("lossy/spikes.bin", data)
    # truncate behind the store's back, keeping the metadata as a truncating copy would
    store.client.put_object(store.bucket, "lossy/spikes.bin", io.BytesIO(data[:-100]), len(data) - 100,
                            metadata={"sha256": ref.sha256})
    with pytest.raises(DataLoss, match=f"s3://{store.bucket}/lossy/spikes.bin"):
        store.get_bytes("lossy/spikes.bin")
    with pytest.raises(DataLoss, match="has 11900 bytes, the ref says 12000"):
        store.get_bytes(ref)
    with pytest.raises(DataLoss):
        store.get_file(ref, tmp_path / "spikes.bin")
    assert not list(tmp_path.iterdir())              # no partial file left

    # a plain overwrite loses the metadata too; the ref still catches it
    json_ref = store.put_json("lossy/params.json", {"a": 1})
    store.client.put_object(store.bucket, "lossy/params.json", io.BytesIO(b'{"a":2}'), 7)
    with pytest.raises(DataLoss, match="expected " + json_ref.sha256):
        store.get_json(json_ref)


def test_truncated_or_missing_chunk_is_data_loss(store):
    for dtype in ("float32", "uint8"):               # checksum only, and zstd + checksum
        key = f"lossy/vol-{dtype}"
        array = random_array((32, 32), dtype)
        ref = store.put_array(key, array, chunks=(16, 16))
        chunk = f"{key}/c/1/0"
        response = store.client.get_object(store.bucket, chunk)
        raw = response.read()
        response.close()
        response.release_conn()
        store.client.put_object(store.bucket, chunk, io.BytesIO(raw[:-7]), len(raw) - 7)
        with pytest.raises(DataLoss, match=f"s3://{store.bucket}/{key} has a corrupt or truncated chunk"):
            store.get_array(ref)
        with pytest.raises(DataLoss):
            store.read_block(ref, (slice(16, 20), slice(0, 4)))
        np.testing.assert_array_equal(store.read_block(ref, (slice(0, 16),)), array[:16])   # intact chunks still read

        store.client.remove_object(store.bucket, chunk)     # a lost chunk is not zeros
        with pytest.raises(DataLoss, match=f"chunk s3://{store.bucket}/{chunk} is missing"):
            store.get_array(ref)


def test_unreachable_endpoint_fails_fast(bucket_name):
    store = ArtifactStore.from_settings(Settings(s3_endpoint=f"127.0.0.1:{free_port()}", bucket=bucket_name))
    start = time.monotonic()
    with pytest.raises(Unavailable, match="object store unreachable"):
        store.get_bytes("k")
    assert time.monotonic() - start < 5


def test_silent_server_times_out(bucket_name):
    # accepts connections (the kernel does, from the backlog) but never answers
    with socket.create_server(("127.0.0.1", 0), backlog=16) as silent:
        port = silent.getsockname()[1]
        store = ArtifactStore.from_settings(Settings(s3_endpoint=f"127.0.0.1:{port}", bucket=bucket_name),
                                            read_timeout_s=0.5, retries=1)
        start = time.monotonic()
        with pytest.raises(Unavailable):
            store.get_bytes("k")
        assert time.monotonic() - start < 5


# --- presigned URLs and listing ---------------------------------------------------------------------


def test_presigned_upload_and_download_with_plain_http(store):
    data = np.random.default_rng(3).bytes(300_000)
    url = store.presigned_put_url("uploads/stack.tif")
    with urllib.request.urlopen(urllib.request.Request(url, data=data, method="PUT"), timeout=10) as response:
        assert response.status == 200
    assert store.get_bytes("uploads/stack.tif") == data
    ref = store.stat("uploads/stack.tif")
    assert ref.size_bytes == len(data) and ref.sha256 == ""   # uploaded outside the store: no digest

    url = store.presigned_get_url("uploads/stack.tif")
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == data

    store.put_array("uploads/array", np.zeros(4))
    with pytest.raises(InvalidArgument, match="no single download URL"):
        store.presigned_get_url("uploads/array")


def test_listing_by_prefix_shows_arrays_as_one_key(store):
    store.put_json("jobs/1/params.json", {})
    store.put_array("jobs/1/rates", np.zeros((10, 10)), chunks=(5, 5))
    store.put_bytes("jobs/1/logs/out.txt", b"")
    store.put_bytes("jobs/10/params.json", b"{}")
    store.put_bytes("other", b"")
    assert store.list("jobs/1/") == ["jobs/1/logs/out.txt", "jobs/1/params.json", "jobs/1/rates"]
    assert store.list("jobs/1") == ["jobs/1/logs/out.txt", "jobs/1/params.json", "jobs/1/rates",
                                    "jobs/10/params.json"]
    assert store.list() == store.list("") == sorted(store.list("jobs/") + ["other"])
    assert store.list("nothing/") == []
    assert store.exists("jobs/1/rates") and store.exists("jobs/1/params.json") and not store.exists("jobs/2")


def test_refs_from_another_bucket_are_refused(store):
    with pytest.raises(InvalidArgument, match="ref points to bucket 'elsewhere'"):
        store.get_bytes(ArtifactRef(bucket="elsewhere", key="k"))


def test_resolve_completes_a_key_only_ref_and_catches_a_stale_one(store):
    array = random_array((40, 3), "float32")
    stored = store.put_array("inputs/rates", array)
    blob = store.put_bytes("inputs/blob", b"abc")
    full = store.resolve(ArtifactRef(key="inputs/rates"))
    assert (full.sha256, list(full.shape), full.dtype) == (sha256_of(array), [40, 3], "float32")
    assert store.resolve("inputs/blob").sha256 == blob.sha256 == hashlib.sha256(b"abc").hexdigest()
    assert store.resolve(stored).key == "inputs/rates"
    with pytest.raises(DataLoss, match="the ref says") as info:
        store.resolve(ArtifactRef(key="inputs/rates", sha256="0" * 64))
    assert info.value.reason == "ARTIFACT_CHANGED"
    with pytest.raises(NotFound, match="does not exist"):
        store.resolve(ArtifactRef(key="inputs/nothing-here"))


# --- the Zarr store adapter ---------------------------------------------------------------------------


def test_zarr_adapter_implements_the_store_interface(store):
    adapter = MinioZarrStore(store.client, store.bucket, "adapter/root")
    proto = default_buffer_prototype()

    async def exercise():
        await adapter.set("a/zarr.json", Buffer.from_bytes(b"0123456789"))
        await adapter.set("a/c/0", Buffer.from_bytes(b"x"))
        await adapter.set("b", Buffer.from_bytes(b"y"))
        full = await adapter.get("a/zarr.json", proto)
        ranges = [(await adapter.get("a/zarr.json", proto, r)).to_bytes()
                  for r in (RangeByteRequest(2, 5), OffsetByteRequest(7), SuffixByteRequest(3))]
        partial = await adapter.get_partial_values(proto, [("a/zarr.json", RangeByteRequest(0, 2)), ("nope", None)])
        listed = {
            "all": sorted([k async for k in adapter.list()]),
            "prefix": sorted([k async for k in adapter.list_prefix("a/")]),
            "dir": sorted([k async for k in adapter.list_dir("")]),
            "dir_a": sorted([k async for k in adapter.list_dir("a")]),
        }
        exists = (await adapter.exists("b"), await adapter.exists("nope"))
        size = await adapter.getsize("a/zarr.json")
        await adapter.delete("b")
        await adapter.delete("never-there")            # no error, like the other zarr stores
        return full.to_bytes(), ranges, partial, listed, exists, size, await adapter.get("b", proto)

    full, ranges, partial, listed, exists, size, deleted = asyncio.run(exercise())
    assert full == b"0123456789"
    assert ranges == [b"234", b"789", b"789"]
    assert partial[0].to_bytes() == b"01" and partial[1] is None
    assert listed == {"all": ["a/c/0", "a/zarr.json", "b"], "prefix": ["a/c/0", "a/zarr.json"],
                      "dir": ["a", "b"], "dir_a": ["c", "zarr.json"]}
    assert exists == (True, False) and size == 10 and deleted is None
    assert store.client.stat_object(store.bucket, "adapter/root/a/c/0").size == 1   # rooted at the prefix

    read_only = adapter.with_read_only(True)
    with pytest.raises(ValueError, match="read-only"):
        asyncio.run(read_only.set("c", Buffer.from_bytes(b"z")))
