"""Checks and conversions of keyword arguments into request fields, before anything is sent.

The services validate every request themselves; these checks catch the plain mistakes (a
negative bin width, an unknown decoder kind, a box with a step) in the caller's process, before
an upload of gigabytes or a wait in a queue, and raise :class:`~neuromesh.sdk.errors.InvalidArgument`
naming the keyword argument, which is also the request field's name.

Example
-------
>>> from neuromesh.connectomics.v1 import connectomics_pb2 as C
>>> enum_value(C.FibreModel, "csa", field="model") == C.FIBRE_MODEL_CSA
True
>>> enum_value(C.FibreModel, "tensor", field="model")
Traceback (most recent call last):
...
neuromesh.sdk.errors.InvalidArgument: model must be one of 'csd', 'csa', 'dti', not 'tensor' (field model; reason UNKNOWN_VALUE)
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Mapping, Sequence

import numpy as np
from google.protobuf import struct_pb2
from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper

from neuromesh.segmentation.v1 import segmentation_pb2

from .errors import InvalidArgument

__all__ = ["box", "enum_value", "finite", "integer", "non_negative", "number_list", "positive", "struct",
           "unit_interval"]


def _prefix(enum: EnumTypeWrapper) -> str:
    """``FIBRE_MODEL_`` of FibreModel: the name of its zero value without ``UNSPECIFIED``."""
    zero = enum.Name(0)
    return zero[: -len("UNSPECIFIED")] if zero.endswith("UNSPECIFIED") else ""


def enum_choices(enum: EnumTypeWrapper) -> list[str]:
    """Short lower-case names of an enum's values, the unspecified one left out.

    Examples
    --------
    >>> from neuromesh.decoding.v1 import decoding_pb2 as D
    >>> enum_choices(D.RdmComparison)
    ['spearman', 'kendall_tau_a', 'pearson']
    """
    prefix = _prefix(enum)
    return [name[len(prefix):].lower() for name in enum.keys() if enum.Value(name) != 0]


def enum_value(enum: EnumTypeWrapper, value: Any, *, field: str) -> int:
    """The number of an enum value given by short name (``"csa"``), full name or number.

    ``None`` gives 0, the unspecified value, which the services read as their default.

    Examples
    --------
    >>> from neuromesh.simulation.v1 import simulation_pb2 as S
    >>> enum_value(S.NeuronModel, "LIF_COBA", field="model"), enum_value(S.NeuronModel, None, field="model")
    (2, 0)
    """
    if value is None:
        return 0
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        if int(value) in enum.values():
            return int(value)
    elif isinstance(value, str):
        prefix = _prefix(enum)
        name = value.strip().upper().replace("-", "_").replace(" ", "_")
        for candidate in (name, prefix + name):
            if candidate in enum.keys():
                return enum.Value(candidate)
    choices = ", ".join(repr(c) for c in enum_choices(enum))
    raise InvalidArgument(f"{field} must be one of {choices}, not {value!r}", field=field, reason="UNKNOWN_VALUE")


def _plain(value: Any, field: str) -> Any:
    """JSON-able Python values of NumPy scalars and arrays, recursively (Struct takes no NumPy)."""
    if isinstance(value, np.ndarray):
        return [_plain(v, field) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {str(k): _plain(v, f"{field}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, field) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidArgument(f"{field} is {value}; parameters must be finite", field=field)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise InvalidArgument(f"{field} holds a {type(value).__name__}; parameters are numbers, strings, bools, lists "
                          f"and dicts", field=field)


def struct(params: Mapping[str, Any] | None, *, field: str) -> struct_pb2.Struct | None:
    """A ``google.protobuf.Struct`` of a parameter mapping (NumPy values converted), or None.

    Examples
    --------
    >>> struct({"n_components": np.int64(3), "solver": "randomized"}, field="params")["n_components"]
    3.0
    """
    if params is None:
        return None
    if isinstance(params, struct_pb2.Struct):
        return params
    if not isinstance(params, Mapping):
        raise InvalidArgument(f"{field} must be a dict of parameters, not {type(params).__name__}", field=field)
    out = struct_pb2.Struct()
    out.update(_plain(dict(params), field))
    return out


def finite(value: Any, *, field: str) -> float:
    """``value`` as a finite float, else InvalidArgument.

    Examples
    --------
    >>> finite(np.float32(0.5), field="x")
    0.5
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidArgument(f"{field} must be a number, not {value!r}", field=field)
    value = float(value)
    if not math.isfinite(value):
        raise InvalidArgument(f"{field} must be finite, got {value}", field=field)
    return value


def positive(value: Any, *, field: str) -> float:
    """``value`` as a float > 0, else InvalidArgument.

    Examples
    --------
    >>> positive(0.0, field="bin_width_s")
    Traceback (most recent call last):
    ...
    neuromesh.sdk.errors.InvalidArgument: bin_width_s must be > 0, got 0.0 (field bin_width_s)
    """
    value = finite(value, field=field)
    if value <= 0:
        raise InvalidArgument(f"{field} must be > 0, got {value}", field=field)
    return value


def non_negative(value: Any, *, field: str) -> float:
    """``value`` as a float >= 0 (0 usually means the service's default), else InvalidArgument.

    Examples
    --------
    >>> non_negative(2, field="smooth_sigma_bins")
    2.0
    """
    value = finite(value, field=field)
    if value < 0:
        raise InvalidArgument(f"{field} must be >= 0, got {value}", field=field)
    return value


def unit_interval(value: Any, *, field: str, closed: bool = True) -> float:
    """``value`` as a float in [0, 1] (or [0, 1) with ``closed=False``), else InvalidArgument.

    Examples
    --------
    >>> unit_interval(0.3, field="seed_fa_threshold", closed=False)
    0.3
    """
    value = finite(value, field=field)
    if not (0.0 <= value <= 1.0 if closed else 0.0 <= value < 1.0):
        raise InvalidArgument(f"{field} must be in [0, 1{']' if closed else ')'}, got {value}", field=field)
    return value


def integer(value: Any, *, field: str, minimum: int | None = 0) -> int:
    """``value`` as an int (>= ``minimum`` unless None), else InvalidArgument.

    Examples
    --------
    >>> integer(np.int32(5), field="history_bins")
    5
    >>> integer(2.5, field="n_folds")
    Traceback (most recent call last):
    ...
    neuromesh.sdk.errors.InvalidArgument: n_folds must be an integer, not 2.5 (field n_folds)
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidArgument(f"{field} must be an integer, not {value!r}", field=field)
    value = int(value)
    if minimum is not None and value < minimum:
        raise InvalidArgument(f"{field} must be >= {minimum}, got {value}", field=field)
    return value


def number_list(values: Any, *, field: str, length: int | None = None, kind: type = float,
                check=None) -> list:
    """A list of numbers (``kind`` float or int), optionally of a fixed length, each checked.

    Empty (or None) gives ``[]``, which the services read as their default.

    Examples
    --------
    >>> number_list((8, 8, 40), field="voxel_size_nm", length=3, check=positive)
    [8.0, 8.0, 40.0]
    >>> number_list([64, 128], field="block_shape", length=3, kind=int)
    Traceback (most recent call last):
    ...
    neuromesh.sdk.errors.InvalidArgument: block_shape must have 3 values (z, y, x), got 2 (field block_shape)
    """
    if values is None:
        return []
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise InvalidArgument(f"{field} must be a sequence of numbers, not {values!r}", field=field)
    items = list(np.asarray(values).ravel().tolist()) if isinstance(values, np.ndarray) else list(values)
    if items and length is not None and len(items) != length:
        axes = " (z, y, x)" if length == 3 else ""
        raise InvalidArgument(f"{field} must have {length} values{axes}, got {len(items)}", field=field)
    out = []
    for i, item in enumerate(items):
        name = f"{field}[{i}]"
        number = integer(item, field=name, minimum=None) if kind is int else finite(item, field=name)
        if check is not None:
            check(number, field=field)
        out.append(number)
    return out


def box(region: Any, *, field: str) -> segmentation_pb2.Box | None:
    """A ``Box`` (z, y, x ranges) from slices, a mapping of Box fields, or a Box.

    Slices must have non-negative starts and stops and no step; a stop of ``None`` means the end
    of the axis, as ``Box`` stops of 0 do; missing trailing axes are taken whole. None gives
    None (the whole volume).

    Examples
    --------
    >>> b = box(np.s_[0:32, :, 16:], field="train_region")
    >>> (b.z_start, b.z_stop, b.y_start, b.y_stop, b.x_start, b.x_stop)
    (0, 32, 0, 0, 16, 0)
    >>> box(np.s_[-8:], field="validation_region")
    Traceback (most recent call last):
    ...
    neuromesh.sdk.errors.InvalidArgument: validation_region: slice(-8, None, None) along z needs starts and stops >= 0 (the volume's size is not known here) (field validation_region)
    """
    if region is None:
        return None
    if isinstance(region, segmentation_pb2.Box):
        return region
    if isinstance(region, Mapping):
        unknown = set(region) - set(segmentation_pb2.Box.DESCRIPTOR.fields_by_name)
        if unknown:
            raise InvalidArgument(f"{field} has no field {', '.join(sorted(unknown))}; a box has z_start, z_stop, "
                                  f"y_start, y_stop, x_start, x_stop", field=field)
        return segmentation_pb2.Box(**{k: integer(v, field=f"{field}.{k}") for k, v in region.items()})
    items = region if isinstance(region, tuple) else (region,)
    if len(items) > 3 or not all(isinstance(s, slice) for s in items):
        raise InvalidArgument(f"{field} must be up to three slices (z, y, x), e.g. np.s_[0:32, :, :], a dict of Box "
                              f"fields or a Box, not {region!r}", field=field)
    out = segmentation_pb2.Box()
    for axis, item in zip("zyx", items):
        if item.step not in (None, 1):
            raise InvalidArgument(f"{field}: {item!r} along {axis} has a step; boxes are contiguous", field=field)
        start, stop = item.start or 0, item.stop or 0
        if integer(start, field=field, minimum=None) < 0 or integer(stop, field=field, minimum=None) < 0:
            raise InvalidArgument(f"{field}: {item!r} along {axis} needs starts and stops >= 0 (the volume's size is "
                                  f"not known here)", field=field)
        if stop and stop <= start:
            raise InvalidArgument(f"{field}: {item!r} along {axis} is empty", field=field)
        setattr(out, f"{axis}_start", int(start))
        setattr(out, f"{axis}_stop", int(stop))
    return out


def strings(values: Sequence[str] | str | None, *, field: str) -> list[str]:
    """A list of strings; one string alone is a list of one.

    Examples
    --------
    >>> strings("good", field="include_groups"), strings(("good", "mua"), field="include_groups")
    (['good'], ['good', 'mua'])
    """
    if values is None:
        return []
    if isinstance(values, str):
        return [values]
    out = list(values)
    for i, v in enumerate(out):
        if not isinstance(v, str):
            raise InvalidArgument(f"{field}[{i}] must be a string, not {v!r}", field=field)
    return out
