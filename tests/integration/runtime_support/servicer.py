"""A DecodingService whose behaviour the request chooses, to drive the runtime through each outcome.

``BinRecording`` answers by ``bin_width_s``: :data:`NOT_FOUND_WIDTH` raises ``NotFound``,
:data:`INVALID_WIDTH` a ``ValueError``, :data:`CRASH_WIDTH` an unexpected ``RuntimeError``,
:data:`SLOW_WIDTH` sleeps :data:`SLOW_SECONDS`; any other width answers ``n_bins`` of the span.

``Train`` streams ``n_folds`` progress events (3 when 0), ``decoder.history_bins`` milliseconds
apart, then a result; with ``decoder.future_bins < 0`` it raises ``ValueError`` after the first event.
"""

from __future__ import annotations

import asyncio
import threading

from neuromesh.common.v1 import progress_pb2
from neuromesh.decoding.v1 import decoding_pb2, decoding_pb2_grpc
from services.common.errors import NotFound
from services.common.server import ServiceDefinition
from services.common.settings import Settings

NOT_FOUND_WIDTH = 404.0
INVALID_WIDTH = -1.0
CRASH_WIDTH = 500.0
SLOW_WIDTH = 2.0
SLOW_SECONDS = 5.0
# Text the unexpected error carries; it must reach the log, never the client.
SECRET = "password=hunter2 at /srv/private/state.db"

SERVICE_FULL_NAME = decoding_pb2.DESCRIPTOR.services_by_name["DecodingService"].full_name


class RuntimeTestServicer(decoding_pb2_grpc.DecodingServiceServicer):
    """Records what the runtime did to its calls, for tests in the same process."""

    def __init__(self) -> None:
        # Set from the server's event loop thread, read from the test's thread.
        self.stream_cancelled = threading.Event()
        self.unary_cancelled = threading.Event()

    async def BinRecording(self, request, context):
        width = request.bin_width_s
        if width == NOT_FOUND_WIDTH:
            raise NotFound("artifact s3://neuromesh/spikes.zarr does not exist", reason="ARTIFACT_NOT_FOUND",
                           metadata={"key": "spikes.zarr"})
        if width == INVALID_WIDTH:
            raise ValueError(f"bin_width_s must be > 0, got {width}")
        if width == CRASH_WIDTH:
            raise RuntimeError(SECRET)
        if width == SLOW_WIDTH:
            try:
                await asyncio.sleep(SLOW_SECONDS)
            except asyncio.CancelledError:
                self.unary_cancelled.set()
                raise
        return decoding_pb2.BinRecordingResponse(n_bins=int((request.stop_s - request.start_s) // width))

    async def Train(self, request, context):
        n_folds = request.n_folds or 3
        try:
            for fold in range(n_folds):
                yield decoding_pb2.TrainResponse(progress=progress_pb2.Progress(
                    fraction_done=fold / n_folds, stage="fold", message=f"fold {fold + 1} of {n_folds}"))
                if request.decoder.future_bins < 0:
                    raise ValueError(f"future_bins must be >= 0, got {request.decoder.future_bins}")
                await asyncio.sleep(request.decoder.history_bins / 1000)
        except asyncio.CancelledError:
            self.stream_cancelled.set()
            raise
        yield decoding_pb2.TrainResponse(result=decoding_pb2.TrainResult(scores=decoding_pb2.EvaluationScores(r2=[0.5])))


def build(settings: Settings) -> ServiceDefinition:
    """The service definition ``run_service`` starts."""
    return ServiceDefinition(name="decoding-test", servicer=RuntimeTestServicer(),
                             add_to_server=decoding_pb2_grpc.add_DecodingServiceServicer_to_server,
                             service_full_name=SERVICE_FULL_NAME)
