"""What every servicer does around its science: resolve refs, load, cache, compute, store.

:class:`StoreBackedServicer` holds the steps each RPC of an analysis service takes, so a
servicer's methods read as the analysis itself:

1. check plain fields (:func:`require_finite`, :func:`require_non_negative`);
2. resolve artifact refs (:meth:`~StoreBackedServicer.resolve`: a ref may carry only a key;
   the store supplies sha256, shape and dtype, and the kind and size are checked);
3. compute the content-addressed prefix of the outputs and return them if a previous call
   stored them (:meth:`~StoreBackedServicer.cached`);
4. load the inputs, run the core in a worker thread while holding a compute slot
   (:meth:`~StoreBackedServicer.compute`), and store the outputs under the prefix.

:func:`model_from_spec` turns a (name, ``google.protobuf.Struct`` params) pair into an
estimator from a :class:`~services.common.models.ModelRegistry`, refusing unknown names and
parameters with the list of known ones.

Example
-------
>>> from google.protobuf import struct_pb2
>>> from services.common.models import ModelRegistry
>>> REG = ModelRegistry("thing")
>>> @REG.register("box")
... class Box:
...     def __init__(self, *, size: int = 1, seed: int | None = None):
...         self.size, self.seed = size, seed
>>> params = struct_pb2.Struct(); params.update({"size": 3})
>>> box = model_from_spec(REG, "box", params, field="thing", seed=7)
>>> box.size, box.seed
(3, 7)
"""

from __future__ import annotations

import asyncio
import inspect
import math
from typing import Any, Callable

import numpy as np
from google.protobuf import json_format, struct_pb2
from google.protobuf.message import Message

from neuromesh.common.v1.artifact_pb2 import ArtifactRef

from .compute import ComputeLimiter
from .errors import InvalidArgument, ResourceExhausted
from .models import ModelRegistry
from .store import ARRAY_MEDIA_TYPE, ArtifactStore

__all__ = ["StoreBackedServicer", "model_from_spec", "require_finite", "require_non_negative", "has_ref"]

PNG = "image/png"
#: the JSON report a long call stores last, next to its outputs
REPORT_NAME = "report.json"


def require_finite(value: float, field: str, *, positive: bool = False) -> float:
    """``value`` if finite (and > 0 when ``positive``), else INVALID_ARGUMENT naming ``field``."""
    if not math.isfinite(value) or (positive and value <= 0):
        raise InvalidArgument(f"{field} must be a finite number{' > 0' if positive else ''}, got {value}",
                              field=field)
    return float(value)


def require_non_negative(value: int, field: str) -> int:
    if value < 0:
        raise InvalidArgument(f"{field} must be >= 0, got {value}", field=field)
    return int(value)


def has_ref(message, field: str) -> bool:
    """True when ``message.field`` is an ArtifactRef that names a key."""
    return message.HasField(field) and bool(getattr(message, field).key)


def _coerce_param(value: Any, default: Any) -> Any:
    """A Struct value (JSON: numbers are floats, arrays lists) as the type the estimator expects.

    JSON has one number type, so ``3`` arrives as ``3.0``: an integral number becomes an int
    unless the parameter's default is a float (then it stays a float).
    """
    if isinstance(value, float) and value.is_integer() and not isinstance(default, float):
        return int(value)
    if isinstance(value, list):
        return tuple(int(v) if isinstance(v, float) and v.is_integer() else v for v in value)
    return value


def model_from_spec(registry: ModelRegistry, name: str, params: struct_pb2.Struct | None, *, field: str,
                    seed: int | None = None) -> Any:
    """The unfitted estimator ``registry[name](**params)``, or INVALID_ARGUMENT naming the problem.

    ``seed`` fills the estimator's ``seed`` parameter when it has one and ``params`` sets none.
    """
    if name not in registry:
        raise InvalidArgument(f"unknown {registry.kind} {name!r}; known: {', '.join(sorted(registry))}",
                              reason=f"UNKNOWN_{registry.kind.upper()}", field=f"{field}.name")
    cls = registry[name]
    named = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    defaults = {p.name: p.default for p in list(inspect.signature(cls.__init__).parameters.values())[1:]
                if p.kind in named}
    given = json_format.MessageToDict(params) if params is not None else {}
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise InvalidArgument(f"{registry.kind} {name!r} has no parameter {', '.join(map(repr, unknown))}; its "
                              f"parameters: {', '.join(sorted(defaults))}", reason="UNKNOWN_PARAMETER",
                              field=f"{field}.params")
    values = {k: _coerce_param(v, defaults[k]) for k, v in given.items()}
    if seed is not None and "seed" in defaults and "seed" not in values:
        values["seed"] = seed
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"bad parameters for {registry.kind} {name!r}: {exc}", field=f"{field}.params") from exc


class StoreBackedServicer:
    """Base of the analysis servicers: the artifact store, the compute limiter, the input cap."""

    def __init__(self, store: ArtifactStore, *, limiter: ComputeLimiter | None = None,
                 max_input_bytes: int = 8 * 2**30) -> None:
        self.store = store
        self.limiter = limiter or ComputeLimiter(threads=1)
        self.max_input_bytes = max_input_bytes

    async def resolve(self, ref: ArtifactRef, field: str, *, array: bool, check_size: bool = True) -> ArtifactRef:
        """The stored ref of ``ref``: INVALID_ARGUMENT without a key or of the wrong kind,
        NOT_FOUND when missing, RESOURCE_EXHAUSTED when larger than the service loads."""
        if not ref.key:
            raise InvalidArgument(f"{field} is required: an artifact reference with a key", field=f"{field}.key")
        resolved = await asyncio.to_thread(self.store.resolve, ref)
        is_array = resolved.media_type == ARRAY_MEDIA_TYPE
        if array != is_array:
            want = "a Zarr array" if array else "a single object (file)"
            raise InvalidArgument(f"{field} must be {want}; s3://{resolved.bucket}/{resolved.key} is "
                                  f"{resolved.media_type}", reason="WRONG_ARTIFACT_KIND", field=field)
        if check_size and resolved.size_bytes > self.max_input_bytes:
            raise ResourceExhausted(f"{field} holds {resolved.size_bytes} bytes, more than this service loads into "
                                    f"memory (NEUROMESH_MAX_INPUT_BYTES={self.max_input_bytes})", field=field)
        return resolved

    async def load(self, resolved: ArtifactRef) -> np.ndarray:
        return await asyncio.to_thread(self.store.get_array, resolved)

    async def resolve_and_load(self, ref: ArtifactRef, field: str) -> tuple[ArtifactRef, np.ndarray]:
        resolved = await self.resolve(ref, field, array=True)
        return resolved, await self.load(resolved)

    async def cached(self, prefix: str, name: str) -> ArtifactRef | None:
        """The ref of ``prefix/name`` if a previous call stored it."""
        key = f"{prefix}/{name}"
        if await asyncio.to_thread(self.store.exists, key):
            return await asyncio.to_thread(self.store.stat, key)
        return None

    async def stored_result(self, prefix: str, result_type: type[Message]) -> Message | None:
        """The result a previous call stored with :meth:`store_result` under ``prefix``, if any.

        The report is written last, so its presence means every output of the call is stored.
        """
        cached = await self.cached(prefix, REPORT_NAME)
        if cached is None:
            return None
        report = await asyncio.to_thread(self.store.get_json, cached)
        result = json_format.ParseDict(report["result"], result_type())
        result.report.CopyFrom(cached)
        return result

    async def store_result(self, prefix: str, result: Message, request: Message, version: str) -> Message:
        """Write ``prefix/report.json`` (the result, the resolved request, the service version)
        and set ``result.report`` to it."""
        report = {"result": json_format.MessageToDict(result), "request": json_format.MessageToDict(request),
                  "service_version": version}
        result.report.CopyFrom(await self.put_json(f"{prefix}/{REPORT_NAME}", report))
        return result

    async def put_array(self, key: str, array: np.ndarray) -> ArtifactRef:
        return await asyncio.to_thread(self.store.put_array, key, array, if_exists="return_existing")

    async def put_bytes(self, key: str, data: bytes, media_type: str) -> ArtifactRef:
        return await asyncio.to_thread(self.store.put_bytes, key, data, media_type=media_type,
                                       if_exists="return_existing")

    async def put_json(self, key: str, value: Any) -> ArtifactRef:
        return await asyncio.to_thread(self.store.put_json, key, value, if_exists="return_existing")

    async def load_model(self, ref: ArtifactRef, registry: ModelRegistry, *,
                         field: str = "model") -> tuple[Any, dict[str, Any], ArtifactRef]:
        """The model stored at ``ref`` (see :meth:`ModelRegistry.save`), its metadata and full ref;
        INVALID_ARGUMENT naming the object when it is not a model of ``registry``'s kind."""
        resolved = await self.resolve(ref, field, array=False)
        data = await asyncio.to_thread(self.store.get_bytes, resolved)
        try:
            model, metadata = registry.load(data)
        except ValueError as exc:
            raise InvalidArgument(f"{field} s3://{resolved.bucket}/{resolved.key} is not a stored {registry.kind}: "
                                  f"{exc}", reason="NOT_A_MODEL", field=field) from exc
        return model, metadata, resolved

    async def compute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` in a worker thread, holding a compute slot."""
        async with self.limiter.slot():
            return await asyncio.to_thread(fn, *args, **kwargs)
