"""Stand-ins for the SDK's unit tests: a scripted gRPC simulation service, an object store kept in
a dict and a failed-call object, so calls, retries, errors, uploads and cancellation are tested
without the real services or an S3 server."""

from __future__ import annotations

import hashlib
import math
import threading
import time

import grpc
import numpy as np
from grpc_status import rpc_status

from neuromesh.common.v1.artifact_pb2 import ArtifactRef
from neuromesh.common.v1.progress_pb2 import Progress
from neuromesh.sdk.artifacts import array_sha256
from neuromesh.simulation.v1 import simulation_pb2 as S
from neuromesh.simulation.v1 import simulation_pb2_grpc
from services.common import errors as service_errors
from services.common.errors import to_rpc_status

#: Simulate requests at least this long stream progress until they are cancelled
ENDLESS_MS = 1e9


class ScriptedSimulation(simulation_pb2_grpc.SimulationServiceServicer):
    """Simulate and EstimateMemory that fail as scripted, then answer; long runs wait for a cancel."""

    def __init__(self) -> None:
        self.failures: list[service_errors.NeuroMeshError | grpc.StatusCode] = []
        self.calls = 0
        self.metadata: list[dict[str, str]] = []
        self.cancelled = threading.Event()
        self.running = threading.Event()
        self.lock = threading.Lock()

    def _begin(self, context) -> None:
        with self.lock:
            self.calls += 1
            self.metadata.append(dict(context.invocation_metadata()))
            failure = self.failures.pop(0) if self.failures else None
        if isinstance(failure, grpc.StatusCode):
            context.abort(failure, f"scripted {failure.name}")
        elif failure is not None:
            # what the server runtime sends: the status with an ErrorDetail in its trailer
            context.abort_with_status(rpc_status.to_status(to_rpc_status(failure)))

    def Simulate(self, request, context):
        self._begin(context)
        if request.duration_ms >= ENDLESS_MS:
            context.add_callback(self.cancelled.set)
            step = 0
            while context.is_active():
                step += 1
                self.running.set()
                yield S.SimulateResponse(progress=Progress(fraction_done=step / 1e6, stage="simulate",
                                                           counters={"simulated_ms": 10.0 * step}))
                time.sleep(0.005)
            return
        for fraction in (0.25, 0.5, 1.0):
            yield S.SimulateResponse(progress=Progress(fraction_done=fraction, stage="simulate",
                                                       counters={"simulated_ms": fraction * request.duration_ms}))
        yield S.SimulateResponse(result=S.SimulateResult(n_spikes=int(request.duration_ms),
                                                         duration_ms=request.duration_ms))

    def EstimateMemory(self, request, context):
        self._begin(context)
        return S.EstimateMemoryResponse(total_bytes=1234, fits=True, breakdown_bytes={"neurons": 1000})


class DictStore:
    """The part of ArtifactStore that Artifacts uses, in memory; counts the puts."""

    bucket = "neuromesh"

    def __init__(self) -> None:
        self.objects: dict[str, tuple[ArtifactRef, object]] = {}
        self.puts: list[str] = []
        self.blocks: list[tuple[str, tuple]] = []

    def _ref(self, key, sha256, media_type, size, shape=(), dtype=""):
        return ArtifactRef(bucket=self.bucket, key=key, sha256=sha256, media_type=media_type, size_bytes=size,
                           shape=list(shape), dtype=dtype)

    def stat(self, key):
        if key not in self.objects:
            raise service_errors.NotFound(f"artifact s3://{self.bucket}/{key} does not exist",
                                          reason="ARTIFACT_NOT_FOUND")
        return self.objects[key][0]

    def exists(self, key):
        return key in self.objects

    def put_array(self, key, array, *, if_exists="error"):
        array = np.asarray(array)
        ref = self._ref(key, array_sha256(array), "application/vnd.zarr.v3", array.nbytes, array.shape,
                        array.dtype.name)
        self.puts.append(key)
        self.objects[key] = (ref, array.copy())
        return ref

    def put_bytes(self, key, data, *, media_type="application/octet-stream", if_exists="error"):
        ref = self._ref(key, hashlib.sha256(data).hexdigest(), media_type, len(data))
        self.puts.append(key)
        self.objects[key] = (ref, bytes(data))
        return ref

    def put_file(self, key, path, *, media_type="application/octet-stream", if_exists="error"):
        with open(path, "rb") as f:
            return self.put_bytes(key, f.read(), media_type=media_type)

    def create_array(self, key, shape, dtype, *, chunks=None):
        store = self

        class Writer:
            def __init__(self):
                self.data = np.zeros(shape, dtype)

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return None

            def __setitem__(self, region, block):
                store.blocks.append((key, (region.start, region.stop)))
                self.data[region] = block

            def finalize(self):
                ref = store._ref(key, array_sha256(self.data), "application/vnd.zarr.v3",
                                 math.prod(shape) * np.dtype(dtype).itemsize, shape, np.dtype(dtype).name)
                store.puts.append(key)
                store.objects[key] = (ref, self.data)
                return ref

        return Writer()

    def get_array(self, ref_or_key, *, dtype=None):
        key = getattr(ref_or_key, "key", ref_or_key)
        return self.objects[key][1]

    def read_block(self, ref_or_key, selection):
        return self.get_array(ref_or_key)[selection]

    def get_bytes(self, ref_or_key):
        key = getattr(ref_or_key, "key", ref_or_key)
        return self.objects[key][1]




class FakeRpcError(grpc.RpcError, grpc.Call):
    """What grpc raises for a failed call, reduced to what the SDK reads."""

    def __init__(self, code, details="", trailers=()):
        self._code, self._details, self._trailers = code, details, tuple(trailers)

    def code(self):
        return self._code

    def details(self):
        return self._details

    def trailing_metadata(self):
        return self._trailers

    def initial_metadata(self):
        return ()

    def is_active(self):
        return False

    def time_remaining(self):
        return None

    def cancel(self):
        return False

    def add_callback(self, callback):
        return False
