"""Results that are partly messages and partly stored artifacts: compute first, store after.

A core computation returns an :class:`Outcome`: the response message with its plain fields set,
plus the arrays and PNG figures that belong at ArtifactRef fields of it. :func:`store_outcome`
then writes them under the call's content-addressed prefix and sets each ref, with a progress
(cancellation) checkpoint before every put. The simulation and reduction services' brain-model
RPCs share it.

Example
-------
>>> from neuromesh.common.v1.artifact_pb2 import ArtifactRef
>>> from neuromesh.reduction.v1 import reduction_pb2 as R
>>> result = R.CompareLearningRulesResult(rules=[R.RuleCurves(), R.RuleCurves(learning_rate=0.5)])
>>> get_ref(result, "rules[1]").learning_rate
0.5
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from google.protobuf.message import Message

from neuromesh.common.v1.artifact_pb2 import ArtifactRef

__all__ = ["Outcome", "get_ref", "set_ref", "store_outcome", "Progress", "PNG"]

PNG = "image/png"

#: a progress callback, ``report(fraction_done=..., stage=..., message=..., counters=...)``
Progress = Callable[..., None]


@dataclass
class Outcome:
    """A computed result: the message with its plain fields, and what to store into it.

    ``arrays`` and ``figures`` are ``(field path, key, value)``: the value is stored under
    ``<prefix>/<key>`` and its ref set at the field path of ``message`` (``"network.recurrent"``;
    a path ending in ``[]`` appends to a repeated field, in order).
    """

    message: Message
    arrays: list[tuple[str, str, np.ndarray]] = field(default_factory=list)
    figures: list[tuple[str, str, bytes]] = field(default_factory=list)

    def array(self, path: str, key: str, value) -> None:
        self.arrays.append((path, key, np.ascontiguousarray(value)))

    def figure(self, path: str, key: str, png: bytes) -> None:
        self.figures.append((path, key, png))


def get_ref(message: Message, path: str) -> Message:
    """The (sub)message at dotted ``path`` of ``message``: ``"network.recurrent"``, ``"rules[1].w1"``."""
    target = message
    for name in path.split("."):
        target = _child(target, name)
    return target


def _child(message: Message, name: str) -> Message:
    if name.endswith("]") and "[" in name and not name.endswith("[]"):
        field, index = name[:-1].split("[")
        return getattr(message, field)[int(index)]
    return getattr(message, name)


def set_ref(message: Message, path: str, ref: ArtifactRef) -> None:
    """Set the ArtifactRef field at dotted ``path`` of ``message`` (``name[]`` appends, ``name[i]`` indexes)."""
    *parents, last = path.split(".")
    target = message
    for name in parents:
        target = _child(target, name)
    if last.endswith("[]"):
        getattr(target, last[:-2]).add().CopyFrom(ref)
    else:
        getattr(target, last).CopyFrom(ref)


def store_outcome(store, prefix: str, outcome: Outcome, progress: Progress | None = None, *,
                  span: tuple[float, float] = (0.97, 1.0)) -> Message:
    """Store every array (Zarr) and figure (PNG) of ``outcome`` under ``prefix``; return its message.

    Keys are content-addressed (``if_exists="return_existing"``), so a repeated call finds them.
    ``progress`` is called before each put (stage ``"store"``, its fraction within ``span`` of
    the whole call): a cancellation checkpoint.
    """
    total = max(1, len(outcome.arrays) + len(outcome.figures))
    items = [(path, key, value, False) for path, key, value in outcome.arrays] + \
            [(path, key, png, True) for path, key, png in outcome.figures]
    for done, (path, key, value, is_png) in enumerate(items):
        if progress is not None:
            progress(fraction_done=span[0] + (span[1] - span[0]) * done / total, stage="store",
                     message=f"storing {key}{'.png' if is_png else ''}")
        if is_png:
            ref = store.put_bytes(f"{prefix}/{key}.png", value, media_type=PNG, if_exists="return_existing")
        else:
            ref = store.put_array(f"{prefix}/{key}", value, if_exists="return_existing")
        set_ref(outcome.message, path, ref)
    return outcome.message
