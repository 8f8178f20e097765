"""Which gRPC method a step calls, and how its request is made and its outputs named: by reflection.

The table is built from the generated descriptors of ``neuromesh.<service>.v1`` (every package
of :mod:`neuromesh` with generated ``*_pb2`` modules), so a new service or method is callable
from a job the moment its stubs are generated; nothing lists methods by hand. For service
``simulation`` the table holds the RPCs of ``neuromesh.simulation.v1.SimulationService``.

How one step becomes one call:

- ``params`` is the request message in proto JSON (``json_format.ParseDict``: proto field names or
  their lowerCamelCase JSON names, enums by name). Artifact references are not accepted there
  (they would bypass the tenant's namespace and the cache's content digests): every
  ``ArtifactRef`` comes from ``inputs``.
- ``inputs`` maps a **field path** of the request to an artifact or an upstream step's output:
  ``"activity"``, ``"raw.ref"``, ``"first.patterns"``; a number indexes a repeated field
  (``"items.0.ref"``; one past the last element appends). The path must end at an
  ``ArtifactRef`` field; setting a field inside a ``oneof`` selects that branch.
- The **outputs** of a call are every ``ArtifactRef`` with a key in the result message, named by
  their path (``"figure"``, ``"segmentations.0.labels"``, ``"binned_counts"``, ``"report"``).
- A **server-streaming** method must stream a ``oneof`` of ``progress``
  (``neuromesh.common.v1.Progress``) and ``result``: progress events, then the result. A unary
  method's response is the result. Client-streaming methods cannot be steps.

Everything is checked when a job is submitted (:meth:`MethodTable.check_step`), so a job with an
unknown service, method, field path or parameter is refused with a message naming it.

Example
-------
>>> table = MethodTable.from_generated()
>>> method = table.method("reduction", "Fit")
>>> method.full_name, method.server_streaming
('/neuromesh.reduction.v1.ReductionService/Fit', True)
>>> "activity" in method.input_paths()
True
>>> request = method.build_request({"method": {"name": "pca", "params": {"n_components": 3}}},
...                                {"activity": ArtifactRef(key="tenants/lab-a/counts", sha256="0" * 64)})
>>> request.activity.key, request.method.name
('tenants/lab-a/counts', 'pca')
>>> table.method("reduction", "FitPCA")
Traceback (most recent call last):
...
services.common.errors.InvalidArgument: service 'reduction' has no method 'FitPCA'; its methods: ...Fit, ...Transform
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message

from neuromesh.common.v1 import artifact_pb2, progress_pb2
from services.common.errors import InvalidArgument

ArtifactRef = artifact_pb2.ArtifactRef
ARTIFACT_REF = ArtifactRef.DESCRIPTOR.full_name
PROGRESS = progress_pb2.Progress.DESCRIPTOR.full_name

#: String fields that name locations in the object store (KilosortFolder.prefix): a tenant could
#: point them anywhere in the bucket, and the cache would not see the content, so params may not set them.
_STORE_LOCATION_NAMES = frozenset({"key", "prefix", "bucket"})
_STORE_LOCATION_SUFFIXES = ("_key", "_prefix", "_bucket")
MAX_REPEATED_INDEX = 100_000


def _is_map(fd: FieldDescriptor) -> bool:
    return fd.message_type is not None and fd.message_type.GetOptions().map_entry


def _is_repeated(fd: FieldDescriptor) -> bool:
    return fd.is_repeated


def _is_ref(fd: FieldDescriptor) -> bool:
    return fd.message_type is not None and fd.message_type.full_name == ARTIFACT_REF


@dataclass(frozen=True)
class MethodInfo:
    """One RPC a step can call.

    Attributes
    ----------
    service : str
        The short service name of job specs (``"reduction"``).
    service_full_name : str
        ``"neuromesh.reduction.v1.ReductionService"``: also the name its health status is reported under.
    name : str
        The method (``"Fit"``).
    server_streaming : bool
        Whether it streams progress events before its result.
    """

    service: str
    service_full_name: str
    name: str
    request_type: type[Message]
    response_type: type[Message]
    server_streaming: bool
    result_field: str | None = None
    """The field of a streamed response that holds the result (None: the unary response is the result)."""
    descriptor: MethodDescriptor | None = field(default=None, repr=False, compare=False)

    @property
    def full_name(self) -> str:
        """The gRPC method path, ``/package.Service/Method``."""
        return f"/{self.service_full_name}/{self.name}"

    @property
    def result_descriptor(self) -> Descriptor:
        if self.result_field is None:
            return self.response_type.DESCRIPTOR
        return self.response_type.DESCRIPTOR.fields_by_name[self.result_field].message_type

    def input_paths(self) -> list[str]:
        """The field paths of the request that an input can set (repeated fields shown with ``.0``)."""
        return sorted(_ref_paths(self.request_type.DESCRIPTOR, "", set()))

    def output_paths(self) -> list[str]:
        """The paths of the ArtifactRefs the result can hold (repeated fields shown with ``.0``)."""
        return sorted(_ref_paths(self.result_descriptor, "", set()))

    # --- requests

    def parse_params(self, params: Mapping[str, Any]) -> Message:
        """The request message from ``params`` (proto JSON), refusing artifact references and store locations."""
        request = self.request_type()
        try:
            json_format.ParseDict(dict(params), request)
        except json_format.ParseError as exc:
            raise InvalidArgument(f"params are not a valid {self.request_type.DESCRIPTOR.name}: {exc}",
                                  reason="INVALID_PARAMS", field="params") from None
        for path, fd in _set_fields(request, ""):
            if _is_ref(fd):
                raise InvalidArgument(f"{path} is an artifact reference: those are given as inputs "
                                      f'(inputs: {{"{path}": {{"artifact": {{"key": ...}}}}}}), not in params',
                                      reason="ARTIFACT_IN_PARAMS", field=f"params.{path}")
            if fd.type == FieldDescriptor.TYPE_STRING and (
                    fd.name in _STORE_LOCATION_NAMES or fd.name.endswith(_STORE_LOCATION_SUFFIXES)):
                raise InvalidArgument(f"{path} names a location in the object store, which the gateway does not "
                                      "let params set (it would reach outside your namespace); pass artifacts as "
                                      "inputs",
                                      reason="STORE_LOCATION_IN_PARAMS", field=f"params.{path}")
        return request

    def build_request(self, params: Mapping[str, Any], inputs: Mapping[str, ArtifactRef]) -> Message:
        """The request of one call: ``params`` parsed, then each input's ArtifactRef set at its path."""
        request = self.parse_params(params)
        # Shorter paths first, so that "items.0" exists before "items.1" is appended.
        for path in sorted(inputs, key=lambda p: [int(s) if s.isdigit() else -1 for s in p.split(".")]):
            self._set_ref(request, path, inputs[path])
        return request

    def check_input_path(self, path: str) -> None:
        """Raise :class:`InvalidArgument` unless ``path`` ends at an ArtifactRef field of the request."""
        self._walk(self.request_type(), path, create=False)

    def _set_ref(self, request: Message, path: str, ref: ArtifactRef) -> None:
        container, fd, index = self._walk(request, path, create=True)
        if index is None:
            getattr(container, fd.name).CopyFrom(ref)
            return
        items = getattr(container, fd.name)
        if index == len(items):
            items.add().CopyFrom(ref)
        else:
            items[index].CopyFrom(ref)

    def _walk(self, message: Message, path: str, *, create: bool) -> tuple[Message, FieldDescriptor, int | None]:
        """The message holding the ArtifactRef field that ``path`` names, that field, and its index if repeated."""
        segments = path.split(".")

        def refuse(why: str) -> InvalidArgument:
            known = ", ".join(self.input_paths()) or "none"
            return InvalidArgument(f"{why}; the artifact fields of {self.request_type.DESCRIPTOR.name} "
                                   f"are: {known}", reason="UNKNOWN_FIELD_PATH", field=f"inputs.{path}")

        current: Message = message
        i = 0
        while i < len(segments):
            name = segments[i]
            fd = current.DESCRIPTOR.fields_by_name.get(name)
            if fd is None:
                raise refuse(f"{current.DESCRIPTOR.name} has no field {name!r}")
            if _is_map(fd):
                raise refuse(f"{name!r} is a map, which inputs cannot address")
            last = i == len(segments) - 1
            index: int | None = None
            if _is_repeated(fd):
                if last or not segments[i + 1].isdigit():
                    raise refuse(f"{name!r} is a repeated field: give an index ({name}.0)")
                index = int(segments[i + 1])
                if index > MAX_REPEATED_INDEX:
                    raise refuse(f"index {index} of {name!r} is too large")
                i += 1
                last = i == len(segments) - 1
            if fd.message_type is None:
                raise refuse(f"{name!r} is not a message field")
            if last:
                if not _is_ref(fd):
                    raise refuse(f"{name!r} is a {fd.message_type.name}, not an ArtifactRef")
                if index is not None:
                    length = len(getattr(current, fd.name))
                    if create and index > length:
                        raise refuse(f"index {index} of {name!r} skips elements (it has {length}); inputs fill "
                                     "repeated fields in order")
                return current, fd, index
            if _is_ref(fd):
                raise refuse(f"{name!r} is an ArtifactRef: the path must end there")
            if index is None:
                current = getattr(current, fd.name)
            else:
                items = getattr(current, fd.name)
                if index < len(items):
                    current = items[index]
                elif index == len(items) and create:
                    current = items.add()
                elif not create:  # only the path's shape is checked: an empty element will do
                    current = message_factory.GetMessageClass(fd.message_type)()
                else:
                    raise refuse(f"index {index} of {name!r} skips elements (it has {len(items)}); set the earlier "
                                 "elements in params or inputs first")
            i += 1
        raise refuse("empty path")  # pragma: no cover - the spec's pattern refuses empty paths

    # --- results

    def result_of(self, response: Message) -> Message | None:
        """The result in a response: the message itself (unary), its ``result`` (streamed), or None (progress)."""
        if self.result_field is None:
            return response
        if response.WhichOneof(self.response_type.DESCRIPTOR.fields_by_name[self.result_field]
                               .containing_oneof.name) == self.result_field:
            return getattr(response, self.result_field)
        return None

    def progress_of(self, response: Message) -> progress_pb2.Progress | None:
        if self.result_field is None or not response.HasField("progress"):
            return None
        return response.progress

    def outputs(self, result: Message) -> dict[str, ArtifactRef]:
        """Every ArtifactRef with a key in ``result``, by path."""
        return dict(_refs_in(result, ""))


def _ref_paths(descriptor: Descriptor, prefix: str, seen: set[str]) -> Iterator[str]:
    """Paths of the ArtifactRef fields reachable from ``descriptor`` (recursive types visited once)."""
    if descriptor.full_name in seen:
        return
    seen = seen | {descriptor.full_name}
    for fd in descriptor.fields:
        if fd.message_type is None or _is_map(fd):
            continue
        path = f"{prefix}{fd.name}" + (".0" if _is_repeated(fd) else "")
        if _is_ref(fd):
            yield path
        else:
            yield from _ref_paths(fd.message_type, path + ".", seen)


def _set_fields(message: Message, prefix: str) -> Iterator[tuple[str, FieldDescriptor]]:
    """(path, descriptor) of every field set in ``message``, recursively (maps' message values included)."""
    for fd, value in message.ListFields():
        path = f"{prefix}{fd.name}"
        yield path, fd
        if fd.message_type is None or _is_ref(fd):
            continue
        if _is_map(fd):
            if fd.message_type.fields_by_name["value"].message_type is not None:
                for k, item in value.items():
                    yield from _set_fields(item, f"{path}.{k}.")
        elif _is_repeated(fd):
            for i, item in enumerate(value):
                yield from _set_fields(item, f"{path}.{i}.")
        else:
            yield from _set_fields(value, path + ".")


def _refs_in(message: Message, prefix: str) -> Iterator[tuple[str, ArtifactRef]]:
    for fd, value in message.ListFields():
        if fd.message_type is None or _is_map(fd):
            continue
        path = f"{prefix}{fd.name}"
        items = list(enumerate(value)) if _is_repeated(fd) else [(None, value)]
        for i, item in items:
            at = path if i is None else f"{path}.{i}"
            if _is_ref(fd):
                if item.key:
                    yield at, item
            else:
                yield from _refs_in(item, at + ".")


def _streamed_result_field(response: Descriptor) -> str | None:
    """``"result"`` when a streamed response is the ``oneof {Progress progress; X result}`` convention."""
    progress, result = response.fields_by_name.get("progress"), response.fields_by_name.get("result")
    if progress is None or result is None or progress.message_type is None or result.message_type is None:
        return None
    if progress.message_type.full_name != PROGRESS or progress.containing_oneof is None:
        return None
    if result.containing_oneof is None or result.containing_oneof is not progress.containing_oneof:
        return None
    return "result"


@dataclass
class ServiceMethods:
    """The callable methods of one service, and those that cannot be steps (with why)."""

    service: str
    full_name: str
    methods: dict[str, MethodInfo]
    unsupported: dict[str, str]


class MethodTable:
    """Every service's RPCs, from the generated descriptors.

    Example
    -------
    >>> sorted(MethodTable.from_generated().services)[:3]
    ['connectomics', 'decoding', 'reduction']
    """

    def __init__(self, services: Mapping[str, ServiceMethods]) -> None:
        self.services: dict[str, ServiceMethods] = dict(services)

    @classmethod
    def from_generated(cls, package: str = "neuromesh") -> "MethodTable":
        """Scan ``<package>.<service>.v1`` for generated modules and their ``<Service>Service``."""
        root = importlib.import_module(package)
        found: dict[str, ServiceMethods] = {}
        for info in pkgutil.iter_modules(root.__path__):
            if not info.ispkg or info.name == "common":
                continue
            try:
                v1 = importlib.import_module(f"{package}.{info.name}.v1")
            except ModuleNotFoundError:
                continue
            for module_info in pkgutil.iter_modules(v1.__path__):
                if not module_info.name.endswith("_pb2"):
                    continue
                module = importlib.import_module(f"{v1.__name__}.{module_info.name}")
                for descriptor in module.DESCRIPTOR.services_by_name.values():
                    if descriptor.full_name == f"{package}.{info.name}.v1.{_camel(info.name)}Service":
                        found[info.name] = _service_methods(info.name, descriptor)
        return cls(found)

    def method(self, service: str, method: str) -> MethodInfo:
        """The method, or :class:`InvalidArgument` naming the known services or methods."""
        entry = self.services.get(service)
        if entry is None:
            raise InvalidArgument(f"unknown service {service!r}; known: {', '.join(sorted(self.services))}",
                                  reason="UNKNOWN_SERVICE", field="service")
        if method in entry.unsupported:
            raise InvalidArgument(f"{service}.{method} cannot be a job step: {entry.unsupported[method]}",
                                  reason="UNSUPPORTED_METHOD", field="method")
        found = entry.methods.get(method)
        if found is None:
            raise InvalidArgument(f"service {service!r} has no method {method!r}; its methods: "
                                  f"{', '.join(sorted(entry.methods))}", reason="UNKNOWN_METHOD", field="method")
        return found

    def check_step(self, service: str, method: str, params: Mapping[str, Any], input_paths: list[str]) -> MethodInfo:
        """Everything that can be checked before a step runs: the method, its params, its input paths."""
        info = self.method(service, method)
        request = info.parse_params(params)
        placeholder = ArtifactRef(key="placeholder", sha256="0" * 64)
        for path in input_paths:
            info.check_input_path(path)
        # Appending to repeated fields in path order must work with what params already hold.
        check = type(request)()
        check.CopyFrom(request)
        for path in sorted(input_paths, key=lambda p: [int(s) if s.isdigit() else -1 for s in p.split(".")]):
            info._set_ref(check, path, placeholder)
        return info


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("-", "_").split("_"))


def _service_methods(service: str, descriptor: ServiceDescriptor) -> ServiceMethods:
    methods: dict[str, MethodInfo] = {}
    unsupported: dict[str, str] = {}
    for md in descriptor.methods:
        if md.client_streaming:
            unsupported[md.name] = "it streams requests from the client"
            continue
        result_field = None
        if md.server_streaming:
            result_field = _streamed_result_field(md.output_type)
            if result_field is None:
                unsupported[md.name] = ("its stream is not the oneof {neuromesh.common.v1.Progress progress; "
                                        "... result} convention")
                continue
        methods[md.name] = MethodInfo(
            service=service, service_full_name=descriptor.full_name, name=md.name,
            request_type=message_factory.GetMessageClass(md.input_type),
            response_type=message_factory.GetMessageClass(md.output_type),
            server_streaming=md.server_streaming, result_field=result_field, descriptor=md)
    return ServiceMethods(service, descriptor.full_name, methods, unsupported)
