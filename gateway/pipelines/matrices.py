"""Summing matrices: the fan-in of a sharded connectome.

``DiffusionConnectome`` tracks every ``shard_count``-th seed from ``shard_index`` when asked, so a
whole brain's seeds are spread over replicas, one step per shard. Each shard's matrices count
(or weigh) *its* streamlines; every normalisation the service offers is a sum over streamlines
(``count``; ``volume`` = count / sqrt(V_a V_b) with the same region volumes in every shard;
``length`` = sum of 1 / length), so the whole brain's matrix is the sum of the shards' matrices,
exactly for counts (deterministic tracking) and to rounding for the others. Nothing has to be
recomputed from streamlines.

``SumMatrices`` adds ``matrices.0``, ``matrices.1``, ... of one shape. With ``labels.<k>`` (each
shard's region labels) it checks that every shard has the same regions in the same order, and
answers them as ``labels``. With ``params.normalization`` and ``reports.<k>`` (each shard's JSON
report) it checks that ``matrices.<k>`` is the matrix of that normalisation in the shard's
result: the matrices of a ``DiffusionConnectome`` result are a repeated field addressed by index
(``matrices.0.matrix``), and this guards a pipeline against a service that lists them in
another order. Outputs: ``sum`` (float64, or int64 for integer inputs), ``labels``, ``figure``
(a heatmap PNG) and ``report``.

Example
-------
>>> sum_matrices([np.eye(2), 2 * np.eye(2), np.ones((2, 2))]).tolist()
[[4.0, 1.0], [1.0, 4.0]]
>>> sum_matrices([np.eye(2), np.eye(3)])
Traceback (most recent call last):
...
ValueError: matrices must have one shape to be summed, got matrices.0 (2, 2), matrices.1 (3, 3)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from gateway.pipelines.local import InputSlot, LocalOperation, OperationContext, png_of
from neuromesh.common.v1.artifact_pb2 import ArtifactRef
from services.common.errors import FailedPrecondition

__all__ = ["SUM_MATRICES", "sum_matrices"]

_MAX_TICK_LABELS = 40


def sum_matrices(matrices: Sequence[np.ndarray]) -> np.ndarray:
    """The element-wise sum of matrices of one shape: int64 for integer inputs, float64 otherwise."""
    if not matrices:
        raise ValueError("there are no matrices to sum")
    shapes = [np.shape(m) for m in matrices]
    if len(set(shapes)) > 1:
        raise ValueError("matrices must have one shape to be summed, got "
                         + ", ".join(f"matrices.{k} {s}" for k, s in enumerate(shapes)))
    kinds = {np.asarray(m).dtype.kind for m in matrices}
    if not kinds <= set("biuf"):
        raise ValueError(f"matrices must hold numbers, got dtypes {sorted(np.asarray(m).dtype.name for m in matrices)}")
    dtype = np.int64 if kinds <= set("biu") else np.float64
    total = np.zeros(shapes[0], dtype=dtype)
    for m in matrices:
        total += np.asarray(m, dtype=dtype)
    return total


def heatmap_figure(matrix: np.ndarray, labels: Sequence | None, *, title: str) -> bytes:
    """PNG of a square matrix (log colour scale when its positive values span decades)."""
    from matplotlib.colors import LogNorm

    from services.common.figures import new_figure  # matplotlib only when a figure is drawn

    m = np.asarray(matrix, dtype=np.float64)
    fig = new_figure(figsize=(5.0, 4.4), layout="constrained")
    ax = fig.subplots()
    positive = m[m > 0]
    norm = LogNorm(vmin=positive.min(), vmax=positive.max()) if positive.size and positive.max() > 10 * \
        positive.min() else None
    image = ax.imshow(np.where(m > 0, m, np.nan) if norm is not None else m, cmap="viridis", norm=norm,
                      interpolation="nearest")
    fig.colorbar(image, ax=ax, shrink=0.85)
    if labels is not None and m.ndim == 2 and m.shape[0] == m.shape[1] <= _MAX_TICK_LABELS:
        ticks = np.arange(m.shape[0])
        ax.set_xticks(ticks, [str(v) for v in labels], fontsize=7, rotation=90)
        ax.set_yticks(ticks, [str(v) for v in labels], fontsize=7)
    ax.set_title(title, fontsize=10)
    return png_of(fig)


class SumMatricesParams(BaseModel):
    """Params of ``gateway.SumMatrices``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    normalization: str | None = Field(None, pattern=r"^[a-z][a-z0-9_]{0,31}$",
                                      description="with reports.<k>: check that matrices.<k> is the matrix of this "
                                                  "normalization in each shard's report (count, volume, length)")
    title: str = Field("", max_length=200, description="title of the figure")
    figure: bool = Field(True, description="draw a heatmap of the sum")


def _check_sum(params: SumMatricesParams, counts: Mapping[str, int]) -> list[tuple[str, str]]:
    n = counts["matrices"]
    for slot in ("labels", "reports"):
        if counts[slot] not in (0, n):
            return [(f"inputs.{slot}", f"{counts[slot]} {slot} for {n} matrices: give one per matrix, or none")]
    if params.normalization is not None and not counts["reports"]:
        return [("params.normalization", "normalization is checked against the shards' reports: give "
                                         "reports.0, reports.1, ...")]
    return []


def _matrix_in_report(report: Any, normalization: str) -> dict[str, Any] | None:
    result = report.get("result", {}) if isinstance(report, dict) else {}
    for entry in result.get("matrices", []) or []:
        if entry.get("normalization") == normalization:
            return entry.get("matrix")
    return None


def _run_sum(context: OperationContext, params: SumMatricesParams) -> dict[str, ArtifactRef]:
    matrices = context.repeated("matrices")
    if params.normalization is not None:
        for (path, ref), (report_path, report_ref) in zip(matrices, context.repeated("reports")):
            found = _matrix_in_report(context.read_json(report_path, report_ref), params.normalization)
            if found is None or found.get("sha256") != ref.sha256:
                raise FailedPrecondition(
                    f"{path} is not the {params.normalization!r} matrix of {report_path} "
                    f"({'it has none' if found is None else 'that one has sha256 ' + str(found.get('sha256'))}); "
                    "the step's inputs address the wrong matrix of the result", reason="WRONG_MATRIX",
                    field=f"inputs.{path}")
    arrays = []
    for k, (path, ref) in enumerate(matrices):
        arrays.append(context.read_array(path, ref))
        context.report(0.7 * (k + 1) / len(matrices), f"read {k + 1} of {len(matrices)} matrices")
    total = sum_matrices(arrays)
    out: dict[str, ArtifactRef] = {"sum": context.write_array("sum", total)}
    labels = None
    label_inputs = context.repeated("labels")
    if label_inputs:
        arrays_of_labels = [context.read_array(p, r) for p, r in label_inputs]
        for (path, _), other in zip(label_inputs[1:], arrays_of_labels[1:]):
            if not np.array_equal(other, arrays_of_labels[0]):
                raise ValueError(f"{path} differs from labels.0: the shards have different regions, or in another "
                                 "order, and their matrices cannot be summed")
        labels = arrays_of_labels[0]
        if total.ndim >= 1 and labels.shape[0] != total.shape[0]:
            raise ValueError(f"labels.0 has {labels.shape[0]} regions for a matrix of shape {total.shape}")
        out["labels"] = context.write_array("labels", labels)
    if params.figure and total.ndim == 2:
        context.report(0.85, "drawing the heatmap")
        title = params.title or f"sum of {len(matrices)} matrices" + (
            f" ({params.normalization})" if params.normalization else "")
        out["figure"] = context.write_png("sum.png", heatmap_figure(total, None if labels is None else labels.tolist(),
                                                                    title=title))
    context.summary.update({"n_matrices": len(matrices), "shape": list(total.shape), "total": float(total.sum()),
                            "normalization": params.normalization})
    context.report(1.0, "stored")
    return out


SUM_MATRICES = LocalOperation(
    method="SumMatrices",
    summary="Sum matrices of one shape (the shards of a connectome), checking that they share their region "
            "labels and are the normalisation asked for.",
    params_model=SumMatricesParams,
    inputs={"matrices": InputSlot("a matrix to add, e.g. DiffusionConnectome's matrices.0.matrix of one shard",
                                  repeated=True, required=True),
            "labels": InputSlot("the region labels of matrices.<k> (rows and columns), e.g. region_labels",
                                repeated=True),
            "reports": InputSlot("the JSON report of the result matrices.<k> comes from, e.g. report",
                                 repeated=True)},
    outputs={"sum": "the element-wise sum (float64; int64 for integer matrices)",
             "labels": "the region labels shared by every matrix (with labels.<k>)",
             "figure": "PNG heatmap of the sum",
             "report": "JSON: params, inputs, outputs, the sum's total"},
    run=_run_sum, check=_check_sum)
