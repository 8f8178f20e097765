"""gRPC adapter of the decoding service: validate, load artifacts, call the core, store, answer.

Example
-------
Started by ``python -m services.decoding``; from lab software::

    stub = decoding_pb2_grpc.DecodingServiceStub(grpc.insecure_channel("127.0.0.1:50051"))
    counts = stub.BinSpikes(decoding_pb2.BinSpikesRequest(spike_times=t_ref, spike_units=u_ref,
                            bin_width_s=0.05, start_s=0, stop_s=300)).counts
"""

from __future__ import annotations

import asyncio
import math

import numpy as np

from neuromesh.decoding.v1 import decoding_pb2, decoding_pb2_grpc
from services.common.errors import InvalidArgument
from services.common.progress import stream_progress
from services.common.results import result_prefix
from services.common.server import ServiceDefinition
from services.common.settings import Settings
from services.common.store import ArtifactStore

from .core.binning import bin_spike_trains
from .core.wiener import cross_validate_decoder

#: bump when an algorithm's output changes, so cached results are not reused across versions
SERVICE_VERSION = "0.1.0"
SERVICE_NAME = decoding_pb2.DESCRIPTOR.services_by_name["DecodingService"].full_name


def _require_ref(request, field: str):
    ref = getattr(request, field)
    if not request.HasField(field) or not ref.key:
        raise InvalidArgument(f"{field} is required: an artifact reference with a key", field=f"{field}.key")
    return ref


def _require_finite(value: float, field: str) -> float:
    if not math.isfinite(value):
        raise InvalidArgument(f"{field} must be a finite number, got {value}", field=field)
    return value


class DecodingServicer(decoding_pb2_grpc.DecodingServiceServicer):
    """Decoding RPCs over a shared :class:`ArtifactStore`."""

    def __init__(self, store: ArtifactStore) -> None:
        self.store = store

    async def _load(self, ref, field: str) -> tuple[object, np.ndarray]:
        resolved = await asyncio.to_thread(self.store.resolve, ref)
        array = await asyncio.to_thread(self.store.get_array, resolved)
        return resolved, array

    async def BinSpikes(self, request, context):
        times_field, units_field = _require_ref(request, "spike_times"), _require_ref(request, "spike_units")
        bin_width = _require_finite(request.bin_width_s, "bin_width_s")
        start, stop = _require_finite(request.start_s, "start_s"), _require_finite(request.stop_s, "stop_s")
        if request.n_units < 0:
            raise InvalidArgument(f"n_units must be >= 0, got {request.n_units}", field="n_units")
        times_ref, times = await self._load(times_field, "spike_times")
        units_ref, units = await self._load(units_field, "spike_units")
        resolved = decoding_pb2.BinSpikesRequest()
        resolved.CopyFrom(request)
        resolved.spike_times.CopyFrom(times_ref)
        resolved.spike_units.CopyFrom(units_ref)
        counts = await asyncio.to_thread(bin_spike_trains, times, units, bin_width_s=bin_width, start_s=start,
                                         stop_s=stop, n_units=request.n_units or None)
        key = result_prefix("decoding", "BinSpikes", resolved, SERVICE_VERSION) + "/counts"
        ref = await asyncio.to_thread(self.store.put_array, key, counts, if_exists="return_existing")
        return decoding_pb2.BinSpikesResponse(counts=ref, n_bins=counts.shape[0])

    async def CrossValidate(self, request, context):
        if request.decoder not in (decoding_pb2.DECODER_UNSPECIFIED, decoding_pb2.DECODER_WIENER):
            raise InvalidArgument(f"unknown decoder {request.decoder}", field="decoder")
        for field in ("history_bins", "future_bins", "n_folds", "gap_bins"):
            if getattr(request, field) < 0:
                raise InvalidArgument(f"{field} must be >= 0, got {getattr(request, field)}", field=field)
        alphas = [_require_finite(a, "alphas") for a in request.alphas]
        if any(a <= 0 for a in alphas):
            raise InvalidArgument("alphas must be > 0", field="alphas")
        features_ref, features = await self._load(_require_ref(request, "features"), "features")
        targets_ref, targets = await self._load(_require_ref(request, "targets"), "targets")
        n_folds = request.n_folds or 5

        def work(report):
            def on_fold(fold_index, n_total, fold_r2):
                report(fraction_done=(fold_index + 1) / n_total, stage="fold",
                       message=f"fold {fold_index + 1} of {n_total}: mean R2 {float(np.mean(fold_r2)):.3f}",
                       counters={"folds_done": fold_index + 1})

            return cross_validate_decoder(features, targets, history_bins=request.history_bins,
                                          future_bins=request.future_bins, n_folds=n_folds,
                                          gap=request.gap_bins or None, alphas=alphas or None, on_fold=on_fold)

        async for event in stream_progress(work):
            if event.progress is not None:
                yield decoding_pb2.CrossValidateResponse(progress=event.progress)
                continue
            result = event.result
            resolved = decoding_pb2.CrossValidateRequest()
            resolved.CopyFrom(request)
            resolved.features.CopyFrom(features_ref)
            resolved.targets.CopyFrom(targets_ref)
            key = result_prefix("decoding", "CrossValidate", resolved, SERVICE_VERSION) + "/predictions"
            predictions = await asyncio.to_thread(self.store.put_array, key, result.predictions,
                                                  if_exists="return_existing")
            yield decoding_pb2.CrossValidateResponse(result=decoding_pb2.CrossValidateResult(
                r2=result.r2.tolist(), pearson_r=result.pearson_r.tolist(), rmse=result.rmse.tolist(),
                fold_alphas=list(result.fold_alphas), predictions=predictions))


def build_service(settings: Settings) -> ServiceDefinition:
    store = ArtifactStore.from_settings(settings)
    return ServiceDefinition(name="decoding", servicer=DecodingServicer(store),
                             add_to_server=decoding_pb2_grpc.add_DecodingServiceServicer_to_server,
                             service_full_name=SERVICE_NAME)
