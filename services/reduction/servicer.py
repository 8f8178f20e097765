"""gRPC adapter of the reduction service: validate, load artifacts, call the core, store, answer.

The steps every RPC takes are :class:`services.common.rpc.StoreBackedServicer`'s; this module
adds the reduction-specific work (:func:`fit_and_score`), run in a worker thread, and the
out-of-core path: PCA of an activity array larger than ``NEUROMESH_MAX_INPUT_BYTES`` streams
the Zarr array chunk by chunk for the fit and writes the latents block by block.

The brain-model RPCs (``InferCircuit``, ``FindFixedPoints``, ``CompareLearningRules``, all
streaming) keep their checks, computation and storage in :mod:`services.reduction.circuits` and
:mod:`services.reduction.learning`; here they share one sequence of steps
(``_brain_model_call``).

Example
-------
Started by ``python -m services.reduction``; from lab software::

    stub = reduction_pb2_grpc.ReductionServiceStub(grpc.insecure_channel("127.0.0.1:50052"))
    for event in stub.Fit(reduction_pb2.FitRequest(
            activity=counts_ref, method=reduction_pb2.MethodSpec(name="pca"))):
        ...
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neuromesh.reduction.v1 import reduction_pb2, reduction_pb2_grpc
from services.common.compute import ComputeLimiter
from services.common.errors import InvalidArgument, NotFound, ResourceExhausted
from services.common.metrics import neuromesh_counter
from services.common.progress import stream_progress
from services.common.results import result_prefix
from services.common.rpc import PNG, StoreBackedServicer, has_ref, model_from_spec, require_finite
from services.common.server import ServiceDefinition
from services.common.settings import Settings
from services.common.store import ArtifactStore

from . import circuits, learning, plots
from .core import preprocessing, scores
from .core.base import REDUCERS, Reducer, check_activity, save_model
from .core.factor_analysis import FactorAnalysis
from .core.pca import PCA, fit_pca_streaming, transform_streaming

SERVICE_VERSION = "0.1.0"
SERVICE_NAME = reduction_pb2.DESCRIPTOR.services_by_name["ReductionService"].full_name
MODEL_MEDIA_TYPE = "application/vnd.neuromesh.reducer+npz"

SAMPLES_REDUCED = neuromesh_counter("reduction_samples_total",
                                    "Time bins (samples x trials) passed through a reduction method",
                                    labelnames=("method",))
BYTES_STREAMED = neuromesh_counter("reduction_streamed_bytes_total",
                                   "Bytes of activity read chunk by chunk by the out-of-core path")


# ------------------------------------------------------------------------------------------------
# the work, as a plain function over arrays


@dataclass
class FitOutcome:
    model: Reducer
    latents: np.ndarray
    scores: reduction_pb2.ReductionScores
    figures: dict[str, bytes] = field(default_factory=dict)


def _as_trials(X: np.ndarray) -> np.ndarray:
    return X if X.ndim == 3 else X[np.newaxis]


def _fit_static(model: Reducer, X: np.ndarray, report) -> np.ndarray:
    """Fit a static method on every time bin; latents shaped like ``X`` with components last."""
    flat = X.reshape(-1, X.shape[-1])
    latents = model.fit(flat, report=report).transform(flat)
    return np.asarray(latents).reshape(*X.shape[:-1], -1)


def _reconstruct(model: Reducer, X: np.ndarray) -> np.ndarray | None:
    if not hasattr(model, "reconstruct"):
        return None
    if model.input_ndim == 3:
        return np.asarray(model.reconstruct(_as_trials(X))).reshape(X.shape)
    return np.asarray(model.reconstruct(X.reshape(-1, X.shape[-1]))).reshape(X.shape)


def _split_trials(n_trials: int, test_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    n_test = max(1, int(round(n_trials * test_fraction)))
    if n_trials - n_test < 2:
        raise ValueError(f"{n_trials} trials are too few to hold out {n_test} for testing")
    return np.arange(n_trials - n_test), np.arange(n_trials - n_test, n_trials)


def _co_smoothing(model: Reducer, X: np.ndarray, heldout: np.ndarray, test_fraction: float, report) -> float:
    """Bits per spike on held-out neurons of the test trials (Neural Latents Benchmark)."""
    from sklearn.base import clone

    if X.ndim != 3:
        raise ValueError("co-smoothing needs trials: activity of shape (n_trials, n_time, n_neurons)")
    n_neurons = X.shape[2]
    if heldout.min() < 0 or heldout.max() >= n_neurons or np.unique(heldout).size != heldout.size:
        raise ValueError(f"heldout_neurons must be distinct indices in 0..{n_neurons - 1}, got {heldout.tolist()}")
    heldin = np.setdiff1d(np.arange(n_neurons), heldout)
    if heldin.size == 0:
        raise ValueError("every neuron is held out: co-smoothing needs held-in neurons to predict from")
    train, test = _split_trials(X.shape[0], test_fraction)
    evaluator = clone(model)
    if evaluator.input_ndim == 3:
        # the dynamics model trains on every neuron, infers from the held-in ones only
        evaluator.set_params(heldin_neurons=heldin.tolist())
        evaluator.fit(X[train], report=report)
        rates = np.asarray(evaluator.predict_rates(X[test][:, :, heldin]))[..., heldout]
        return float(scores.bits_per_spike(X[test][..., heldout].reshape(-1, heldout.size),
                                           rates.reshape(-1, heldout.size)))
    train_latents = _fit_static(evaluator, X[train][..., heldin], report)
    test_latents = np.asarray(evaluator.transform(X[test][..., heldin].reshape(-1, heldin.size)))
    return float(scores.co_smoothing_bits_per_spike(
        train_latents.reshape(-1, train_latents.shape[-1]), X[train][..., heldout].reshape(-1, heldout.size),
        test_latents, X[test][..., heldout].reshape(-1, heldout.size)))


def _unscored() -> reduction_pb2.ReductionScores:
    """Scores with every optional figure NaN (not computed), rather than proto's default 0."""
    return reduction_pb2.ReductionScores(explained_variance=math.nan, co_smoothing_bits_per_spike=math.nan,
                                         forward_prediction_r2=math.nan, log_likelihood=math.nan,
                                         latent_r2_mean=math.nan)


def _score_fitted(model: Reducer, X: np.ndarray, out: reduction_pb2.ReductionScores, *,
                  latents: np.ndarray | None = None, truth: np.ndarray | None = None) -> None:
    """Fill ``out`` with what a fitted model says of ``X``: explained variance (if it
    reconstructs), log-likelihood (factor analysis), latent recovery against ``truth`` (from
    ``latents``, the model's latents of ``X``, computed when not given)."""
    flat = X.reshape(-1, X.shape[-1])
    reconstruction = _reconstruct(model, X)
    if reconstruction is not None:
        out.explained_variance = float(scores.explained_variance_score(flat, reconstruction.reshape(flat.shape)).total)
    if isinstance(model, FactorAnalysis):
        out.log_likelihood = float(model.score(flat))
    if truth is not None:
        truth = np.asarray(truth, dtype=np.float64)
        latents = _transform(model, X) if latents is None else latents
        if truth.shape[:-1] != latents.shape[:-1]:
            raise ValueError(f"true_latents must match the activity's samples: shape {latents.shape[:-1]} + "
                             f"(n_latents,), got {truth.shape}")
        r2 = scores.latent_recovery_r2(latents.reshape(-1, latents.shape[-1]), truth.reshape(-1, truth.shape[-1]))
        out.latent_r2[:] = np.asarray(r2.r2, dtype=float).tolist()
        out.latent_r2_mean = float(r2.mean_r2)


def fit_and_score(model: Reducer, activity: np.ndarray, *, smooth_sigma_bins: float = 0.0,
                  soft_normalize: float = 0.0, trial_average: bool = False, conditions: np.ndarray | None = None,
                  true_latents: np.ndarray | None = None, heldout_neurons: np.ndarray | None = None,
                  test_fraction: float = 0.2, forward_bins: int = 0, progress=None) -> FitOutcome:
    """Preprocess, (co-smoothing, forward prediction,) fit, transform and score one method.

    ``progress(fraction_done=..., stage=..., message=...)`` is a
    :class:`services.common.progress.ProgressReporter`; a raise from it stops the work.
    """
    def reporter(stage: str, lo: float, hi: float):
        def report(fraction: float, message: str) -> None:
            if progress is not None:
                progress(fraction_done=lo + (hi - lo) * min(max(fraction, 0.0), 1.0), stage=stage, message=message)
        return report

    X = np.asarray(activity)
    if X.ndim not in (2, 3):
        raise ValueError(f"activity must have shape (n_samples, n_neurons) or (n_trials, n_time, n_neurons), "
                         f"got rank {X.ndim} with shape {X.shape}")
    X = check_activity(X, ndim=X.ndim)
    if conditions is not None:
        conditions = np.asarray(conditions)
        if X.ndim != 3 or conditions.shape != (X.shape[0],):
            raise ValueError(f"conditions must hold one label per trial, shape ({X.shape[0] if X.ndim == 3 else '?'},)"
                             f", for activity of shape (n_trials, n_time, n_neurons); got {conditions.shape} for "
                             f"activity {X.shape}")
    if smooth_sigma_bins > 0:
        X = preprocessing.gaussian_smooth(X, sigma_bins=smooth_sigma_bins)  # along time, within trials
    if soft_normalize > 0:
        X = preprocessing.soft_normalize(X.reshape(-1, X.shape[-1]), soft=soft_normalize)[0].reshape(X.shape)
    if trial_average:
        if conditions is None:
            raise ValueError("trial_average needs conditions (one label per trial)")
        X, conditions = preprocessing.trial_average(X, conditions)
    if model.input_ndim == 3 and X.ndim != 3:
        raise ValueError(f"{model.reducer_name} is a dynamics model: it needs activity of shape "
                         f"(n_trials, n_time, n_neurons), got {X.shape}")

    out = _unscored()
    at = 0.0
    if heldout_neurons is not None and len(heldout_neurons):
        out.co_smoothing_bits_per_spike = _co_smoothing(model, X, np.asarray(heldout_neurons), test_fraction,
                                                        reporter("co-smoothing", 0.0, 0.4))
        at = 0.4
    if forward_bins:
        if model.input_ndim != 3 or not hasattr(model, "predict_future"):
            raise ValueError(f"forward prediction needs a dynamics model ('lfads'), not {model.reducer_name!r}")
        if not 0 < forward_bins < X.shape[1] - 1:
            raise ValueError(f"forward_bins={forward_bins} must be between 1 and n_time - 2 = {X.shape[1] - 2}")
        from sklearn.base import clone
        train, test = _split_trials(X.shape[0], test_fraction)
        observed = X.shape[1] - forward_bins
        forecaster = clone(model).fit(X[train][:, :observed], report=reporter("forward", at, at + 0.3))
        predicted = np.asarray(forecaster.predict_future(X[test][:, :observed], forward_bins))
        out.forward_prediction_r2 = float(scores.forward_prediction_r2(X[test][:, observed:], predicted).mean_r2)
        at += 0.3

    fit_report = reporter("fit", at, 1.0)
    if model.input_ndim == 3:
        latents = np.asarray(model.fit(X, report=fit_report).transform(X))
    else:
        latents = _fit_static(model, X, fit_report)
    _score_fitted(model, X, out, latents=latents, truth=true_latents)
    ratios = getattr(model, "explained_variance_ratio_", None)
    if ratios is not None:
        out.explained_variance_ratio[:] = np.asarray(ratios, dtype=float).tolist()
    name = model.reducer_name
    figures = {"components_figure": plots.components_figure(latents, title=f"{name}: latents over time"),
               "trajectories_figure": plots.trajectories_figure(latents, conditions=conditions,
                                                                title=f"{name}: trajectories" + ("" if latents.ndim == 3 else
                                                                      f" (first {min(len(latents), 400)} bins)"))}
    if ratios is not None:
        figures["variance_figure"] = plots.variance_figure(ratios, title=f"{name}: explained variance")
    return FitOutcome(model=model, latents=latents.astype(np.float32), scores=out, figures=figures)


# ------------------------------------------------------------------------------------------------
# the servicer


class ReductionServicer(StoreBackedServicer, reduction_pb2_grpc.ReductionServiceServicer):
    """Reduction RPCs over a shared :class:`ArtifactStore`."""

    async def Fit(self, request, context):
        method = model_from_spec(REDUCERS, request.method.name or "pca",
                                 request.method.params if request.method.HasField("params") else None,
                                 field="method", seed=int(request.seed))
        pre = request.preprocessing
        sigma = require_finite(pre.smooth_sigma_bins, "preprocessing.smooth_sigma_bins")
        soft = require_finite(pre.soft_normalize, "preprocessing.soft_normalize")
        if sigma < 0 or soft < 0:
            raise InvalidArgument("preprocessing values must be >= 0", field="preprocessing")
        test_fraction = require_finite(request.test_fraction, "test_fraction") or 0.2
        if not 0 < test_fraction < 1:
            raise InvalidArgument(f"test_fraction must be in (0, 1), got {test_fraction}", field="test_fraction")
        if request.forward_bins < 0:
            raise InvalidArgument(f"forward_bins must be >= 0, got {request.forward_bins}", field="forward_bins")
        resolved = reduction_pb2.FitRequest()
        resolved.CopyFrom(request)
        resolved.activity.CopyFrom(await self.resolve(request.activity, "activity", array=True, check_size=False))
        optional = [f for f in ("conditions", "true_latents") if has_ref(request, f)]
        for name in optional:
            getattr(resolved, name).CopyFrom(await self.resolve(getattr(request, name), name, array=True))
        prefix = result_prefix("reduction", "Fit", resolved, SERVICE_VERSION)
        stored = await self.stored_result(prefix, reduction_pb2.FitResult)
        if stored is not None:
            yield reduction_pb2.FitResponse(result=stored)
            return

        streamed = resolved.activity.size_bytes > self.max_input_bytes
        if streamed:
            async for event in self._fit_streaming(method, request, resolved, prefix):
                yield event
            return
        activity = await self.load(resolved.activity)
        conditions = await self.load(resolved.conditions) if "conditions" in optional else None
        true_latents = await self.load(resolved.true_latents) if "true_latents" in optional else None

        def work(progress):
            return fit_and_score(method, activity, smooth_sigma_bins=sigma, soft_normalize=soft,
                                 trial_average=pre.trial_average, conditions=conditions, true_latents=true_latents,
                                 heldout_neurons=np.asarray(request.heldout_neurons, dtype=np.int64),
                                 test_fraction=test_fraction, forward_bins=request.forward_bins, progress=progress)

        outcome = None
        async with self.limiter.slot():
            async for event in stream_progress(work):
                if event.progress is not None:
                    yield reduction_pb2.FitResponse(progress=event.progress)
                else:
                    outcome = event.result
        SAMPLES_REDUCED.labels(method=method.reducer_name).inc(int(np.prod(activity.shape[:-1])))
        result = reduction_pb2.FitResult(scores=outcome.scores)
        result.model.CopyFrom(await self.put_bytes(f"{prefix}/model.npz", save_model(
            outcome.model, metadata={"n_neurons": int(activity.shape[-1])}), MODEL_MEDIA_TYPE))
        result.latents.CopyFrom(await self.put_array(f"{prefix}/latents", outcome.latents))
        for name, png in outcome.figures.items():
            getattr(result, name).CopyFrom(await self.put_bytes(f"{prefix}/{name}.png", png, PNG))
        yield reduction_pb2.FitResponse(result=await self.store_result(prefix, result, resolved, SERVICE_VERSION))

    async def _fit_streaming(self, method: Reducer, request, resolved, prefix: str):
        """Out-of-core PCA: the activity is read chunk by chunk, twice (fit, then transform)."""
        if not isinstance(method, PCA):
            raise ResourceExhausted(f"activity of {resolved.activity.size_bytes} bytes exceeds "
                                    f"NEUROMESH_MAX_INPUT_BYTES={self.max_input_bytes}; only 'pca' streams arrays "
                                    f"larger than memory", field="activity")
        pre = request.preprocessing
        if pre.smooth_sigma_bins or pre.soft_normalize or pre.trial_average or request.heldout_neurons \
                or request.forward_bins or has_ref(request, "true_latents"):
            raise InvalidArgument("out-of-core PCA (activity larger than memory) takes no preprocessing, held-out "
                                  "neurons, forward prediction or true latents", field="preprocessing")
        array = await asyncio.to_thread(self.store.open_array, resolved.activity)
        if array.ndim != 2:
            raise InvalidArgument(f"out-of-core PCA needs activity of shape (n_samples, n_neurons), got {array.shape}",
                                  field="activity")
        n_components = method.n_components
        writer = await asyncio.to_thread(self.store.create_array, f"{prefix}/latents",
                                         (array.shape[0], n_components), "float32")

        def work(progress):
            def fit_report(fraction, message):
                progress(fraction_done=0.5 * fraction, stage="fit (streaming)", message=message)
            model = fit_pca_streaming(array, n_components=n_components, report=fit_report)
            progress(fraction_done=0.5, stage="transform (streaming)", message="writing latents")
            transform_streaming(model, array, out=writer)
            return model

        model = None
        try:
            async with self.limiter.slot():
                async for event in stream_progress(work):
                    if event.progress is not None:
                        yield reduction_pb2.FitResponse(progress=event.progress)
                    else:
                        model = event.result
            latents = await asyncio.to_thread(writer.finalize)
        except BaseException:
            await asyncio.to_thread(writer.abort)
            raise
        BYTES_STREAMED.inc(2 * resolved.activity.size_bytes)
        SAMPLES_REDUCED.labels(method="pca").inc(array.shape[0])
        result = reduction_pb2.FitResult(streamed=True, latents=latents, scores=_unscored())
        # the variance the components keep is what a reconstruction explains, without a third pass
        result.scores.explained_variance = float(np.sum(model.explained_variance_ratio_))
        result.scores.explained_variance_ratio[:] = np.asarray(model.explained_variance_ratio_, dtype=float).tolist()
        result.model.CopyFrom(await self.put_bytes(f"{prefix}/model.npz", save_model(
            model, metadata={"n_neurons": int(array.shape[1])}), MODEL_MEDIA_TYPE))
        result.variance_figure.CopyFrom(await self.put_bytes(
            f"{prefix}/variance_figure.png", plots.variance_figure(model.explained_variance_ratio_), PNG))
        yield reduction_pb2.FitResponse(result=await self.store_result(prefix, result, resolved, SERVICE_VERSION))

    async def Transform(self, request, context):
        model, metadata, model_ref = await self.load_model(request.model, REDUCERS)
        activity_ref = await self.resolve(request.activity, "activity", array=True, check_size=False)
        prefix = result_prefix("reduction", "Transform", reduction_pb2.TransformRequest(
            model=model_ref, activity=activity_ref), SERVICE_VERSION)
        if activity_ref.size_bytes > self.max_input_bytes and isinstance(model, PCA):
            array = await asyncio.to_thread(self.store.open_array, activity_ref)
            _check_neurons(array.shape, metadata)
            writer = await asyncio.to_thread(self.store.create_array, f"{prefix}/latents",
                                             (array.shape[0], model.n_components), "float32")
            try:
                await self.compute(transform_streaming, model, array, out=writer)
                latents = await asyncio.to_thread(writer.finalize)
            except BaseException:
                await asyncio.to_thread(writer.abort)
                raise
            return reduction_pb2.TransformResponse(latents=latents)
        activity_ref = await self.resolve(activity_ref, "activity", array=True)
        activity = await self.load(activity_ref)
        _check_neurons(activity.shape, metadata)
        latents = await self.compute(_transform, model, activity)
        SAMPLES_REDUCED.labels(method=model.reducer_name).inc(int(np.prod(activity.shape[:-1])))
        return reduction_pb2.TransformResponse(latents=await self.put_array(f"{prefix}/latents", latents))

    async def Score(self, request, context):
        model, metadata, _ = await self.load_model(request.model, REDUCERS)
        _, activity = await self.resolve_and_load(request.activity, "activity")
        _check_neurons(activity.shape, metadata)
        truth = None
        if has_ref(request, "true_latents"):
            _, truth = await self.resolve_and_load(request.true_latents, "true_latents")
        return reduction_pb2.ScoreResponse(scores=await self.compute(_score, model, activity, truth))


    # --- brain models: InferCircuit, FindFixedPoints (circuits.py), CompareLearningRules (learning.py)

    async def _brain_model_call(self, method: str, request, paths, compute, result_type, response_type):
        """The steps of every brain-model RPC: resolve the array inputs at ``paths`` (dotted field
        paths; NOT_FOUND names a missing one), reuse a stored result, else load them and run
        ``compute(arrays, progress)`` then store its outcome in a worker thread holding a compute
        slot, streaming progress; the report last."""
        resolved = type(request)()
        resolved.CopyFrom(request)
        for path in paths:
            try:
                ref = await self.resolve(circuits.get_ref(request, path), path, array=True)
            except NotFound as exc:
                raise NotFound(f"{path}: {exc.message}", reason=exc.reason, field=path,
                               metadata=exc.metadata) from None
            circuits.get_ref(resolved, path).CopyFrom(ref)
        prefix = result_prefix("reduction", method, resolved, SERVICE_VERSION)
        stored = await self.stored_result(prefix, result_type)
        if stored is not None:
            yield response_type(result=stored)
            return
        arrays = {path: await self.load(circuits.get_ref(resolved, path)) for path in paths}

        def work(progress):
            return circuits.store_outcome(self.store, prefix, compute(arrays, progress), progress)

        result = None
        async with self.limiter.slot():
            async with contextlib.aclosing(stream_progress(work)) as events:
                async for event in events:
                    if event.progress is not None:
                        yield response_type(progress=event.progress)
                    else:
                        result = event.result
        yield response_type(result=await self.store_result(prefix, result, resolved, SERVICE_VERSION))

    async def InferCircuit(self, request, context):
        options = circuits.circuit_options(request)

        def compute(arrays, progress):
            return circuits.run_circuit(options, arrays, progress, max_bytes=self.max_input_bytes)

        async for response in self._brain_model_call("InferCircuit", request, options.inputs, compute,
                                                     reduction_pb2.InferCircuitResult,
                                                     reduction_pb2.InferCircuitResponse):
            yield response

    async def FindFixedPoints(self, request, context):
        options = circuits.fixed_point_request_options(request)
        # what plays no part in the fixed points stays out of the result's key
        request = circuits.without_unused_network_parts(request)

        def compute(arrays, progress):
            return circuits.run_fixed_points(options, arrays, progress, max_bytes=self.max_input_bytes)

        async for response in self._brain_model_call("FindFixedPoints", request, options.inputs, compute,
                                                     reduction_pb2.FindFixedPointsResult,
                                                     reduction_pb2.FindFixedPointsResponse):
            yield response

    async def CompareLearningRules(self, request, context):
        options = learning.learning_options(request, max_bytes=self.max_input_bytes)

        def compute(arrays, progress):
            return learning.run_learning(options, arrays, progress)

        async for response in self._brain_model_call("CompareLearningRules", request, options.inputs, compute,
                                                     reduction_pb2.CompareLearningRulesResult,
                                                     reduction_pb2.CompareLearningRulesResponse):
            yield response


def _check_neurons(shape: tuple[int, ...], metadata: dict[str, Any]) -> None:
    expected = metadata.get("n_neurons")
    if len(shape) not in (2, 3) or (expected is not None and shape[-1] != expected):
        raise InvalidArgument(f"the model was fitted on {expected} neurons; the activity has shape {tuple(shape)}",
                              reason="SHAPE_MISMATCH", field="activity")


def _transform(model: Reducer, activity: np.ndarray) -> np.ndarray:
    X = check_activity(activity, ndim=activity.ndim) if activity.ndim in (2, 3) else activity
    if model.input_ndim == 3:
        return np.asarray(model.transform(_as_trials(X))).astype(np.float32)
    return np.asarray(model.transform(X.reshape(-1, X.shape[-1]))).reshape(*X.shape[:-1], -1).astype(np.float32)


def _score(model: Reducer, activity: np.ndarray, truth: np.ndarray | None) -> reduction_pb2.ReductionScores:
    X = check_activity(activity, ndim=activity.ndim)
    out = _unscored()
    _score_fitted(model, X, out, truth=truth)
    return out


def build_service(settings: Settings) -> ServiceDefinition:
    store = ArtifactStore.from_settings(settings)
    limiter = ComputeLimiter(threads=settings.compute_threads, apply=True)
    servicer = ReductionServicer(store, limiter=limiter, max_input_bytes=settings.max_input_bytes)
    return ServiceDefinition(name="reduction", servicer=servicer,
                             add_to_server=reduction_pb2_grpc.add_ReductionServiceServicer_to_server,
                             service_full_name=SERVICE_NAME, version=SERVICE_VERSION)
