"""Requests built from keyword arguments named as the request's proto fields.

For RPCs with many fields (the brain-model RPCs: BayesianObserver, TrainPredictiveCoding,
InferCircuit, FindFixedPoints, CompareLearningRules) the SDK's methods take the request's fields
as keyword arguments, converted by :func:`build_request` the way the rest of the SDK converts:

* an ``ArtifactRef`` field takes an array (uploaded as Zarr), a ``.npy`` path (an array), any
  other path or bytes (uploaded as a file), a stored ref, a result's artifact, or an ``s3://`` URI;
* an enum field takes a short name (``"tanh"``), the full name or the number;
* a message field takes a dict of its fields (the same rules, recursively) or the message;
  a ``google.protobuf.Struct`` takes a dict;
* repeated fields take sequences (NumPy arrays too), maps take dicts;
* None leaves a field unset; two fields of one ``oneof`` are refused.

Unknown names are refused with the list of the message's fields, each error naming the dotted
field path.

Example
-------
>>> from neuromesh.reduction.v1 import reduction_pb2 as R
>>> request = build_request(R.CompareLearningRulesRequest, {
...     "mode": "two_layer", "teacher": {"n_samples": 500, "n_in": 10, "n_out": 2},
...     "rules": ["backprop", "feedback_alignment"], "epochs": 20, "seed": 3}, artifacts=None)
>>> request.mode == R.LEARNING_RULES_MODE_TWO_LAYER, request.teacher.n_in, len(request.rules)
(True, 10, 2)
>>> build_request(R.CompareLearningRulesRequest, {"epoch": 20}, artifacts=None)
Traceback (most recent call last):
...
neuromesh.sdk.errors.InvalidArgument: CompareLearningRulesRequest has no field 'epoch'; its fields: mode, teacher, uploaded, rules, n_hidden, activation, epochs, batch_size, backprop_learning_rate, feedback_alignment_learning_rate, three_factor_learning_rate, perturbation_sd, init_scale, seed, hebbian (field epoch)
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import numpy as np
from google.protobuf import struct_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper
from google.protobuf.message import Message

from neuromesh.common.v1.artifact_pb2 import ArtifactRef

from .errors import InvalidArgument
from .fields import enum_value, struct

__all__ = ["build_request"]

_REF = ArtifactRef.DESCRIPTOR.full_name
_STRUCT = struct_pb2.Struct.DESCRIPTOR.full_name


def _ref(value: Any, artifacts: Any, field: str) -> ArtifactRef:
    if artifacts is None:
        raise InvalidArgument(f"{field} needs the object store: use a client's method", field=field)
    if isinstance(value, (bytes, bytearray, memoryview)) or hasattr(value, "read"):
        return artifacts.file_input(value, field=field)
    if isinstance(value, (str, os.PathLike)) and not str(value).startswith("s3://") \
            and not str(value).lower().endswith(".npy"):
        return artifacts.file_input(value, field=field)
    return artifacts.array_input(value, field=field)


def _scalar(field: FieldDescriptor, value: Any, path: str) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if field.type == FieldDescriptor.TYPE_ENUM:
        return enum_value(EnumTypeWrapper(field.enum_type), value, field=path)
    if field.type == FieldDescriptor.TYPE_BOOL and not isinstance(value, bool):
        raise InvalidArgument(f"{path} must be True or False, not {value!r}", field=path)
    if field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidArgument(f"{path} must be a number, not {value!r}", field=path)
        if not np.isfinite(value):
            raise InvalidArgument(f"{path} must be finite, got {value}", field=path)
        return float(value)
    if field.cpp_type in (FieldDescriptor.CPPTYPE_INT32, FieldDescriptor.CPPTYPE_INT64,
                          FieldDescriptor.CPPTYPE_UINT32, FieldDescriptor.CPPTYPE_UINT64):
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidArgument(f"{path} must be an integer, not {value!r}", field=path)
    if field.type == FieldDescriptor.TYPE_STRING and not isinstance(value, str):
        raise InvalidArgument(f"{path} must be a string, not {value!r}", field=path)
    return value


def _message_value(field: FieldDescriptor, value: Any, artifacts: Any, path: str) -> Message:
    name = field.message_type.full_name
    if name == _REF:
        return _ref(value, artifacts, path)
    if name == _STRUCT:
        return struct(value, field=path)
    if isinstance(value, Message):
        if value.DESCRIPTOR.full_name != name:
            raise InvalidArgument(f"{path} must be a {field.message_type.name}, not a {value.DESCRIPTOR.name}",
                                  field=path)
        return value
    out = _message_class(field)()
    fill(out, value, artifacts=artifacts, path=path)
    return out


def _message_class(field: FieldDescriptor) -> type:
    from google.protobuf import message_factory

    return message_factory.GetMessageClass(field.message_type)


def _as_list(value: Any, path: str) -> list:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__iter__"):
        raise InvalidArgument(f"{path} is a list field; give a sequence, not {value!r}", field=path)
    return list(value)


def fill(message: Message, values: Mapping[str, Any], *, artifacts: Any, path: str = "") -> Message:
    """Set the fields of ``message`` from ``values`` (see the module docstring); returns it.

    Examples
    --------
    >>> from neuromesh.segmentation.v1 import segmentation_pb2 as SEG
    >>> fill(SEG.WatershedOptions(), {"boundary_threshold": 0.4, "affinity_reduction": "mean"},
    ...      artifacts=None).affinity_reduction == SEG.AFFINITY_REDUCTION_MEAN
    True
    """
    if not isinstance(values, Mapping):
        raise InvalidArgument(f"{path or 'request'} must be a dict of {message.DESCRIPTOR.name} fields, not "
                              f"{type(values).__name__}", field=path or "request")
    descriptor = message.DESCRIPTOR
    oneofs: dict[str, str] = {}
    for name, value in values.items():
        where = f"{path}.{name}" if path else name
        field = descriptor.fields_by_name.get(name)
        if field is None:
            raise InvalidArgument(f"{descriptor.name} has no field {name!r}; its fields: "
                                  f"{', '.join(descriptor.fields_by_name)}", field=where)
        if value is None:
            continue
        if field.containing_oneof is not None:
            group = field.containing_oneof.name
            if group in oneofs:
                raise InvalidArgument(f"{where} and {oneofs[group]} are alternatives ({group}); give one",
                                      field=where)
            oneofs[group] = where
        target = getattr(message, name)
        if field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type.GetOptions().map_entry:
            if not isinstance(value, Mapping):
                raise InvalidArgument(f"{where} is a map; give a dict", field=where)
            value_field = field.message_type.fields_by_name["value"]
            for key, item in value.items():
                if value_field.type == FieldDescriptor.TYPE_MESSAGE:
                    target[key].CopyFrom(_message_value(value_field, item, artifacts, f"{where}.{key}"))
                else:
                    target[key] = _scalar(value_field, item, f"{where}.{key}")
        elif field.is_repeated:
            items = _as_list(value, where)
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                for i, item in enumerate(items):
                    target.add().CopyFrom(_message_value(field, item, artifacts, f"{where}[{i}]"))
            else:
                target.extend(_scalar(field, item, f"{where}[{i}]") for i, item in enumerate(items))
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            target.CopyFrom(_message_value(field, value, artifacts, where))
        else:
            setattr(message, name, _scalar(field, value, where))
    return message


def build_request(message_class: type, values: Mapping[str, Any], *, artifacts: Any) -> Message:
    """A request message of ``message_class`` with fields from ``values`` (uploading inputs).

    Examples
    --------
    >>> from neuromesh.simulation.v1 import simulation_pb2 as S
    >>> build_request(S.BayesianObserverRequest, {"mode": "psychometric", "seed": 1}, artifacts=None).mode
    2
    """
    return fill(message_class(), values, artifacts=artifacts)
