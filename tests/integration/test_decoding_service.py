"""The decoding service as lab software sees it: a real service process, a real S3 server, gRPC.

Every answer is checked against a known truth: simulated sessions whose tuning is known, the
transport-free core run in the test on the same arrays, or hand-made NWB and Kilosort inputs.
"""

from __future__ import annotations

import time
import urllib.request
from datetime import datetime, timezone

import grpc
import numpy as np
import pytest
from google.protobuf import struct_pb2
from grpc_status import rpc_status

from neuromesh.common.v1.artifact_pb2 import ArtifactRef
from neuromesh.decoding.v1 import decoding_pb2, decoding_pb2_grpc
from neuromesh.stack.health import grpc_health_status
from services.common.errors import error_detail_from_status
from services.common.settings import Settings
from services.common.store import ArtifactStore
from services.decoding import SERVICE
from services.decoding.core import bin_spike_trains, simulate_reaching_session
from services.decoding.core.base import load_model_with_metadata, window_tensor
from runtime_support.processes import ServiceProcess
from services.decoding.core.synthetic import simulate_condition_session

pytestmark = pytest.mark.integration

D = decoding_pb2


@pytest.fixture(scope="module")
def service(s3_server, module_bucket, tmp_path_factory):
    process = ServiceProcess(SERVICE, s3_server, module_bucket, tmp_path_factory.mktemp("decoding") / "service.log")
    yield process.start()
    process.stop()


@pytest.fixture(scope="module")
def stub(service):
    with grpc.insecure_channel(service.address) as channel:
        yield decoding_pb2_grpc.DecodingServiceStub(channel)


@pytest.fixture(scope="module")
def store(s3_server, module_bucket) -> ArtifactStore:
    return ArtifactStore.from_settings(Settings(s3_endpoint=s3_server.endpoint, s3_access_key=s3_server.access_key,
                                                s3_secret_key=s3_server.secret_key, bucket=module_bucket))


@pytest.fixture(scope="module")
def session():
    """210 s of reaching: the first 150 s are binned by the service and trained on, the last 60 s
    (the same neurons, later) are held out for Evaluate."""
    return simulate_reaching_session(n_units=40, duration_s=210.0, seed=11)


TRAIN_BINS = 3000  # 150 s of 50 ms bins


@pytest.fixture(scope="module")
def binned(stub, store, session):
    times = store.put_array("inputs/reach/times", session.spike_times)
    units = store.put_array("inputs/reach/units", session.unit_ids)
    response = stub.BinRecording(D.BinRecordingRequest(
        spikes=D.SpikeArrays(times=ArtifactRef(key=times.key), unit_ids=ArtifactRef(key=units.key), n_units=40),
        bin_width_s=0.05, start_s=0.0, stop_s=150.0), timeout=60)
    return response


def train(stub, request) -> tuple[list, D.TrainResult]:
    events = list(stub.Train(request, timeout=300))
    assert events[-1].HasField("result")
    return [e.progress for e in events[:-1]], events[-1].result


def struct(**params) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(params)
    return s


def status_of(err: grpc.RpcError):
    status = rpc_status.from_call(err)
    return err.code(), err.details(), error_detail_from_status(status) if status else None


# --- binning ------------------------------------------------------------------------------------


def test_bin_recording_equals_the_core_binning(binned, store, session):
    expected = session.binned_counts()[:TRAIN_BINS]
    assert np.array_equal(expected, bin_spike_trains(session.spike_times, session.unit_ids, bin_width_s=0.05,
                                                     start_s=0.0, stop_s=150.0, n_units=40))
    assert (binned.n_bins, binned.n_units) == (3000, 40)
    np.testing.assert_array_equal(store.get_array(binned.counts), expected)
    np.testing.assert_allclose(store.get_array(binned.bin_centres), 0.025 + 0.05 * np.arange(3000))
    assert list(binned.unit_names) == [str(i) for i in range(40)]


def test_bin_recording_aligns_behaviour_sampled_at_its_own_times(stub, store, session):
    times = store.put_array("inputs/align/times", session.spike_times)
    units = store.put_array("inputs/align/units", session.unit_ids)
    stamps = np.arange(0.0, 150.0, 0.01)                                 # 100 Hz tracking
    values = np.c_[np.sin(stamps), stamps]
    response = stub.BinRecording(D.BinRecordingRequest(
        spikes=D.SpikeArrays(times=times, unit_ids=units, n_units=40), bin_width_s=0.05, start_s=0.0, stop_s=150.0,
        behaviour=D.BehaviourArrays(values=store.put_array("inputs/align/values", values),
                                    timestamps=store.put_array("inputs/align/stamps", stamps))), timeout=60)
    behaviour = store.get_array(response.behaviour)
    assert behaviour.shape == (3000, 2)
    # the mean of the five 100 Hz samples in each 50 ms bin
    np.testing.assert_allclose(behaviour[:, 1], values[:, 1].reshape(3000, 5).mean(axis=1), atol=1e-9)


# --- training, prediction, evaluation -------------------------------------------------------------


def test_train_wiener_streams_progress_recovers_velocity_and_controls(stub, store, binned, session):
    velocity = store.put_array("inputs/reach/velocity", session.velocity[:TRAIN_BINS])
    request = D.TrainRequest(features=binned.counts, targets=ArtifactRef(key=velocity.key),
                             decoder=D.DecoderSpec(name="wiener", history_bins=5), n_folds=5, n_shuffles=2, seed=3)
    progress, result = train(stub, request)
    assert {p.stage for p in progress} >= {"cross-validate", "shuffle", "fit"}
    fractions = [p.fraction_done for p in progress]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    assert min(result.scores.r2) > 0.6 and len(result.scores.fold_scores) == 5
    assert len(result.shuffled_scores) == 2 and max(result.shuffled_scores) < 0.05
    predictions = store.get_array(result.predictions)
    assert predictions.shape == (3000, 2) and np.isnan(predictions[:5]).all()
    assert store.get_bytes(result.figure)[:4] == b"\x89PNG"
    report = store.get_json(result.report)
    assert report["result"]["scores"]["r2"] == pytest.approx(list(result.scores.r2))

    # the same request again returns the stored artifacts
    _, again = train(stub, request)
    assert (again.model.key, again.predictions.sha256) == (result.model.key, result.predictions.sha256)

    # Predict with the stored model equals the model applied here, and Evaluate on a new session scores well
    model, metadata = load_model_with_metadata(store.get_bytes(result.model))
    assert metadata["history_bins"] == 5
    predicted = stub.Predict(D.PredictRequest(model=result.model, features=binned.counts), timeout=60)
    X, valid = window_tensor(store.get_array(binned.counts), history_bins=5)
    np.testing.assert_allclose(store.get_array(predicted.predictions)[valid], model.predict(X[valid]))
    counts = store.put_array("inputs/later/counts", session.binned_counts()[TRAIN_BINS:])
    truth = store.put_array("inputs/later/velocity", session.velocity[TRAIN_BINS:])
    evaluated = stub.Evaluate(D.EvaluateRequest(model=result.model, features=counts, targets=truth), timeout=60)
    assert min(evaluated.scores.r2) > 0.5 and evaluated.scores.n_tested == 1200 - 5


def test_train_lstm_with_parameters_from_a_struct(stub, store, binned, session):
    velocity = store.put_array("inputs/reach/velocity-lstm", session.velocity[:TRAIN_BINS])
    _, result = train(stub, D.TrainRequest(
        features=binned.counts, targets=velocity, n_folds=2,
        decoder=D.DecoderSpec(name="lstm", history_bins=4, params=struct(hidden_size=16, epochs=3, seed=0))))
    # a deliberately small, short training run: it must learn, not win (bench/ measures that)
    assert min(result.scores.pearson_r) > 0.6 and min(result.scores.r2) > 0.1, result.scores
    model, _ = load_model_with_metadata(store.get_bytes(result.model))
    assert model.hidden_size == 16 and model.epochs == 3


def test_condition_decoding_with_trials_time_resolved_and_shuffled(stub, store):
    data = simulate_condition_session(n_units=30, n_conditions=4, n_trials_per_condition=20, seed=5)
    refs = {name: store.put_array(f"inputs/conditions/{name}", np.asarray(value)) for name, value in
            (("counts", data.counts), ("labels", data.condition), ("trial", data.trial),
             ("time", data.time_in_trial_s))}
    _, result = train(stub, D.TrainRequest(
        features=refs["counts"], targets=refs["labels"], trial_index=refs["trial"], time_in_trial=refs["time"],
        decoder=D.DecoderSpec(name="logistic"), n_folds=5, n_shuffles=2, seed=1))
    scores = result.scores
    assert list(scores.classes) == [0, 1, 2, 3] and len(scores.confusion) == 16
    assert sum(scores.confusion) == scores.n_tested
    assert scores.accuracy > 0.5 > 0.25 + 0.15 > max(result.shuffled_scores)
    times, accuracy = np.array(result.time_resolved_times_s), np.array(result.time_resolved_scores)
    assert len(times) > 3 and accuracy.max() > 0.6 and accuracy[0] < 0.45
    predicted = stub.Predict(D.PredictRequest(model=result.model, features=refs["counts"]), timeout=60)
    probabilities = store.get_array(predicted.probabilities)
    assert probabilities.shape == (len(data.condition), 4)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)


# --- NWB and Kilosort inputs ------------------------------------------------------------------


def write_nwb(path, spikes_per_unit, behaviour, trials):
    from pynwb import NWBHDF5IO, NWBFile, TimeSeries

    nwb = NWBFile(session_description="test", identifier="neuromesh-test",
                  session_start_time=datetime(2026, 1, 1, tzinfo=timezone.utc))
    for times in spikes_per_unit:
        nwb.add_unit(spike_times=times)
    nwb.add_acquisition(TimeSeries(name="hand", data=behaviour, unit="m", starting_time=0.0, rate=100.0))
    nwb.add_trial_column(name="condition", description="target")
    for start, stop, condition in trials:
        nwb.add_trial(start_time=start, stop_time=stop, condition=condition)
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)


def test_nwb_file_is_binned_with_behaviour_and_trials(stub, store, tmp_path):
    spikes = [np.array([0.01, 0.02, 0.55]), np.array([]), np.array([0.30, 0.31, 0.32, 0.99])]
    behaviour = np.arange(100.0)[:, None] * [1.0, -1.0]  # 1 s at 100 Hz
    write_nwb(tmp_path / "session.nwb", spikes, behaviour, [(0.0, 0.5, 2), (0.5, 1.0, 7)])
    nwb = store.put_file("inputs/nwb/session.nwb", tmp_path / "session.nwb", media_type="application/x-nwb")
    response = stub.BinRecording(D.BinRecordingRequest(
        nwb_file=nwb, bin_width_s=0.1, start_s=0.0, stop_s=1.0, behaviour_series="hand",
        trial_condition_column="condition"), timeout=60)
    counts = store.get_array(response.counts)
    assert counts.shape == (10, 3) and counts.sum(axis=0).tolist() == [3, 0, 4]
    assert counts[0].tolist() == [2, 0, 0] and counts[3].tolist() == [0, 0, 3]
    np.testing.assert_allclose(store.get_array(response.behaviour)[:, 0], np.arange(10) * 10 + 4.5)
    assert store.get_array(response.trial_index).tolist() == [0] * 5 + [1] * 5
    assert store.get_array(response.condition).tolist() == [2] * 5 + [7] * 5
    np.testing.assert_allclose(store.get_array(response.time_in_trial), np.tile(np.arange(5) * 0.1 + 0.05, 2))


def test_kilosort_folder_keeps_good_clusters(stub, store, tmp_path):
    spike_times = np.array([30, 60, 300, 330, 600, 15000], dtype=np.uint64)      # samples at 30 kHz
    clusters = np.array([4, 9, 4, 2, 9, 4], dtype=np.int32)
    for name, data in (("spike_times.npy", spike_times), ("spike_clusters.npy", clusters)):
        np.save(tmp_path / name, data)
    (tmp_path / "params.py").write_text("dat_path = 'x.bin'\nn_channels_dat = 64\nsample_rate = 30000.\n")
    (tmp_path / "cluster_group.tsv").write_text("cluster_id\tgroup\n2\tnoise\n4\tgood\n9\tgood\n")
    for path in tmp_path.iterdir():
        store.put_file(f"inputs/kilosort/{path.name}", path)
    response = stub.BinRecording(D.BinRecordingRequest(
        kilosort=D.KilosortFolder(prefix="inputs/kilosort"), bin_width_s=0.01, start_s=0.0, stop_s=0.6), timeout=60)
    assert list(response.unit_names) == ["4", "9"]
    counts = store.get_array(response.counts)
    assert counts.shape == (60, 2)
    # cluster 4 fires at 1 ms, 10 ms and 500 ms; cluster 9 at 2 ms and 20 ms; cluster 2 is noise
    assert counts.sum(axis=0).tolist() == [3, 2]
    assert counts[0].tolist() == [1, 1] and counts[1].tolist() == [1, 0] and counts[2].tolist() == [0, 1]
    assert counts[50].tolist() == [1, 0]


# --- representational similarity -------------------------------------------------------------


def test_compare_representations_of_one_latent_structure(stub, store):
    rng = np.random.default_rng(0)
    latent = rng.normal(size=(12, 5))
    layer = np.tanh(latent @ rng.normal(size=(5, 40)))                       # a "network layer"
    recording = latent @ rng.normal(size=(5, 60)) + 0.3 * rng.normal(size=(12, 60))
    response = stub.CompareRepresentations(D.CompareRepresentationsRequest(
        first=D.Representation(patterns=store.put_array("inputs/rsa/layer", layer)),
        second=D.Representation(patterns=store.put_array("inputs/rsa/recording", recording),
                                metric=D.DISSIMILARITY_METRIC_EUCLIDEAN),
        comparison=D.RDM_COMPARISON_SPEARMAN, n_permutations=999, seed=0), timeout=60)
    assert response.statistic > 0.5 and response.p_value < 0.01 and response.n_permutations == 999
    rdm = store.get_array(response.first_rdm)
    assert rdm.shape == (12, 12) and np.allclose(rdm, rdm.T) and np.allclose(np.diag(rdm), 0)
    assert store.get_bytes(response.figure)[:4] == b"\x89PNG"


# --- bad input ------------------------------------------------------------------------------------


def test_bad_requests_are_refused_and_the_server_keeps_serving(stub, store, binned, service, session):
    counts = binned.counts
    velocity = store.put_array("inputs/bad/velocity", session.velocity[:TRAIN_BINS])
    short = store.put_array("inputs/bad/short", session.velocity[:TRAIN_BINS][:100])
    with_nan = session.velocity[:TRAIN_BINS].copy()
    with_nan[17, 1] = np.nan
    nan_targets = store.put_array("inputs/bad/nan", with_nan)
    empty_units = store.put_array("inputs/bad/empty", np.zeros(0, dtype=np.int64))
    empty_times = store.put_array("inputs/bad/empty-times", np.zeros(0))
    cases = [
        (lambda: train(stub, D.TrainRequest(features=counts, targets=short, decoder=D.DecoderSpec(name="wiener"))),
         grpc.StatusCode.INVALID_ARGUMENT, "features 3000, targets 100"),
        (lambda: train(stub, D.TrainRequest(features=counts, targets=nan_targets, decoder=D.DecoderSpec())),
         grpc.StatusCode.INVALID_ARGUMENT, "NaN"),
        (lambda: stub.BinRecording(D.BinRecordingRequest(spikes=D.SpikeArrays(times=empty_times, unit_ids=empty_units),
                                                          bin_width_s=0.05), timeout=30),
         grpc.StatusCode.INVALID_ARGUMENT, "no spikes"),
        (lambda: stub.BinRecording(D.BinRecordingRequest(spikes=D.SpikeArrays(times=counts, unit_ids=counts),
                                                          bin_width_s=0.0), timeout=30),
         grpc.StatusCode.INVALID_ARGUMENT, "bin_width_s must be a finite number > 0"),
        (lambda: train(stub, D.TrainRequest(features=counts, targets=velocity,
                                            decoder=D.DecoderSpec(name="wiener", history_bins=5000))),
         grpc.StatusCode.INVALID_ARGUMENT, "longer than the recording"),
        (lambda: stub.Predict(D.PredictRequest(model=ArtifactRef(key="models/none/model.npz"), features=counts),
                              timeout=30),
         grpc.StatusCode.NOT_FOUND, "does not exist"),
        (lambda: stub.Predict(D.PredictRequest(model=velocity, features=counts), timeout=30),
         grpc.StatusCode.INVALID_ARGUMENT, "must be a single object"),
        (lambda: train(stub, D.TrainRequest(features=counts, targets=velocity, decoder=D.DecoderSpec(name="oracle"))),
         grpc.StatusCode.INVALID_ARGUMENT, "unknown decoder 'oracle'"),
        (lambda: train(stub, D.TrainRequest(features=counts, targets=velocity,
                                            decoder=D.DecoderSpec(name="wiener", params=struct(alpha=1.0)))),
         grpc.StatusCode.INVALID_ARGUMENT, "has no parameter 'alpha'"),
        (lambda: train(stub, D.TrainRequest(features=ArtifactRef(key="inputs/never-uploaded"), targets=velocity)),
         grpc.StatusCode.NOT_FOUND, "does not exist"),
        (lambda: train(stub, D.TrainRequest(targets=velocity)),
         grpc.StatusCode.INVALID_ARGUMENT, "features is required"),
    ]
    for call, code, text in cases:
        with pytest.raises(grpc.RpcError) as info:
            call()
        got_code, details, detail = status_of(info.value)
        assert got_code == code and text in details, (code, text, got_code, details)
        assert "Traceback" not in details and detail is not None
    assert grpc_health_status(service.address, SERVICE.health_service) == "SERVING"
    assert stub.BinRecording(D.BinRecordingRequest(spikes=binned_request_spikes(store, session), bin_width_s=0.05,
                                                   start_s=0.0, stop_s=150.0), timeout=60).n_bins == 3000


def binned_request_spikes(store, session) -> D.SpikeArrays:
    return D.SpikeArrays(times=store.stat("inputs/reach/times"), unit_ids=store.stat("inputs/reach/units"), n_units=40)


def test_metrics_count_decoded_samples(service, binned, stub):
    with urllib.request.urlopen(f"http://127.0.0.1:{service.metrics_port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    assert 'neuromesh_decoding_samples_total{method="Train"}' in text
    assert 'grpc_server_handled_total{grpc_code="OK",grpc_method="BinRecording"' in text


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc (Linux)."""
    import os
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_cancelling_train_stops_the_computation(stub, store, binned, service, session):
    velocity = store.put_array("inputs/reach/velocity-cancel", session.velocity[:TRAIN_BINS])
    call = stub.Train(D.TrainRequest(features=binned.counts, targets=velocity, n_folds=5, decoder=D.DecoderSpec(
        name="lstm", history_bins=4, params=struct(hidden_size=32, epochs=500, seed=0))), timeout=300)
    first = next(call)
    assert first.HasField("progress")
    call.cancel()
    with pytest.raises(grpc.RpcError) as info:
        next(call)
    assert info.value.code() == grpc.StatusCode.CANCELLED
    # the worker stops at its next epoch: soon after, the service burns (almost) no CPU
    pid = service.process.pid
    idle = False
    for _ in range(20):                      # up to 10 s for the current epoch to end
        before = cpu_seconds(pid)
        time.sleep(0.5)
        if cpu_seconds(pid) - before < 0.1:  # while it trains, a core stays busy: ~0.5 s per 0.5 s
            idle = True
            break
    assert idle, "the service kept computing after the call was cancelled"
    assert grpc_health_status(service.address, SERVICE.health_service) == "SERVING"


def test_continuous_signals_are_averaged_into_bins(stub, store):
    """Calcium-like traces at 30 Hz into 100 ms bins: each bin is the mean of its three samples."""
    rng = np.random.default_rng(3)
    traces = rng.random((300, 4))                                        # 10 s at 30 Hz, 4 cells
    response = stub.BinRecording(D.BinRecordingRequest(
        continuous=D.ContinuousArray(values=store.put_array("inputs/calcium/traces", traces), sampling_rate_hz=30.0),
        bin_width_s=0.1), timeout=60)
    assert (response.n_bins, response.n_units) == (100, 4)
    np.testing.assert_allclose(store.get_array(response.counts), traces.reshape(100, 3, 4).mean(axis=1), rtol=1e-6)
