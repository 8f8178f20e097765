"""The reduction service through a real service process, a real S3 server and gRPC.

The service runs with ``NEUROMESH_MAX_INPUT_BYTES`` at 1 MiB, so a few-MiB array is "larger
than memory" for it: PCA then streams the Zarr array from S3 chunk by chunk, and the test
checks that the result equals the in-memory PCA of the same array.
"""

from __future__ import annotations

import grpc
import numpy as np
import pytest
from google.protobuf import struct_pb2

from neuromesh.common.v1.artifact_pb2 import ArtifactRef
from neuromesh.reduction.v1 import reduction_pb2, reduction_pb2_grpc
from neuromesh.stack.health import grpc_health_status
from runtime_support.processes import ServiceProcess
from services.common.settings import Settings
from services.common.store import ArtifactStore
from services.reduction import SERVICE
from services.reduction.core.base import load_model_with_metadata
from services.reduction.core.pca import PCA
from services.reduction.core.synthetic import lorenz_poisson_dataset, low_rank_gaussian

pytestmark = pytest.mark.integration

R = reduction_pb2
MAX_INPUT_BYTES = 2**20


@pytest.fixture(scope="module")
def service(s3_server, module_bucket, tmp_path_factory):
    process = ServiceProcess(SERVICE, s3_server, module_bucket, tmp_path_factory.mktemp("reduction") / "service.log",
                             max_input_bytes=str(MAX_INPUT_BYTES))
    yield process.start()
    process.stop()


@pytest.fixture(scope="module")
def stub(service):
    with grpc.insecure_channel(service.address) as channel:
        yield reduction_pb2_grpc.ReductionServiceStub(channel)


@pytest.fixture(scope="module")
def store(s3_server, module_bucket) -> ArtifactStore:
    return ArtifactStore.from_settings(Settings(s3_endpoint=s3_server.endpoint, s3_access_key=s3_server.access_key,
                                                s3_secret_key=s3_server.secret_key, bucket=module_bucket))


def struct(**params) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(params)
    return s


def fit(stub, request) -> tuple[list, R.FitResult]:
    events = list(stub.Fit(request, timeout=300))
    assert events[-1].HasField("result")
    return [e.progress for e in events[:-1]], events[-1].result


def test_pca_fit_transform_score_and_figures(stub, store):
    data = low_rank_gaussian(n_samples=3000, n_neurons=30, rank=3, noise_std=0.2, seed=1)
    activity = store.put_array("inputs/lowrank/activity", data.activity.astype(np.float32))
    truth = store.put_array("inputs/lowrank/latents", data.latents)
    _, result = fit(stub, R.FitRequest(activity=ArtifactRef(key=activity.key), true_latents=truth,
                                       method=R.MethodSpec(name="pca", params=struct(n_components=3))))
    assert not result.streamed
    reference = PCA(n_components=3).fit(data.activity.astype(np.float32))
    np.testing.assert_allclose(result.scores.explained_variance_ratio, reference.explained_variance_ratio_, rtol=1e-5)
    assert result.scores.explained_variance > 0.9 and result.scores.latent_r2_mean > 0.9
    latents = store.get_array(result.latents)
    assert latents.shape == (3000, 3) and latents.dtype == np.float32
    np.testing.assert_allclose(latents, reference.transform(data.activity.astype(np.float32)), rtol=1e-4, atol=1e-4)
    for figure in (result.components_figure, result.trajectories_figure, result.variance_figure):
        assert store.get_bytes(figure)[:4] == b"\x89PNG"
    model, metadata = load_model_with_metadata(store.get_bytes(result.model))
    assert metadata["n_neurons"] == 30 and model.n_components == 3

    fresh = low_rank_gaussian(n_samples=500, n_neurons=30, rank=3, noise_std=0.2, seed=1)  # same loadings
    new = store.put_array("inputs/lowrank/new", fresh.activity.astype(np.float32))
    transformed = stub.Transform(R.TransformRequest(model=result.model, activity=new), timeout=60)
    np.testing.assert_allclose(store.get_array(transformed.latents), model.transform(fresh.activity), rtol=1e-4,
                               atol=1e-4)
    scored = stub.Score(R.ScoreRequest(model=result.model, activity=new, true_latents=store.put_array(
        "inputs/lowrank/new-latents", fresh.latents)), timeout=60)
    assert scored.scores.explained_variance > 0.9 and scored.scores.latent_r2_mean > 0.9

    _, again = fit(stub, R.FitRequest(activity=activity, true_latents=truth,
                                      method=R.MethodSpec(name="pca", params=struct(n_components=3))))
    assert again.latents.sha256 == result.latents.sha256 and again.report.key == result.report.key


def test_out_of_core_pca_streams_from_s3_and_equals_the_in_memory_pca(stub, store):
    data = low_rank_gaussian(n_samples=12000, n_neurons=40, rank=5, noise_std=0.5, seed=2)
    activity = data.activity + 1000.0   # far from zero: the streamed sums must not cancel
    ref = store.put_array("inputs/big/activity", activity, chunks=(1000, 40))
    assert ref.size_bytes > MAX_INPUT_BYTES
    progress, result = fit(stub, R.FitRequest(activity=ref, method=R.MethodSpec(
        name="pca", params=struct(n_components=5))))
    assert result.streamed and any("stream" in p.stage for p in progress)
    reference = PCA(n_components=5).fit(activity)
    model, _ = load_model_with_metadata(store.get_bytes(result.model))
    np.testing.assert_allclose(model.explained_variance_, reference.explained_variance_, rtol=1e-9)
    np.testing.assert_allclose(np.abs(model.components_ @ reference.components_.T), np.eye(5), atol=1e-8)
    latents = store.get_array(result.latents)
    np.testing.assert_allclose(latents, reference.transform(activity), rtol=1e-4, atol=1e-3)
    # other methods refuse what does not fit in memory
    with pytest.raises(grpc.RpcError) as info:
        fit(stub, R.FitRequest(activity=ref, method=R.MethodSpec(name="factor_analysis")))
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "only 'pca' streams" in info.value.details()


def test_factor_analysis_co_smoothing_and_the_dynamics_model_on_lorenz_trials(stub, store):
    data = lorenz_poisson_dataset(n_trials=60, n_time=30, n_neurons=40, seed=0)
    counts = store.put_array("inputs/lorenz/counts", data.counts.astype(np.float64))
    latents = store.put_array("inputs/lorenz/latents", data.latents)
    heldout = list(range(30, 40))
    _, fa = fit(stub, R.FitRequest(activity=counts, true_latents=latents, heldout_neurons=heldout,
                                   preprocessing=R.Preprocessing(smooth_sigma_bins=1.5),
                                   method=R.MethodSpec(name="factor_analysis", params=struct(n_components=3))))
    assert fa.scores.co_smoothing_bits_per_spike > 0.0
    assert np.isfinite(fa.scores.log_likelihood) and fa.scores.latent_r2_mean > 0.3
    assert store.get_array(fa.latents).shape == (60, 30, 3)

    progress, lfads = fit(stub, R.FitRequest(activity=counts, heldout_neurons=heldout, forward_bins=5, seed=0,
                                             method=R.MethodSpec(name="lfads", params=struct(epochs=3))))
    assert {"co-smoothing", "forward", "fit"} <= {p.stage for p in progress}
    assert np.isfinite(lfads.scores.co_smoothing_bits_per_spike) and np.isfinite(lfads.scores.forward_prediction_r2)
    assert store.get_array(lfads.latents).shape[:2] == (60, 30)


def test_bad_requests_are_refused_and_the_server_keeps_serving(stub, store, service):
    rng = np.random.default_rng(0)
    good = rng.normal(size=(200, 10))
    with_nan = good.copy()
    with_nan[5, 3] = np.nan
    refs = {name: store.put_array(f"inputs/bad/{name}", value) for name, value in (
        ("nan", with_nan), ("rank4", rng.normal(size=(2, 3, 4, 5))), ("few", rng.normal(size=(3, 10))),
        ("no-neurons", np.zeros((50, 0))), ("good", good))}
    cases = [
        (R.FitRequest(activity=refs["nan"]), "NaN"),
        (R.FitRequest(activity=refs["rank4"]), "rank 4"),
        (R.FitRequest(activity=refs["few"], method=R.MethodSpec(name="pca", params=struct(n_components=5))), "5"),
        (R.FitRequest(activity=refs["no-neurons"]), "empty"),
        (R.FitRequest(activity=refs["good"], method=R.MethodSpec(name="ica")), "unknown reducer 'ica'"),
        (R.FitRequest(activity=refs["good"], method=R.MethodSpec(name="lfads")), "(n_trials, n_time, n_neurons)"),
        (R.FitRequest(activity=refs["good"], heldout_neurons=[1]), "co-smoothing needs trials"),
    ]
    for request, text in cases:
        with pytest.raises(grpc.RpcError) as info:
            fit(stub, request)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (text, info.value.details())
        assert text in info.value.details() and "Traceback" not in info.value.details()
    with pytest.raises(grpc.RpcError) as info:
        stub.Transform(R.TransformRequest(model=ArtifactRef(key="models/missing.npz"), activity=refs["good"]),
                       timeout=30)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert grpc_health_status(service.address, SERVICE.health_service) == "SERVING"


def test_condition_averages_are_reduced_and_drawn_per_condition(stub, store):
    data = lorenz_poisson_dataset(n_trials=40, n_time=20, n_neurons=30, seed=1)
    conditions = np.arange(40) % 4
    _, result = fit(stub, R.FitRequest(
        activity=store.put_array("inputs/psth/counts", data.counts.astype(np.float64)),
        conditions=store.put_array("inputs/psth/conditions", conditions),
        preprocessing=R.Preprocessing(trial_average=True, smooth_sigma_bins=1.0, soft_normalize=0.5),
        method=R.MethodSpec(name="pca", params=struct(n_components=3))))
    # one trajectory per condition: the PCA saw the 4 condition averages, not the 40 trials
    assert store.get_array(result.latents).shape == (4, 20, 3)
    assert store.get_bytes(result.trajectories_figure)[:4] == b"\x89PNG"
    assert sum(result.scores.explained_variance_ratio) <= 1.0 + 1e-9
