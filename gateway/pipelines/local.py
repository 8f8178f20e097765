"""Local operations: job steps that the gateway runs itself (``service="gateway"``), not a service.

Fan-out needs a fan-in. The shards of a diffusion connectome come back as several count
matrices, the runs of a simulation sweep as several ``(time, neurons)`` count arrays; gathering
them is a few lines of NumPy over small arrays, not worth a service of its own (nor a network
hop per shard). A :class:`LocalOperation` is such a gathering step:

- it is named like an RPC (``StackCounts``, ``EpochTrials``, ``SumMatrices``: the registry is
  :data:`gateway.pipelines.operations.LOCAL_OPERATIONS`) and appears in a job as
  ``{"service": "gateway", "method": "SumMatrices", "params": {...}, "inputs": {...}}``;
- its ``params`` are a pydantic model (checked at submission, defaults filled in);
- its inputs are named slots; a *repeated* slot takes ``name.0``, ``name.1``, ... (indices from
  0 without gaps, as for a repeated proto field), a single slot takes ``name``;
- its outputs are a fixed set of names, each an artifact in the object store with its sha256,
  written under a **content-addressed** prefix ``derived/gateway/<Method>/<digest>/`` (the
  digest covers the operation, its version, the normalised params and the inputs' content
  digests), so the same work twice finds its outputs stored, as the services do; a
  ``report.json`` written last marks the outputs complete.

:class:`GatewayMethodTable` puts the local operations beside the services' methods of a
:class:`~gateway.calls.methods.MethodTable`, with the same two calls that job submission uses
(``check_step`` and ``method(...).output_paths()``), so a job mixing service steps and local
steps is checked in one pass.

Example
-------
>>> from gateway.calls.methods import MethodTable
>>> table = GatewayMethodTable(MethodTable.from_generated())
>>> table.method("gateway", "SumMatrices").input_paths()
['labels.0', 'matrices.0', 'reports.0']
>>> table.method("gateway", "SumMatrices").output_paths()
['figure', 'labels', 'report', 'sum']
>>> _ = table.check_step("gateway", "SumMatrices", {}, ["matrices.0", "matrices.1"])
>>> table.check_step("gateway", "SumMatrices", {}, ["matrices.0", "matrices.2"])
Traceback (most recent call last):
...
services.common.errors.InvalidArgument: inputs matrices.* must be numbered 0, 1, 2, ... without gaps; got 0, 2
>>> table.check_step("reduction", "Fit", {"method": {"name": "pca"}}, ["activity"]).full_name
'/neuromesh.reduction.v1.ReductionService/Fit'
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel, ValidationError

from gateway.jobs.digests import sha256_of_json
from gateway.jobs.spec import ArtifactRef as SpecRef
from neuromesh.common.v1.artifact_pb2 import ArtifactRef
from services.common.errors import (AlreadyExists, Cancelled, FailedPrecondition, InvalidArgument, ResourceExhausted)
from services.common.store import ArtifactStore

LOCAL_SERVICE = "gateway"
"""The service name of steps the gateway runs itself."""
LOCAL_OPERATIONS_VERSION = "gateway-local-1"
"""What ``service_version("gateway")`` answers: part of every local step's cache key and output
prefix. Raise it when an operation's results change, so old results are not reused."""
OUTPUT_ROOT = "derived/gateway"
REPORT_NAME = "report.json"
PNG_MEDIA_TYPE = "image/png"
DEFAULT_MAX_INPUT_BYTES = 2 * 2**30
"""Local operations read their inputs into the gateway's memory; more than this is refused."""

_SLOT_PATH = re.compile(r"^(?P<slot>[a-z][a-z0-9_]*)(\.(?P<index>[0-9]{1,6}))?$")


@dataclass(frozen=True)
class InputSlot:
    """One named input of a local operation."""

    description: str
    repeated: bool = False
    """Takes ``name.0``, ``name.1``, ...: one artifact per shard or run."""
    required: bool = False


@dataclass(frozen=True)
class LocalOperation:
    """A step the gateway computes itself: params model, input slots, output names, and the work.

    ``run(context, params)`` reads its inputs through ``context`` and returns output name ->
    stored :class:`ArtifactRef` (every declared output but ``report``, which :func:`run_operation`
    writes: params, inputs, outputs and ``context.summary``); it runs in a worker thread.
    ``check(params, counts)`` (optional) returns ``(field, message)`` problems of the combination
    of params and inputs, where ``counts`` maps each slot to how many inputs it got (0 or 1 for a
    single slot).
    """

    method: str
    summary: str
    params_model: type[BaseModel]
    inputs: Mapping[str, InputSlot]
    outputs: Mapping[str, str]
    run: Callable[["OperationContext", BaseModel], dict[str, ArtifactRef]] = field(repr=False)
    check: Callable[[BaseModel, Mapping[str, int]], list[tuple[str, str]]] | None = field(default=None, repr=False)

    # --- the calls job submission makes, as on gateway.calls.methods.MethodInfo

    def input_paths(self) -> list[str]:
        """Input paths as MethodInfo shows them: repeated slots with ``.0``."""
        return sorted(f"{name}.0" if slot.repeated else name for name, slot in self.inputs.items())

    def output_paths(self) -> list[str]:
        return sorted(self.outputs)

    def parse_params(self, params: Mapping[str, Any] | None) -> BaseModel:
        """The params model, or :class:`InvalidArgument` naming the first bad field (``params.<name>``)."""
        try:
            return self.params_model.model_validate(dict(params or {}))
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise InvalidArgument(f"params of {LOCAL_SERVICE}.{self.method} are not valid: "
                                  f"{where or 'params'}: {err['msg'].removeprefix('Value error, ')}",
                                  reason="INVALID_PARAMS", field=f"params.{where}" if where else "params") from None

    def slot_counts(self, input_paths: Sequence[str]) -> dict[str, int]:
        """How many inputs each slot got; :class:`InvalidArgument` for unknown, misnumbered or missing ones."""
        indices: dict[str, list[int]] = {name: [] for name in self.inputs}
        known = ", ".join(self.input_paths())
        for path in input_paths:
            match = _SLOT_PATH.match(path)
            slot = self.inputs.get(match["slot"]) if match else None
            if match is None or slot is None:
                raise InvalidArgument(f"{LOCAL_SERVICE}.{self.method} has no input {path!r}; its inputs: {known}",
                                      reason="UNKNOWN_FIELD_PATH", field=f"inputs.{path}")
            if slot.repeated != (match["index"] is not None):
                form = f"{match['slot']}.0, {match['slot']}.1, ..." if slot.repeated else match["slot"]
                raise InvalidArgument(f"input {path!r} of {LOCAL_SERVICE}.{self.method} is given as {form}",
                                      reason="UNKNOWN_FIELD_PATH", field=f"inputs.{path}")
            indices[match["slot"]].append(int(match["index"] or 0))
        counts: dict[str, int] = {}
        for name, slot in self.inputs.items():
            got = sorted(indices[name])
            if slot.repeated and got != list(range(len(got))):
                raise InvalidArgument(f"inputs {name}.* must be numbered 0, 1, 2, ... without gaps; got "
                                      f"{', '.join(map(str, got))}", reason="UNKNOWN_FIELD_PATH",
                                      field=f"inputs.{name}.{got[-1]}")
            if slot.required and not got:
                raise InvalidArgument(f"{LOCAL_SERVICE}.{self.method} needs input "
                                      f"{name + '.0' if slot.repeated else name} ({slot.description})",
                                      reason="MISSING_INPUT", field=f"inputs.{name}")
            counts[name] = len(got)
        return counts

    def check_step(self, params: Mapping[str, Any] | None, input_paths: Sequence[str]) -> BaseModel:
        """Everything that can be checked before the step runs; returns the parsed params."""
        parsed = self.parse_params(params)
        counts = self.slot_counts(input_paths)
        if self.check is not None:
            problems = self.check(parsed, counts)
            if problems:
                where, message = problems[0]
                raise InvalidArgument(f"{LOCAL_SERVICE}.{self.method}: {message}", reason="INVALID_STEP",
                                      field=where)
        return parsed

    def describe(self) -> dict[str, Any]:
        """The operation as JSON (for an API's documentation): params schema, inputs, outputs."""
        return {"service": LOCAL_SERVICE, "method": self.method, "summary": self.summary,
                "params_schema": self.params_model.model_json_schema(),
                "inputs": {name: {"description": s.description, "repeated": s.repeated, "required": s.required}
                           for name, s in self.inputs.items()},
                "outputs": dict(self.outputs)}


def output_prefix(method: str, params: BaseModel, input_digests: Mapping[str, str]) -> str:
    """``derived/gateway/<method>/<digest>``: the same operation, params and input contents give the same prefix."""
    digest = sha256_of_json({"method": method, "version": LOCAL_OPERATIONS_VERSION,
                             "params": params.model_dump(mode="json"), "inputs": dict(input_digests)})
    return f"{OUTPUT_ROOT}/{method}/{digest[:32]}"


def proto_ref(ref: SpecRef, bucket: str) -> ArtifactRef:
    """The store's reference of a job engine reference; only artifacts of the gateway's bucket are read."""
    if ref.bucket and ref.bucket != bucket:
        raise FailedPrecondition(f"artifact {ref.key!r} is in bucket {ref.bucket!r}; the gateway reads only "
                                 f"{bucket!r}", reason="FOREIGN_BUCKET")
    return ArtifactRef(bucket=bucket, key=ref.key, sha256=ref.sha256, size_bytes=ref.size or 0)


def spec_ref(ref: ArtifactRef) -> SpecRef:
    """The job engine's reference (with its sha256) of a stored artifact."""
    return SpecRef(key=ref.key, sha256=ref.sha256, bucket=ref.bucket or None, etag=ref.etag or None,
                   media_type=ref.media_type or None, shape=tuple(int(n) for n in ref.shape) if ref.shape else None,
                   dtype=ref.dtype or None, size=int(ref.size_bytes) if ref.size_bytes else None)


def ref_dict(ref: ArtifactRef | SpecRef) -> dict[str, Any]:
    if isinstance(ref, ArtifactRef):
        ref = spec_ref(ref)
    return ref.model_dump(mode="json", exclude_none=True)


class OperationContext:
    """What a local operation sees: its inputs, the store, where its outputs go, progress and cancel.

    Reads are counted against ``max_input_bytes`` *before* the data is fetched (the size comes
    from the reference or the store's metadata), so an oversized gather is refused with
    RESOURCE_EXHAUSTED instead of exhausting the gateway's memory. Every read and write first
    checks the cancel flag.
    """

    def __init__(self, store: ArtifactStore, method: str, prefix: str, inputs: Mapping[str, SpecRef], *,
                 progress: Callable[[float, str], None] | None = None, cancelled: Callable[[], bool] | None = None,
                 max_input_bytes: int = DEFAULT_MAX_INPUT_BYTES) -> None:
        self.store = store
        self.method = method
        self.prefix = prefix
        self.inputs = dict(inputs)
        self._progress = progress
        self._cancelled = cancelled
        self.max_input_bytes = max_input_bytes
        self.bytes_read = 0
        self.summary: dict[str, Any] = {}
        """Numbers the operation wants in its report (shapes, labels, what it dropped and why)."""

    # --- inputs

    def single(self, name: str) -> SpecRef | None:
        return self.inputs.get(name)

    def repeated(self, name: str) -> list[tuple[str, SpecRef]]:
        """``(path, ref)`` of ``name.0``, ``name.1``, ... in index order (``10`` after ``9``)."""
        found = [(int(p.rsplit(".", 1)[1]), p, r) for p, r in self.inputs.items()
                 if p.startswith(name + ".") and p.rsplit(".", 1)[1].isdigit()]
        return [(p, r) for _, p, r in sorted(found)]

    def _charge(self, ref: SpecRef, path: str) -> ArtifactRef:
        self.check_cancelled()
        proto = proto_ref(ref, self.store.bucket)
        size = ref.size or self.store.stat(ref.key).size_bytes
        if self.bytes_read + size > self.max_input_bytes:
            raise ResourceExhausted(f"{LOCAL_SERVICE}.{self.method} would read more than {self.max_input_bytes} "
                                    f"bytes into the gateway's memory (at input {path}, {size} bytes); split the "
                                    "work into smaller gathers", reason="GATHER_TOO_LARGE", field=f"inputs.{path}")
        self.bytes_read += size
        return proto

    def read_array(self, path: str, ref: SpecRef | None = None) -> np.ndarray:
        """The array of input ``path`` (checked against its sha256 by the store)."""
        ref = ref if ref is not None else self.inputs[path]
        return self.store.get_array(self._charge(ref, path))

    def read_json(self, path: str, ref: SpecRef | None = None) -> Any:
        ref = ref if ref is not None else self.inputs[path]
        return self.store.get_json(self._charge(ref, path))

    # --- outputs, content-addressed under the prefix

    def write_array(self, name: str, array: np.ndarray) -> ArtifactRef:
        self.check_cancelled()
        return self.store.put_array(f"{self.prefix}/{name}", np.asarray(array), if_exists="return_existing")

    def write_json(self, name: str, value: Any) -> ArtifactRef:
        self.check_cancelled()
        return self.store.put_json(f"{self.prefix}/{name}", value, if_exists="return_existing")

    def write_png(self, name: str, data: bytes) -> ArtifactRef:
        self.check_cancelled()
        key = f"{self.prefix}/{name}"
        try:
            return self.store.put_bytes(key, data, media_type=PNG_MEDIA_TYPE, if_exists="return_existing")
        except AlreadyExists:
            # A figure of the same data drawn by an attempt that stopped before its report (or
            # by another matplotlib build) may differ in bytes; either picture is right.
            return self.store.stat(key)

    # --- progress and cancel

    def report(self, fraction: float, message: str) -> None:
        if self._progress is not None:
            self._progress(min(1.0, max(0.0, float(fraction))), message)

    def check_cancelled(self) -> None:
        if self._cancelled is not None and self._cancelled():
            raise Cancelled(f"{LOCAL_SERVICE}.{self.method} was cancelled")


def run_operation(operation: LocalOperation, store: ArtifactStore, params: Mapping[str, Any] | None,
                  inputs: Mapping[str, SpecRef], *, progress: Callable[[float, str], None] | None = None,
                  cancelled: Callable[[], bool] | None = None,
                  max_input_bytes: int = DEFAULT_MAX_INPUT_BYTES) -> dict[str, SpecRef]:
    """Run one local step (blocking): check it, reuse stored outputs or compute them, write the report.

    Returns output name -> reference with sha256. Raises :class:`InvalidArgument` for a step that
    does not fit the operation, and whatever the store raises (NotFound, DataLoss, ...).
    """
    parsed = operation.check_step(params, list(inputs))
    prefix = output_prefix(operation.method, parsed, {p: r.sha256 for p, r in inputs.items()})
    report_key = f"{prefix}/{REPORT_NAME}"
    if store.exists(report_key):
        # The report is written last: when it is there, every output it names is stored.
        stored = store.get_json(report_key)
        outputs = {name: SpecRef.model_validate(ref) for name, ref in stored["outputs"].items()}
        return {**outputs, "report": spec_ref(store.stat(report_key))}
    context = OperationContext(store, operation.method, prefix, inputs, progress=progress, cancelled=cancelled,
                               max_input_bytes=max_input_bytes)
    try:
        produced = operation.run(context, parsed)
    except ValueError as exc:  # the data do not fit together (shapes, labels): the caller's inputs
        raise InvalidArgument(f"{LOCAL_SERVICE}.{operation.method}: {exc}", reason="INVALID_INPUT") from None
    undeclared = set(produced) - set(operation.outputs) | ({"report"} & set(produced))
    if undeclared:  # pragma: no cover - a programming error in an operation
        raise RuntimeError(f"{operation.method} returned undeclared outputs {sorted(undeclared)}")
    outputs = {name: spec_ref(ref) for name, ref in produced.items()}
    context.check_cancelled()
    report = {"operation": f"{LOCAL_SERVICE}.{operation.method}", "version": LOCAL_OPERATIONS_VERSION,
              "params": parsed.model_dump(mode="json"), "inputs": {p: ref_dict(r) for p, r in inputs.items()},
              "outputs": {name: ref_dict(ref) for name, ref in outputs.items()},
              "summary": context.summary}
    report_ref = store.put_json(report_key, report, if_exists="return_existing")
    return {**outputs, "report": spec_ref(report_ref)}


class GatewayMethodTable:
    """A :class:`~gateway.calls.methods.MethodTable` that also answers for service ``"gateway"``.

    ``method("gateway", m)`` is the :class:`LocalOperation` (it has ``input_paths()`` and
    ``output_paths()`` like a ``MethodInfo``); ``check_step("gateway", m, params, paths)`` checks
    the params model and the input slots. Every other service goes to the wrapped table; any
    other attribute (``services``, ...) is the wrapped table's.
    """

    def __init__(self, methods: Any, operations: Mapping[str, LocalOperation] | None = None) -> None:
        if operations is None:
            from gateway.pipelines.operations import LOCAL_OPERATIONS
            operations = LOCAL_OPERATIONS
        self._methods = methods
        self.operations = dict(operations)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._methods, name)

    def method(self, service: str, method: str) -> Any:
        if service != LOCAL_SERVICE:
            try:
                return self._methods.method(service, method)
            except InvalidArgument as exc:
                if exc.reason != "UNKNOWN_SERVICE":
                    raise
                known = ", ".join(sorted([*self._methods.services, LOCAL_SERVICE]))
                raise InvalidArgument(f"unknown service {service!r}; known: {known}", reason="UNKNOWN_SERVICE",
                                      field="service") from None
        found = self.operations.get(method)
        if found is None:
            raise InvalidArgument(f"the gateway has no local operation {method!r}; its operations: "
                                  f"{', '.join(sorted(self.operations))}", reason="UNKNOWN_METHOD", field="method")
        return found

    def check_step(self, service: str, method: str, params: Mapping[str, Any], input_paths: list[str]) -> Any:
        if service != LOCAL_SERVICE:
            self.method(service, method)  # an unknown service is named with "gateway" among the known
            return self._methods.check_step(service, method, params, input_paths)
        operation = self.method(service, method)
        operation.check_step(params, input_paths)
        return operation


def png_of(figure: Any) -> bytes:
    """PNG bytes of a matplotlib figure, without the software tag (the same picture, the same bytes)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    return buffer.getvalue()
