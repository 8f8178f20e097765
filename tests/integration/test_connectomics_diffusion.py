"""DiffusionConnectome through a real service process, a real S3 server and gRPC.

* the multi-tensor phantom (two crossing bundles and one apart, known region pairs) uploaded as
  NIfTI + FSL text files: the service finds the pairs the bundles join and not the others, with
  tracking in two worker processes, and stores the same matrices as the core run here; its FA,
  mask, TRK and TCK files open with nibabel;
* dipy's own small_64D DWI (it ships in dipy's wheel) end to end, with a parcellation in octants;
* seeds shared out over two shards sum to the unsharded matrix;
* bad input (DWI and b-values of different lengths, a parcellation of another shape or with
  fractional labels, a non-finite affine, a malformed b-value file): INVALID_ARGUMENT naming the
  field, and the server keeps serving.
"""

from __future__ import annotations

import gzip
import io
import struct

import grpc
import nibabel
import numpy as np
import pytest
from grpc_status import rpc_status
from nibabel.streamlines import load as load_tractogram

from neuromesh.common.v1.artifact_pb2 import ArtifactRef
from neuromesh.connectomics.v1 import connectomics_pb2 as C
from neuromesh.connectomics.v1 import connectomics_pb2_grpc
from neuromesh.stack.health import grpc_health_status
from runtime_support.processes import ServiceProcess
from services.common.settings import Settings
from services.common.store import ArtifactStore
from services.connectomics import SERVICE
from services.connectomics.core import diffusion
from services.connectomics.core.dmri import dmri_connectome
from services.connectomics.core.phantom import diffusion_phantom

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def service(s3_server, module_bucket, tmp_path_factory):
    process = ServiceProcess(SERVICE, s3_server, module_bucket, tmp_path_factory.mktemp("connectomics") / "service.log",
                             compute_threads="1")
    yield process.start()
    process.stop()


@pytest.fixture(scope="module")
def stub(service):
    with grpc.insecure_channel(service.address) as channel:
        yield connectomics_pb2_grpc.ConnectomicsServiceStub(channel)


@pytest.fixture(scope="module")
def store(s3_server, module_bucket) -> ArtifactStore:
    return ArtifactStore.from_settings(Settings(s3_endpoint=s3_server.endpoint, s3_access_key=s3_server.access_key,
                                                s3_secret_key=s3_server.secret_key, bucket=module_bucket))


def nifti(volume, affine, *, compress=True) -> bytes:
    data = nibabel.Nifti1Image(np.asarray(volume), np.asarray(affine, float)).to_bytes()
    return gzip.compress(data) if compress else data


def text_rows(rows) -> bytes:
    return ("\n".join(" ".join(f"{v:g}" for v in row) for row in rows) + "\n").encode()


def upload(store, name: str, dwi, bvals, bvecs, affine, parcellation) -> dict[str, ArtifactRef]:
    refs = {
        "dwi": store.put_bytes(f"inputs/{name}/dwi.nii.gz", nifti(dwi.astype(np.float32), affine)),
        "bvals": store.put_bytes(f"inputs/{name}/dwi.bval", text_rows([bvals])),
        "bvecs": store.put_bytes(f"inputs/{name}/dwi.bvec", text_rows(np.asarray(bvecs).T)),
        "parcellation": store.put_bytes(f"inputs/{name}/labels.nii", nifti(parcellation.astype(np.int16), affine,
                                                                           compress=False)),
    }
    return {k: ArtifactRef(key=v.key) for k, v in refs.items()}


def run(stub, refs, **fields):
    events = list(stub.DiffusionConnectome(C.DiffusionConnectomeRequest(**refs, **fields), timeout=600))
    assert events[-1].HasField("result")
    return [e.progress for e in events[:-1]], events[-1].result


def matrix(store, result, name):
    entry = next(m for m in result.matrices if m.normalization == name)
    return store.get_array(entry.matrix)


def status_of(err):
    rpc_status.from_call(err)
    return err.code(), err.details()


@pytest.fixture(scope="module")
def phantom():
    return diffusion_phantom(size=20, n_directions=45, snr=30, seed=0)


@pytest.fixture(scope="module")
def phantom_refs(store, phantom):
    return upload(store, "phantom", phantom.dwi, phantom.bvals, phantom.bvecs, phantom.affine, phantom.parcellation)


def test_phantom_bundles_are_found_through_the_service(stub, store, phantom, phantom_refs, tmp_path):
    fields = dict(model=C.FIBRE_MODEL_CSA, tracking=C.TRACKING_METHOD_DETERMINISTIC, min_length_mm=10, processes=2,
                  seed_fa_threshold=0.2, stop_fa_threshold=0.2, step_size_mm=0.5, seed=4,
                  measures=C.GraphMeasuresOptions(measures=["degree", "strength", "communities"], seed=0))
    progress, result = run(stub, phantom_refs, **fields)
    assert {"load", "fit", "track", "store"} <= {p.stage for p in progress}
    labels = store.get_array(result.region_labels).tolist()
    assert labels == [1, 2, 3, 4, 5, 6, 7]
    count = matrix(store, result, "count")
    for i, a in enumerate(labels):
        for j, b in enumerate(labels):
            if a < b and (a, b) in phantom.connected_pairs:
                assert count[i, j] >= 40, ((a, b), count)
            elif a < b:
                assert count[i, j] <= 0.02 * result.n_connecting, ((a, b), count)
    # the same numbers as the core on the same inputs, as the service read them
    expected = dmri_connectome(phantom.dwi.astype(np.float32), phantom.bvals, phantom.bvecs, phantom.affine,
                               phantom.parcellation, model="csa", tracking="deterministic", min_length_mm=10,
                               max_length_mm=250, fa_threshold=0.2, seed_fa_threshold=0.2, step_size_mm=0.5, seed=4)
    np.testing.assert_array_equal(count, expected.matrices["count"])
    np.testing.assert_allclose(matrix(store, result, "volume"), expected.matrices["volume"])
    assert result.n_seeds == expected.n_seeds and result.n_connecting == expected.n_connecting
    # the files open in the tools labs use
    path = tmp_path / "fa.nii.gz"
    path.write_bytes(store.get_bytes(result.fa))
    fa = nibabel.load(path)
    np.testing.assert_allclose(fa.affine, phantom.affine)
    np.testing.assert_allclose(np.asarray(fa.dataobj), expected.fa, atol=1e-6)
    for name, suffix in (("streamlines_trk", "trk"), ("streamlines_tck", "tck")):
        path = tmp_path / f"s.{suffix}"
        path.write_bytes(store.get_bytes(getattr(result, name)))
        assert len(load_tractogram(str(path)).streamlines) == expected.n_kept
    for name in ("heatmap", "fa_figure"):
        assert store.get_bytes(getattr(result, name))[:8] == b"\x89PNG\r\n\x1a\n"
    assert result.measures.n_nodes == 7 and result.measures.scalars["n_communities"] >= 3
    assert result.streamlines_per_second > 0


def test_shards_sum_to_the_whole(stub, store, phantom_refs):
    fields = dict(model=C.FIBRE_MODEL_CSA, min_length_mm=10, seed=1, measures=C.GraphMeasuresOptions(skip=True))
    _, whole = run(stub, phantom_refs, **fields)
    parts = [run(stub, phantom_refs, shard_index=i, shard_count=2, **fields)[1] for i in range(2)]
    assert sum(p.n_seeds for p in parts) == whole.n_seeds
    np.testing.assert_array_equal(sum(matrix(store, p, "count") for p in parts), matrix(store, whole, "count"))


def test_dipy_small_64d_end_to_end(stub, store):
    from dipy.data import get_fnames

    nii, bval, bvec = get_fnames(name="small_64D")
    image = nibabel.load(nii)
    block = np.asarray(image.dataobj, dtype=np.float32)
    index = np.indices(block.shape[:3])
    parcellation = 1 + (index[0] >= 5) + 2 * (index[1] >= 5) + 4 * (index[2] >= 5)       # 8 octants
    refs = {"dwi": ArtifactRef(key=store.put_bytes("inputs/small64d/dwi.nii.gz", open(nii, "rb").read()).key),
            "bvals": ArtifactRef(key=store.put_bytes("inputs/small64d/dwi.bval", open(bval, "rb").read()).key),
            "bvecs": ArtifactRef(key=store.put_bytes("inputs/small64d/dwi.bvec", open(bvec, "rb").read()).key),
            "parcellation": ArtifactRef(key=store.put_bytes("inputs/small64d/labels.nii.gz",
                                                            nifti(parcellation.astype(np.int16), image.affine)).key),
            "mask": ArtifactRef(key=store.put_bytes("inputs/small64d/mask.nii.gz",
                                                    nifti(np.ones(block.shape[:3], np.uint8), image.affine)).key)}
    _, result = run(stub, refs, model=C.FIBRE_MODEL_CSD, tracking=C.TRACKING_METHOD_PROBABILISTIC, min_length_mm=4)
    assert store.get_array(result.region_labels).tolist() == list(range(1, 9))
    assert result.n_streamlines > 100 and result.n_connecting > 100
    count = matrix(store, result, "count")
    assert np.triu(count).sum() == result.n_connecting and np.array_equal(count, count.T)
    path_fa = io.BytesIO(gzip.decompress(store.get_bytes(result.fa)))
    fa = nibabel.Nifti1Image.from_bytes(path_fa.getvalue()).get_fdata()
    assert 0 <= fa.min() and fa.max() <= 1 and 0.1 < np.median(fa) < 0.6


def test_bad_input_gives_clear_errors_and_the_server_keeps_serving(stub, store, service, phantom):
    small = diffusion_phantom(size=16, n_directions=12, snr=30, seed=1)
    good = dict(dwi=small.dwi, bvals=small.bvals, bvecs=small.bvecs, affine=small.affine,
                parcellation=small.parcellation)
    cases = [
        (dict(good, bvals=small.bvals[:-1]), "bvals", "bvals has 12 values but the DWI has 13 volumes"),
        (dict(good, parcellation=small.parcellation[:, :, :-1]), "parcellation", "shape"),
    ]
    for i, (inputs, field, fragment) in enumerate(cases):
        refs = upload(store, f"bad-{i}", **inputs)
        with pytest.raises(grpc.RpcError) as info:
            run(stub, refs, model=C.FIBRE_MODEL_DTI)
        code, message = status_of(info.value)
        assert code == grpc.StatusCode.INVALID_ARGUMENT and fragment in message, (field, message)
    # a non-finite affine: nibabel will not write one, so the sform of a written header is patched
    refs = upload(store, "bad-affine", **good)
    header = bytearray(nifti(small.dwi.astype(np.float32), small.affine, compress=False))
    header[280:284] = struct.pack("<f", float("nan"))         # srow_x[0] of the NIfTI-1 header (sform_code 2)
    refs["dwi"] = ArtifactRef(key=store.put_bytes("inputs/bad-affine/dwi.nii", bytes(header)).key)
    with pytest.raises(grpc.RpcError) as info:
        run(stub, refs, model=C.FIBRE_MODEL_DTI)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "affine" in info.value.details()
    # fractional labels: stored as floats, the parcellation is no label volume
    refs = upload(store, "bad-float", **good)
    refs["parcellation"] = ArtifactRef(key=store.put_bytes(
        "inputs/bad-float/labels.nii.gz", nifti(small.parcellation + 0.25, small.affine)).key)
    with pytest.raises(grpc.RpcError) as info:
        run(stub, refs, model=C.FIBRE_MODEL_DTI)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "integer labels" in info.value.details()
    # a b-value file that is not numbers
    refs = upload(store, "bad-text", **good)
    refs["bvals"] = ArtifactRef(key=store.put_bytes("inputs/bad-text/words.bval", b"zero thousand\n").key)
    with pytest.raises(grpc.RpcError) as info:
        run(stub, refs, model=C.FIBRE_MODEL_DTI)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "bvals" in info.value.details()
    # a missing input, and a bad option
    with pytest.raises(grpc.RpcError) as info:
        run(stub, dict(refs, dwi=ArtifactRef(key="inputs/none.nii.gz")))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as info:
        run(stub, refs, max_angle_deg=120)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "max_angle_deg" in info.value.details()
    assert grpc_health_status(service.address, SERVICE.health_service) == "SERVING"
