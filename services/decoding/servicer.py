"""gRPC adapter of the decoding service: validate, load artifacts, call the core, store, answer.

Every RPC follows the same steps: check the request's plain fields, resolve its artifact refs
(a ref may carry only a key; the store supplies sha256, shape and dtype), compute the
content-addressed key prefix of its outputs, return the stored outputs if a previous call
already made them, else load the inputs, run the core in a worker thread (holding a compute
slot: see :mod:`services.common.compute`), and store the outputs. ``ValueError`` from the core
reaches the caller as INVALID_ARGUMENT with its message; a missing artifact is NOT_FOUND.

Example
-------
Started by ``python -m services.decoding``; from lab software::

    stub = decoding_pb2_grpc.DecodingServiceStub(grpc.insecure_channel("127.0.0.1:50051"))
    binned = stub.BinRecording(decoding_pb2.BinRecordingRequest(
        spikes=decoding_pb2.SpikeArrays(times=t_ref, unit_ids=u_ref), bin_width_s=0.05))
    for event in stub.Train(decoding_pb2.TrainRequest(
            features=binned.counts, targets=velocity_ref,
            decoder=decoding_pb2.DecoderSpec(name="wiener", history_bins=5))):
        ...
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from google.protobuf import json_format

from neuromesh.common.v1.artifact_pb2 import ArtifactRef
from neuromesh.decoding.v1 import decoding_pb2, decoding_pb2_grpc
from services.common.compute import ComputeLimiter
from services.common.errors import InvalidArgument, NotFound
from services.common.metrics import neuromesh_counter
from services.common.progress import stream_progress
from services.common.results import result_prefix
from services.common.rpc import (PNG, StoreBackedServicer, has_ref, model_from_spec, require_finite,
                                 require_non_negative)
from services.common.server import ServiceDefinition
from services.common.settings import Settings
from services.common.store import ArtifactStore

from . import plots
from .core import recordings, rsa
from .core.base import DECODERS, Decoder, check_targets, save_model, window_tensor
from .core.binning import bin_spike_trains
from .core.evaluation import (EvaluationReport, classification_scores, cross_validate, regression_scores,
                              shuffled_control, time_resolved_decoding)

#: bump when an algorithm's output changes, so cached results are not reused across versions
SERVICE_VERSION = "0.2.0"
SERVICE_NAME = decoding_pb2.DESCRIPTOR.services_by_name["DecodingService"].full_name
MODEL_MEDIA_TYPE = "application/vnd.neuromesh.decoder+npz"

SAMPLES_DECODED = neuromesh_counter(
    "decoding_samples_total", "Time bins passed through a decoder (training folds, refits and predictions)",
    labelnames=("method",))
MODELS_TRAINED = neuromesh_counter("decoding_models_trained_total", "Decoders fitted and stored by Train",
                                   labelnames=("decoder",))

_METRICS = {
    decoding_pb2.DISSIMILARITY_METRIC_UNSPECIFIED: "correlation",
    decoding_pb2.DISSIMILARITY_METRIC_CORRELATION: "correlation",
    decoding_pb2.DISSIMILARITY_METRIC_EUCLIDEAN: "euclidean",
    decoding_pb2.DISSIMILARITY_METRIC_CROSSNOBIS: "crossnobis",
}
_COMPARISONS = {
    decoding_pb2.RDM_COMPARISON_UNSPECIFIED: "spearman",
    decoding_pb2.RDM_COMPARISON_SPEARMAN: "spearman",
    decoding_pb2.RDM_COMPARISON_KENDALL_TAU_A: "kendall_tau_a",
    decoding_pb2.RDM_COMPARISON_PEARSON: "pearson",
}


# ------------------------------------------------------------------------------------------------
# request checks


def decoder_from_spec(spec: decoding_pb2.DecoderSpec, *, seed: int | None = None) -> Decoder:
    """The unfitted decoder a ``DecoderSpec`` names, or INVALID_ARGUMENT naming the problem."""
    return model_from_spec(DECODERS, spec.name or "wiener", spec.params if spec.HasField("params") else None,
                           field="decoder", seed=seed)


def _scores_message(report: EvaluationReport) -> decoding_pb2.EvaluationScores:
    # NaN stays NaN (an R² of a constant target is undefined, not 0); the other task's
    # fields stay unset
    scores = decoding_pb2.EvaluationScores(fold_scores=report.fold_scores.tolist(), n_tested=report.n_tested)
    if report.task == "regression":
        scores.r2[:], scores.pearson_r[:], scores.rmse[:] = (report.r2.tolist(), report.pearson_r.tolist(),
                                                           report.rmse.tolist())
    else:
        scores.accuracy, scores.balanced_accuracy, scores.chance = (report.accuracy, report.balanced_accuracy,
                                                                    report.chance)
        scores.classes[:], scores.confusion[:] = report.classes.tolist(), report.confusion.ravel().tolist()
    return scores


def _figure(report: EvaluationReport, truth: np.ndarray, title: str) -> bytes:
    if report.task == "classification":
        return plots.confusion_figure(report.confusion, classes=report.classes.tolist(), title=title)
    return plots.traces_figure(truth, report.predictions, title=title)


# ------------------------------------------------------------------------------------------------
# the servicer


class DecodingServicer(StoreBackedServicer, decoding_pb2_grpc.DecodingServiceServicer):
    """Decoding RPCs over a shared :class:`ArtifactStore`."""

    # --- BinRecording

    async def BinRecording(self, request, context):
        bin_width = require_finite(request.bin_width_s, "bin_width_s", positive=True)
        start, stop = require_finite(request.start_s, "start_s"), require_finite(request.stop_s, "stop_s")
        if (start or stop) and stop <= start:
            raise InvalidArgument(f"stop_s ({stop}) must exceed start_s ({start})", field="stop_s")
        source = request.WhichOneof("source")
        if source is None:
            raise InvalidArgument("a source is required: spikes, nwb_file, kilosort or continuous", field="source")
        resolved = decoding_pb2.BinRecordingRequest()
        resolved.CopyFrom(request)
        inputs: dict[str, Any] = {}
        if source == "spikes":
            resolved.spikes.times.CopyFrom(await self.resolve(request.spikes.times, "spikes.times", array=True))
            resolved.spikes.unit_ids.CopyFrom(await self.resolve(request.spikes.unit_ids, "spikes.unit_ids",
                                                                  array=True))
            require_non_negative(request.spikes.n_units, "spikes.n_units")
        elif source == "nwb_file":
            resolved.nwb_file.CopyFrom(await self.resolve(request.nwb_file, "nwb_file", array=False))
        elif source == "kilosort":
            inputs["kilosort"] = await self._kilosort_refs(request.kilosort)
        elif source == "continuous":
            resolved.continuous.values.CopyFrom(await self.resolve(request.continuous.values, "continuous.values",
                                                                    array=True))
            require_finite(request.continuous.sampling_rate_hz, "continuous.sampling_rate_hz", positive=True)
        has_behaviour = has_ref(request.behaviour, "values") or has_ref(request.behaviour, "timestamps")
        if has_behaviour:
            resolved.behaviour.values.CopyFrom(await self.resolve(request.behaviour.values, "behaviour.values",
                                                                   array=True))
            resolved.behaviour.timestamps.CopyFrom(await self.resolve(request.behaviour.timestamps,
                                                                       "behaviour.timestamps", array=True))
        # a Kilosort folder is a key prefix, not a ref: its files' contents enter the key by digest
        prefix = result_prefix("decoding", "BinRecording", resolved, SERVICE_VERSION, extra_inputs={
            name: ref.sha256 for name, ref in inputs.get("kilosort", {}).items()})
        cached = await self.cached(prefix, "summary.json")
        if cached is not None:
            summary = await asyncio.to_thread(self.store.get_json, cached)
            return json_format.ParseDict(summary, decoding_pb2.BinRecordingResponse())

        with tempfile.TemporaryDirectory(prefix="neuromesh-decoding-") as tmp:
            recording = await self._load_recording(source, request, resolved, inputs, Path(tmp))
            arrays = await self.compute(_bin_recording, recording, bin_width_s=bin_width, start_s=start,
                                         stop_s=stop, behaviour=await self._behaviour(resolved) if has_behaviour
                                         else recording.get("behaviour"))
        response = decoding_pb2.BinRecordingResponse(n_bins=arrays["counts"].shape[0],
                                                     n_units=arrays["counts"].shape[1],
                                                     unit_names=arrays.pop("unit_names"))
        for name, value in arrays.items():
            getattr(response, name).CopyFrom(await self.put_array(f"{prefix}/{name}", value))
        await self.put_json(f"{prefix}/summary.json", json_format.MessageToDict(response))
        return response

    async def _kilosort_refs(self, folder: decoding_pb2.KilosortFolder) -> dict[str, ArtifactRef]:
        prefix = folder.prefix.strip("/")
        if not prefix:
            raise InvalidArgument("kilosort.prefix is required: the key prefix of the uploaded folder",
                                  field="kilosort.prefix")
        keys = await asyncio.to_thread(self.store.list, prefix + "/")
        names = {k.rsplit("/", 1)[-1]: k for k in keys if k.rsplit("/", 1)[0] == prefix}
        wanted = ("spike_times.npy", "spike_clusters.npy", "spike_templates.npy", "params.py",
                  "cluster_group.tsv", "cluster_KSLabel.tsv")
        if "spike_times.npy" not in names:
            raise NotFound(f"no Kilosort folder at s3://{self.store.bucket}/{prefix}/: spike_times.npy is missing "
                           f"(found {sorted(names) or 'nothing'})", reason="ARTIFACT_NOT_FOUND",
                           field="kilosort.prefix")
        return {n: await self.resolve(ArtifactRef(key=names[n]), f"kilosort/{n}", array=False)
                for n in wanted if n in names}

    async def _load_recording(self, source: str, request, resolved, inputs: dict, tmp: Path) -> dict[str, Any]:
        """The neural data of the request, read into memory (files are fetched to ``tmp`` first)."""
        if source == "spikes":
            times = await asyncio.to_thread(self.store.get_array, resolved.spikes.times)
            units = await asyncio.to_thread(self.store.get_array, resolved.spikes.unit_ids)
            return {"kind": "spikes", "times": times, "units": units, "n_units": request.spikes.n_units or None}
        if source == "nwb_file":
            path = tmp / "recording.nwb"
            await asyncio.to_thread(self.store.get_file, resolved.nwb_file, path)

            def read() -> dict[str, Any]:
                spikes = recordings.read_nwb_units(path)
                out: dict[str, Any] = {"kind": "spikes", "times": spikes.times, "units": spikes.unit_ids,
                                       "n_units": spikes.n_units, "unit_names": list(map(str, spikes.unit_names))}
                if request.behaviour_series:
                    series = recordings.read_nwb_timeseries(path, name=request.behaviour_series)
                    out["behaviour"] = (series.timestamps, series.data)
                try:
                    out["trials"] = recordings.read_nwb_trials(path, condition=request.trial_condition_column or None)
                except recordings.RecordingFormatError as exc:
                    # a file without trials is binned without them, unless a condition was asked for
                    if request.trial_condition_column or "no trials table" not in str(exc):
                        raise
                return out
            return await self.compute(read)
        if source == "kilosort":
            folder = tmp / "kilosort"
            folder.mkdir()
            for name, ref in inputs["kilosort"].items():
                await asyncio.to_thread(self.store.get_file, ref, folder / name)
            groups = tuple(g for g in request.kilosort.include_groups) or ("good",)
            spikes = await self.compute(recordings.read_kilosort_folder, folder, include=groups,
                                         sampling_rate_hz=request.kilosort.sampling_rate_hz or None)
            return {"kind": "spikes", "times": spikes.times, "units": spikes.unit_ids, "n_units": spikes.n_units,
                    "unit_names": list(map(str, spikes.unit_names))}
        values = await asyncio.to_thread(self.store.get_array, resolved.continuous.values)
        return {"kind": "continuous", "values": values, "rate": request.continuous.sampling_rate_hz}

    async def _behaviour(self, resolved) -> tuple[np.ndarray, np.ndarray]:
        values = await asyncio.to_thread(self.store.get_array, resolved.behaviour.values)
        timestamps = await asyncio.to_thread(self.store.get_array, resolved.behaviour.timestamps)
        return timestamps, values

    # --- Train, Predict, Evaluate

    async def Train(self, request, context):
        decoder = decoder_from_spec(request.decoder, seed=int(request.seed))
        history = require_non_negative(request.decoder.history_bins, "decoder.history_bins")
        future = require_non_negative(request.decoder.future_bins, "decoder.future_bins")
        n_folds = require_non_negative(request.n_folds, "n_folds") or 5
        if n_folds < 2:
            raise InvalidArgument(f"n_folds must be >= 2 (or 0 for 5), got {n_folds}", field="n_folds")
        gap = require_non_negative(request.gap_bins, "gap_bins")
        n_shuffles = require_non_negative(request.n_shuffles, "n_shuffles")
        if has_ref(request, "time_in_trial") and not has_ref(request, "trial_index"):
            raise InvalidArgument("time_in_trial needs trial_index too (time-resolved decoding works per trial)",
                                  field="trial_index")
        resolved = decoding_pb2.TrainRequest()
        resolved.CopyFrom(request)
        optional = [f for f in ("trial_index", "time_in_trial") if has_ref(request, f)]
        for field in ("features", "targets", *optional):
            getattr(resolved, field).CopyFrom(await self.resolve(getattr(request, field), field, array=True))
        prefix = result_prefix("decoding", "Train", resolved, SERVICE_VERSION)
        stored = await self.stored_result(prefix, decoding_pb2.TrainResult)
        if stored is not None:
            yield decoding_pb2.TrainResponse(result=stored)
            return
        features, targets = await self.load(resolved.features), await self.load(resolved.targets)
        trial_index = await self.load(resolved.trial_index) if "trial_index" in optional else None
        time_in_trial = await self.load(resolved.time_in_trial) if "time_in_trial" in optional else None
        _check_same_length(features=features, targets=targets, trial_index=trial_index, time_in_trial=time_in_trial)

        def work(progress):
            return _train(decoder, features, targets, history_bins=history, future_bins=future, n_folds=n_folds,
                          gap=gap, trial_index=trial_index, time_in_trial=time_in_trial, n_shuffles=n_shuffles,
                          seed=int(request.seed), progress=progress)

        outcome = None
        async with self.limiter.slot():
            async for event in stream_progress(work):
                if event.progress is not None:
                    yield decoding_pb2.TrainResponse(progress=event.progress)
                else:
                    outcome = event.result
        evaluation, model, shuffle, resolved_time, figure = outcome
        SAMPLES_DECODED.labels(method="Train").inc(evaluation.n_tested * (1 + len(shuffle)) + features.shape[0])
        MODELS_TRAINED.labels(decoder=decoder.decoder_name).inc()
        result = decoding_pb2.TrainResult(scores=_scores_message(evaluation), shuffled_scores=shuffle,
                                          time_resolved_times_s=resolved_time[0],
                                          time_resolved_scores=resolved_time[1])
        result.model.CopyFrom(await self.put_bytes(f"{prefix}/model.npz", model, MODEL_MEDIA_TYPE))
        result.predictions.CopyFrom(await self.put_array(f"{prefix}/predictions", evaluation.predictions))
        result.figure.CopyFrom(await self.put_bytes(f"{prefix}/figure.png", figure, PNG))
        yield decoding_pb2.TrainResponse(result=await self.store_result(prefix, result, resolved, SERVICE_VERSION))

    async def Predict(self, request, context):
        decoder, metadata, model_ref = await self.load_model(request.model, DECODERS)
        features_ref, features = await self.resolve_and_load(request.features, "features")
        resolved = decoding_pb2.PredictRequest(model=model_ref, features=features_ref)
        prefix = result_prefix("decoding", "Predict", resolved, SERVICE_VERSION)
        predictions, probabilities = await self.compute(_predict, decoder, features, metadata)
        SAMPLES_DECODED.labels(method="Predict").inc(features.shape[0])
        response = decoding_pb2.PredictResponse(predictions=await self.put_array(f"{prefix}/predictions", predictions))
        if probabilities is not None:
            response.probabilities.CopyFrom(await self.put_array(f"{prefix}/probabilities", probabilities))
        return response

    async def Evaluate(self, request, context):
        decoder, metadata, model_ref = await self.load_model(request.model, DECODERS)
        features_ref, features = await self.resolve_and_load(request.features, "features")
        targets_ref, targets = await self.resolve_and_load(request.targets, "targets")
        _check_same_length(features=features, targets=targets)
        resolved = decoding_pb2.EvaluateRequest(model=model_ref, features=features_ref, targets=targets_ref)
        prefix = result_prefix("decoding", "Evaluate", resolved, SERVICE_VERSION)
        report, figure = await self.compute(_evaluate, decoder, features, targets, metadata)
        SAMPLES_DECODED.labels(method="Evaluate").inc(features.shape[0])
        return decoding_pb2.EvaluateResponse(
            scores=_scores_message(report),
            predictions=await self.put_array(f"{prefix}/predictions", report.predictions),
            figure=await self.put_bytes(f"{prefix}/figure.png", figure, PNG))

    # --- CompareRepresentations

    async def CompareRepresentations(self, request, context):
        n_permutations = require_non_negative(request.n_permutations, "n_permutations") or 10000
        if n_permutations > 1_000_000:
            raise InvalidArgument(f"n_permutations={n_permutations} is more than 1000000", field="n_permutations")
        if request.comparison not in _COMPARISONS:
            raise InvalidArgument(f"unknown comparison {request.comparison}", field="comparison")
        representations = []
        resolved = decoding_pb2.CompareRepresentationsRequest()
        resolved.CopyFrom(request)
        for name in ("first", "second"):
            rep = getattr(request, name)
            if rep.metric not in _METRICS:
                raise InvalidArgument(f"unknown metric {rep.metric}", field=f"{name}.metric")
            ref, patterns = await self.resolve_and_load(rep.patterns, f"{name}.patterns")
            getattr(resolved, name).patterns.CopyFrom(ref)
            representations.append((patterns, _METRICS[rep.metric]))
        prefix = result_prefix("decoding", "CompareRepresentations", resolved, SERVICE_VERSION)
        out = await self.compute(_compare, representations, method=_COMPARISONS[request.comparison],
                                  n_permutations=n_permutations, seed=int(request.seed))
        return decoding_pb2.CompareRepresentationsResponse(
            first_rdm=await self.put_array(f"{prefix}/first_rdm", out["rdms"][0]),
            second_rdm=await self.put_array(f"{prefix}/second_rdm", out["rdms"][1]),
            statistic=out["statistic"], p_value=out["p_value"], n_permutations=n_permutations,
            figure=await self.put_bytes(f"{prefix}/figure.png", out["figure"], PNG))


# ------------------------------------------------------------------------------------------------
# the work each RPC runs in a worker thread (plain functions over arrays)


def _check_same_length(**arrays: np.ndarray | None) -> None:
    lengths = {name: a.shape[0] if a.ndim else 0 for name, a in arrays.items() if a is not None}
    if len(set(lengths.values())) > 1:
        raise InvalidArgument("inputs must have one sample per time bin along axis 0, got "
                              + ", ".join(f"{name} {n}" for name, n in lengths.items()), reason="LENGTH_MISMATCH")


def _bin_recording(recording: dict[str, Any], *, bin_width_s: float, start_s: float, stop_s: float,
                   behaviour: tuple[np.ndarray, np.ndarray] | None) -> dict[str, Any]:
    if recording["kind"] == "spikes":
        times = np.asarray(recording["times"], dtype=np.float64)
        if times.ndim != 1 or np.asarray(recording["units"]).shape != times.shape:
            raise ValueError(f"spike times and unit ids must be 1-D arrays of one length, got "
                             f"{times.shape} and {np.asarray(recording['units']).shape}")
        if times.size == 0:
            raise ValueError("the recording has no spikes")
        if not (start_s or stop_s):
            start_s = float(np.floor(times.min() / bin_width_s) * bin_width_s)
            stop_s = float(times.max()) + bin_width_s
        counts = bin_spike_trains(times, recording["units"], bin_width_s=bin_width_s, start_s=start_s,
                                  stop_s=stop_s, n_units=recording["n_units"])
        names = recording.get("unit_names") or [str(i) for i in range(counts.shape[1])]
    else:
        values = np.asarray(recording["values"])
        if values.ndim == 1:
            values = values[:, np.newaxis]
        if not (start_s or stop_s):
            stop_s = values.shape[0] / recording["rate"]
        counts = recordings.bin_continuous(values, sampling_rate_hz=recording["rate"], bin_width_s=bin_width_s,
                                           start_s=start_s, stop_s=stop_s).astype(np.float32)
        names = [str(i) for i in range(counts.shape[1])]
    n_bins = counts.shape[0]
    centres = start_s + (np.arange(n_bins) + 0.5) * bin_width_s
    out: dict[str, Any] = {"counts": counts.astype(np.float32, copy=False), "bin_centres": centres,
                           "unit_names": names}
    if behaviour is not None:
        timestamps, values = behaviour
        out["behaviour"] = recordings.align_to_bins(timestamps, values, start_s=start_s, bin_width_s=bin_width_s,
                                                    n_bins=n_bins)
    trials = recording.get("trials")
    if trials is not None:
        trial_index, time_in_trial = recordings.trial_structure(centres, trials)
        out["trial_index"], out["time_in_trial"] = trial_index, time_in_trial
        if getattr(trials, "condition", None) is not None:
            condition = np.full(n_bins, -1, dtype=np.int64)
            inside = trial_index >= 0
            condition[inside] = np.asarray(trials.condition)[trial_index[inside]]
            out["condition"] = condition
    return out


def _train(decoder: Decoder, features, targets, *, history_bins: int, future_bins: int, n_folds: int, gap: int,
           trial_index, time_in_trial, n_shuffles: int, seed: int, progress):
    """Cross-validate, control, resolve in time, refit on everything: (report, model bytes, ...)."""
    stages = [("cross-validate", 3.0)] + ([("shuffle", 2.0)] if n_shuffles else []) + \
        ([("time-resolved", 2.0)] if time_in_trial is not None else []) + [("fit", 1.0)]
    total = sum(w for _, w in stages)
    bounds, at = {}, 0.0
    for name, weight in stages:
        bounds[name] = (at / total, (at + weight) / total)
        at += weight

    def reporter(stage: str):
        lo, hi = bounds[stage]
        return lambda fraction, message: progress(fraction_done=lo + (hi - lo) * fraction, stage=stage,
                                                  message=message)

    trial = None if trial_index is None else np.asarray(trial_index).astype(np.int64)
    window = dict(history_bins=history_bins, future_bins=future_bins)
    evaluation = cross_validate(decoder, features, targets, n_folds=n_folds, gap=gap, trial_index=trial,
                                report=reporter("cross-validate"), **window)
    shuffle: list[float] = []
    if n_shuffles:
        shuffle = shuffled_control(decoder, features, targets, n_folds=n_folds, gap=gap, trial_index=trial,
                                   n_shuffles=n_shuffles, seed=seed, report=reporter("shuffle"), **window).scores.tolist()
    resolved_time: tuple[list[float], list[float]] = ([], [])
    if time_in_trial is not None:
        result = time_resolved_decoding(decoder, features, targets, trial_index=trial, time_in_trial_s=time_in_trial,
                                        n_folds=n_folds, report=reporter("time-resolved"), **window)
        resolved_time = (result.times_s.tolist(), result.scores.tolist())
    X, valid = window_tensor(features, **window)
    rows = valid if trial is None else valid & (trial >= 0)
    y = np.asarray(targets)
    model = decoder.fit(X[rows], y[rows], report=reporter("fit"))
    metadata = {"history_bins": history_bins, "future_bins": future_bins, "n_features": int(X.shape[2]),
                "task": decoder.task}
    figure = _figure(evaluation, y, f"{decoder.decoder_name}: cross-validated "
                     + (f"accuracy {evaluation.accuracy:.3f}" if decoder.task == "classification"
                        else f"R2 {float(np.nanmean(evaluation.r2)):.3f}"))
    return evaluation, save_model(model, metadata=metadata), shuffle, resolved_time, figure


def _windows_for(decoder: Decoder, features: np.ndarray, metadata: dict[str, Any]):
    history, future = int(metadata.get("history_bins", 0)), int(metadata.get("future_bins", 0))
    features = np.asarray(features)
    n_features = features.shape[1] if features.ndim == 2 else 1
    if features.ndim > 2 or n_features != metadata.get("n_features", n_features):
        raise ValueError(f"the model was trained on {metadata.get('n_features')} features per bin; the features "
                         f"given have shape {features.shape}")
    return window_tensor(features, history_bins=history, future_bins=future)


def _predict(decoder: Decoder, features: np.ndarray, metadata: dict[str, Any]):
    X, valid = _windows_for(decoder, features, metadata)
    if decoder.task == "classification":
        labels = np.full(X.shape[0], -1, dtype=np.int64)
        labels[valid] = decoder.predict(X[valid])
        probabilities = np.full((X.shape[0], len(decoder.classes_)), np.nan)
        probabilities[valid] = decoder.predict_proba(X[valid])
        return labels, probabilities
    predicted = decoder.predict(X[valid])
    out = np.full((X.shape[0], predicted.shape[1]), np.nan)
    out[valid] = predicted
    return out, None


def _evaluate(decoder: Decoder, features, targets, metadata: dict[str, Any]):
    X, valid = _windows_for(decoder, features, metadata)
    y = check_targets(targets, task=decoder.task, n_samples=X.shape[0])
    predicted = decoder.predict(X[valid])
    if decoder.task == "classification":
        scores = classification_scores(y[valid], predicted)
        predictions = np.full(X.shape[0], np.nan)
        predictions[valid] = predicted
        report = EvaluationReport(task="classification", predictions=predictions, fold_scores=np.empty(0),
                                  n_tested=int(valid.sum()), **scores)
    else:
        predictions = np.full(y.shape, np.nan)
        predictions[valid] = predicted
        report = EvaluationReport(task="regression", predictions=predictions, fold_scores=np.empty(0),
                                  n_tested=int(valid.sum()), **regression_scores(y[valid], predicted))
    return report, _figure(report, y, f"{decoder.decoder_name} on new data")


def _compare(representations, *, method: str, n_permutations: int, seed: int) -> dict[str, Any]:
    rdms = []
    for patterns, metric in representations:
        rdms.append(rsa.representational_dissimilarity(patterns, metric=metric))
    if rdms[0].shape != rdms[1].shape:
        raise ValueError(f"the two representations have {rdms[0].shape[0]} and {rdms[1].shape[0]} conditions; "
                         f"they must describe the same conditions in the same order")
    test = rsa.rdm_permutation_test(rdms[0], rdms[1], method=method, n_permutations=n_permutations, seed=seed)
    figure = plots.rdm_figure(rdms, titles=[f"first ({representations[0][1]})", f"second ({representations[1][1]})"],
                              suptitle=f"{method} {test.statistic:.3f}, p = {test.p_value:.4f}")
    return {"rdms": rdms, "statistic": float(test.statistic), "p_value": float(test.p_value), "figure": figure}


def build_service(settings: Settings) -> ServiceDefinition:
    store = ArtifactStore.from_settings(settings)
    limiter = ComputeLimiter(threads=settings.compute_threads, apply=True)
    servicer = DecodingServicer(store, limiter=limiter, max_input_bytes=settings.max_input_bytes)
    return ServiceDefinition(name="decoding", servicer=servicer,
                             add_to_server=decoding_pb2_grpc.add_DecodingServiceServicer_to_server,
                             service_full_name=SERVICE_NAME, version=SERVICE_VERSION)
