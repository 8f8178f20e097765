"""From the segmentation service's requests to checked options: shapes, boxes, thresholds, U-Nets.

Transport-free (it reads the generated messages, nothing else of gRPC), so it is unit-tested on
its own. Every bad value raises :class:`RequestError`, an ``INVALID_ARGUMENT`` error that is also
a ``ValueError`` (so the core's block runner does not retry it) and whose ``field`` is the dotted
path of the request field at fault. Axes are ``(z, y, x)`` everywhere; defaults of unset fields
are those documented in ``segmentation.proto``.

Example
-------
>>> from neuromesh.segmentation.v1 import segmentation_pb2 as S
>>> options = segment_options(S.SegmentRequest(block_shape=[16, 32, 32], thresholds=[0.3, 0.6]))
>>> options.block_shape, options.halo, options.thresholds
((16, 32, 32), (8, 16, 16), (0.3, 0.6))
>>> box_slices(S.Box(z_start=4, z_stop=12), (32, 64, 64), "train_region")
(slice(4, 12, None), slice(0, 64, None), slice(0, 64, None))
>>> segment_options(S.SegmentRequest(block_shape=[4, 32, 32], halo=[8, 8, 8]))
Traceback (most recent call last):
...
services.common.errors.RequestError: halo (8, 8, 8) is larger than block_shape (4, 32, 32) along z (8 > 4): a block must be at least as large as its halo
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from neuromesh.segmentation.v1 import segmentation_pb2 as S
from services.common.errors import RequestError

from .core.unet import UNetConfig, check_input_shape

__all__ = ["RequestError", "SegmentOptions", "check_seed_depth_halo", "TrainOptions", "box_slices", "check_volume", "segment_options",
           "train_options", "unet_config", "unet_config_message", "per_axis"]

AXES = ("z", "y", "x")
DEFAULT_BLOCK_SHAPE = (64, 256, 256)
DEFAULT_HALO = (8, 16, 16)
DEFAULT_THRESHOLDS = (0.5,)
DEFAULT_BOUNDARY_THRESHOLD = 0.5
DEFAULT_MIN_SEED_DISTANCE = 2
DEFAULT_ITERATIONS = 2000
DEFAULT_BATCH_SIZE = 2
DEFAULT_LEARNING_RATE = 1e-3
#: at most this many thresholds per Segment call (each writes a label volume)
MAX_THRESHOLDS = 32

_TARGETS = {S.BOUNDARY_TARGET_UNSPECIFIED: "affinities", S.BOUNDARY_TARGET_AFFINITIES: "affinities",
            S.BOUNDARY_TARGET_BOUNDARIES: "boundaries"}
_NORMS = {S.NORMALIZATION_UNSPECIFIED: "group", S.NORMALIZATION_GROUP: "group",
          S.NORMALIZATION_INSTANCE: "instance"}
_UPSAMPLINGS = {S.UPSAMPLING_UNSPECIFIED: "transposed", S.UPSAMPLING_TRANSPOSED: "transposed",
                S.UPSAMPLING_TRILINEAR: "trilinear"}
_REDUCTIONS = {S.AFFINITY_REDUCTION_UNSPECIFIED: "min", S.AFFINITY_REDUCTION_MIN: "min",
               S.AFFINITY_REDUCTION_MEAN: "mean"}


def _reverse(mapping: dict, value: str) -> int:
    return next(k for k, v in mapping.items() if v == value and k != 0)


def per_axis(values, field: str, *, minimum: int, default: tuple[int, int, int] | None = None,
             ) -> tuple[int, int, int] | None:
    """Three integers (z, y, x) >= ``minimum`` from a repeated field; ``default`` when empty."""
    values = list(values)
    if not values:
        return default
    if len(values) != 3:
        raise RequestError(f"{field} must be 3 integers (z, y, x), got {values}", field=field)
    if any(v < minimum for v in values):
        raise RequestError(f"{field} must be 3 integers >= {minimum} (z, y, x), got {values}", field=field)
    return tuple(int(v) for v in values)


def voxel_size(values, field: str = "voxel_size_nm") -> tuple[float, float, float]:
    """Three positive finite sizes (z, y, x) in nm; (1, 1, 1) when empty."""
    values = list(values)
    if not values:
        return (1.0, 1.0, 1.0)
    if len(values) != 3 or not all(math.isfinite(v) and v > 0 for v in values):
        raise RequestError(f"{field} must be 3 positive finite numbers (z, y, x) in nm, got {values}", field=field)
    return tuple(float(v) for v in values)


def box_slices(box: S.Box, shape: tuple[int, ...], field: str) -> tuple[slice, slice, slice]:
    """The voxels of ``box`` in a volume of ``shape``: ``[start, stop)`` per axis, stop 0 = the end."""
    out = []
    for axis, size in zip(AXES, shape):
        start, stop = getattr(box, f"{axis}_start"), getattr(box, f"{axis}_stop")
        stop = size if stop == 0 else stop
        if not 0 <= start < stop <= size:
            raise RequestError(f"{field}: {axis} range [{start}, {getattr(box, f'{axis}_stop')}) does not fit the "
                               f"volume's {size} voxels along {axis} (need 0 <= start < stop <= {size}; stop 0 "
                               f"means the end)", field=field)
        out.append(slice(int(start), int(stop)))
    return tuple(out)


def check_volume(shape, dtype, field: str, *, labels: bool = False) -> tuple[tuple[int, int, int], np.dtype]:
    """A 3-D (z, y, x) volume of numbers (integers for labels), else :class:`RequestError` naming it."""
    shape = tuple(int(s) for s in shape)
    dtype = np.dtype(dtype)
    if len(shape) != 3:
        hint = " (one section? segmentation needs a stack of them)" if len(shape) == 2 else ""
        raise RequestError(f"{field} must be a 3-D volume with axes (z, y, x), got shape {shape}{hint}",
                           reason="SHAPE_MISMATCH", field=field)
    if 0 in shape:
        raise RequestError(f"{field} is empty, shape {shape}", reason="SHAPE_MISMATCH", field=field)
    if labels:
        if dtype == np.bool_ or not np.issubdtype(dtype, np.integer):
            raise RequestError(f"{field} must hold integer labels (0 = unlabelled), got dtype {dtype}",
                               reason="WRONG_DTYPE", field=field)
    elif dtype == np.bool_ or not (np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)):
        raise RequestError(f"{field} must hold integer or float intensities, got dtype {dtype}",
                           reason="WRONG_DTYPE", field=field)
    return shape, dtype


def check_same_shape(shape, reference_shape, field: str, reference_field: str = "raw") -> None:
    if tuple(shape) != tuple(reference_shape):
        raise RequestError(f"{field} has shape {tuple(shape)} but {reference_field} has shape "
                           f"{tuple(reference_shape)}; they must match voxel for voxel (z, y, x)",
                           reason="SHAPE_MISMATCH", field=field,
                           metadata={"shape": tuple(shape), f"{reference_field}_shape": tuple(reference_shape)})


def check_finite(block: np.ndarray, field: str, where: str = "") -> None:
    """Float blocks must be finite: NaN or infinity is bad input, named by field and position."""
    if np.issubdtype(block.dtype, np.floating):
        finite = np.isfinite(block)
        if not finite.all():
            first = tuple(int(i) for i in np.argwhere(~finite)[0])
            raise RequestError(f"{field} holds NaN or infinite values{' in ' + where if where else ''} (first at "
                               f"index {first} of that block)", reason="NON_FINITE_VALUES", field=field)


# ------------------------------------------------------------------------------------------------
# TrainBoundaryModel


def unet_config(message: S.UNetConfig, field: str = "network") -> UNetConfig:
    """The core's :class:`UNetConfig` of a ``UNetConfig`` message, defaults filled in."""
    for name, mapping in (("target", _TARGETS), ("norm", _NORMS), ("upsampling", _UPSAMPLINGS)):
        if getattr(message, name) not in mapping:
            raise RequestError(f"{field}.{name}: unknown value {getattr(message, name)}", field=f"{field}.{name}")
    if message.levels < 0 or message.base_channels < 0 or message.anisotropic_levels < 0:
        raise RequestError(f"{field}: levels, base_channels and anisotropic_levels must be >= 0 (0: the default)",
                           field=field)
    try:
        return UNetConfig(levels=message.levels or 3, base_channels=message.base_channels or 8,
                          channel_multiplier=message.channel_multiplier or 2.0, anisotropic=message.anisotropic,
                          anisotropic_levels=message.anisotropic_levels or None, target=_TARGETS[message.target],
                          norm=_NORMS[message.norm], upsampling=_UPSAMPLINGS[message.upsampling])
    except ValueError as exc:
        raise RequestError(f"{field}: {exc}", field=field) from None


def unet_config_message(config: UNetConfig) -> S.UNetConfig:
    """The message of a core config, every default resolved."""
    return S.UNetConfig(levels=config.levels, base_channels=config.base_channels,
                        channel_multiplier=config.channel_multiplier, anisotropic=config.anisotropic,
                        anisotropic_levels=config.anisotropic_levels, target=_reverse(_TARGETS, config.target),
                        norm=_reverse(_NORMS, config.norm), upsampling=_reverse(_UPSAMPLINGS, config.upsampling))


@dataclass(frozen=True)
class TrainOptions:
    """What ``train_boundary_model`` is called with (besides the volumes)."""

    config: UNetConfig
    iterations: int
    batch_size: int
    patch_shape: tuple[int, int, int] | None
    learning_rate: float
    seed: int
    checkpoint_every: int | None
    augment: bool


def train_options(request: S.TrainBoundaryModelRequest) -> TrainOptions:
    """The checked options of a ``TrainBoundaryModelRequest`` (volumes and regions aside)."""
    config = unet_config(request.network)
    for name in ("iterations", "batch_size", "checkpoint_every"):
        if getattr(request, name) < 0:
            raise RequestError(f"{name} must be >= 0 (0: the default), got {getattr(request, name)}", field=name)
    lr = request.learning_rate
    if not math.isfinite(lr) or lr < 0:
        raise RequestError(f"learning_rate must be a finite number > 0 (0: {DEFAULT_LEARNING_RATE}), got {lr}",
                           field="learning_rate")
    if request.seed < 0:
        raise RequestError(f"seed must be >= 0, got {request.seed}", field="seed")
    patch = per_axis(request.patch_shape, "patch_shape", minimum=1)
    if patch is not None:
        try:
            check_input_shape(patch, config=config, name="patch_shape")
        except ValueError as exc:
            raise RequestError(str(exc), field="patch_shape") from None
    return TrainOptions(config=config, iterations=request.iterations or DEFAULT_ITERATIONS,
                        batch_size=request.batch_size or DEFAULT_BATCH_SIZE, patch_shape=patch,
                        learning_rate=lr or DEFAULT_LEARNING_RATE, seed=int(request.seed),
                        checkpoint_every=request.checkpoint_every or None, augment=not request.no_augmentation)


def check_patch_fits(patch: tuple[int, int, int], region: tuple[slice, ...], field: str) -> None:
    shape = tuple(s.stop - s.start for s in region)
    for axis, p, n in zip(AXES, patch, shape):
        if p > n:
            raise RequestError(f"patch_shape {patch} is larger than {field} {shape} along {axis} ({p} > {n})",
                               field=field)


# ------------------------------------------------------------------------------------------------
# Segment


@dataclass(frozen=True)
class SegmentOptions:
    """The checked options of a ``SegmentRequest`` (volumes and the model aside)."""

    block_shape: tuple[int, int, int]
    halo: tuple[int, int, int]
    thresholds: tuple[float, ...]
    voxel_size: tuple[float, float, float]
    min_segment_size: int
    boundary_threshold: float
    min_seed_distance: int
    per_section: bool
    affinity_reduction: str
    patch_shape: tuple[int, int, int] | None
    classical_sigma_nm: float
    bright_membranes: bool
    #: cap of the seeds' distance transform in nm (the units of ``voxel_size``); None: no cap
    max_seed_depth: float | None = None
    #: join the fragments that block faces cut before the graph (the request's ``no_stitching`` unset)
    stitch: bool = True

    def classical_sigma_voxels(self) -> tuple[float, float, float]:
        """The classical Gaussian's sigma per axis in voxels: one physical width on every axis."""
        sigma = self.classical_sigma_nm or min(self.voxel_size)
        return tuple(sigma / v for v in self.voxel_size)


def segment_options(request: S.SegmentRequest) -> SegmentOptions:
    block = per_axis(request.block_shape, "block_shape", minimum=1, default=DEFAULT_BLOCK_SHAPE)
    halo = per_axis(request.halo, "halo", minimum=0)
    if halo is None:
        halo = tuple(min(h, b) for h, b in zip(DEFAULT_HALO, block))
    for axis, b, h in zip(AXES, block, halo):
        if b < h:
            raise RequestError(f"halo {halo} is larger than block_shape {block} along {axis} ({h} > {b}): a block "
                               f"must be at least as large as its halo", field="halo")
    thresholds = tuple(float(t) for t in request.thresholds) or DEFAULT_THRESHOLDS
    if len(thresholds) > MAX_THRESHOLDS:
        raise RequestError(f"at most {MAX_THRESHOLDS} thresholds per call, got {len(thresholds)}", field="thresholds")
    if not all(math.isfinite(t) and 0 <= t <= 1 for t in thresholds):
        raise RequestError(f"thresholds must be numbers in [0, 1] (mean affinities), got {list(thresholds)}",
                           field="thresholds")
    if len(set(thresholds)) != len(thresholds):
        raise RequestError(f"thresholds must be distinct, got {list(thresholds)}", field="thresholds")
    if request.min_segment_size < 0:
        raise RequestError(f"min_segment_size must be >= 0, got {request.min_segment_size}", field="min_segment_size")
    ws = request.watershed
    boundary_threshold = ws.boundary_threshold if ws.HasField("boundary_threshold") else DEFAULT_BOUNDARY_THRESHOLD
    if not (math.isfinite(boundary_threshold) and 0 < boundary_threshold <= 1):
        raise RequestError(f"watershed.boundary_threshold must be in (0, 1], got {boundary_threshold}",
                           field="watershed.boundary_threshold")
    min_seed = ws.min_seed_distance if ws.HasField("min_seed_distance") else DEFAULT_MIN_SEED_DISTANCE
    if min_seed < 0:
        raise RequestError(f"watershed.min_seed_distance must be >= 0, got {min_seed}",
                           field="watershed.min_seed_distance")
    max_seed_depth = None
    if ws.HasField("max_seed_depth"):
        max_seed_depth = float(ws.max_seed_depth)
        if not (math.isfinite(max_seed_depth) and max_seed_depth >= 0):
            raise RequestError(f"watershed.max_seed_depth must be a finite number >= 0 (nm; unset: no cap), got "
                               f"{ws.max_seed_depth}", field="watershed.max_seed_depth")
    if ws.affinity_reduction not in _REDUCTIONS:
        raise RequestError(f"watershed.affinity_reduction: unknown value {ws.affinity_reduction}",
                           field="watershed.affinity_reduction")
    sigma = request.classical.sigma_nm
    if not math.isfinite(sigma) or sigma < 0:
        raise RequestError(f"classical.sigma_nm must be a finite number >= 0, got {sigma}", field="classical.sigma_nm")
    return SegmentOptions(block_shape=block, halo=halo, thresholds=thresholds,
                          voxel_size=voxel_size(request.voxel_size_nm), min_segment_size=int(request.min_segment_size),
                          boundary_threshold=float(boundary_threshold), min_seed_distance=int(min_seed),
                          per_section=ws.per_section, affinity_reduction=_REDUCTIONS[ws.affinity_reduction],
                          patch_shape=per_axis(request.patch_shape, "patch_shape", minimum=1),
                          classical_sigma_nm=float(sigma), bright_membranes=request.classical.bright_membranes,
                          max_seed_depth=max_seed_depth, stitch=not request.no_stitching)


def check_seed_depth_halo(options: SegmentOptions, shape) -> None:
    """Refuse a capped seed depth that the halo does not cover along an axis split into blocks.

    With the distance transform capped at ``max_seed_depth``, a block's seeds are the whole
    volume's only where its halo reaches ``max_seed_depth + min_seed_distance`` beyond its core
    (``seeded_watershed``): a smaller halo would quietly give blocks other seeds than the whole
    volume, the very difference the cap is asked for to remove, so it is bad input rather than
    a warning. An axis of one block has no block face, so its halo does not matter.

    >>> from neuromesh.segmentation.v1 import segmentation_pb2 as S
    >>> request = S.SegmentRequest(block_shape=[8, 32, 32], halo=[4, 6, 6],
    ...                            watershed=S.WatershedOptions(max_seed_depth=6.0))
    >>> check_seed_depth_halo(segment_options(request), (8, 64, 64))
    Traceback (most recent call last):
    ...
    services.common.errors.RequestError: watershed.max_seed_depth 6 nm needs a halo of at least 8 voxels along y (the cap in voxels of 1 nm plus min_seed_distance 2), but halo is (4, 6, 6): grow the halo or lower the cap
    """
    if options.max_seed_depth is None:
        return
    for axis, n, block, halo, size in zip(AXES, shape, options.block_shape, options.halo, options.voxel_size):
        if n <= block:
            continue
        need = math.ceil(options.max_seed_depth / size) + options.min_seed_distance
        if halo < need:
            raise RequestError(f"watershed.max_seed_depth {options.max_seed_depth:g} nm needs a halo of at least "
                               f"{need} voxels along {axis} (the cap in voxels of {size:g} nm plus min_seed_distance "
                               f"{options.min_seed_distance}), but halo is {options.halo}: grow the halo or lower "
                               f"the cap", field="watershed.max_seed_depth")


def fit_block(block_shape: tuple[int, ...], shape: tuple[int, ...], bytes_per_voxel: int,
              budget_bytes: int) -> tuple[int, ...]:
    """``block_shape`` clipped to the volume and halved (largest axis first) until a block fits the budget."""
    block = [min(b, s) for b, s in zip(block_shape, shape)]
    while math.prod(block) * bytes_per_voxel > budget_bytes and max(block) > 1:
        axis = int(np.argmax(block))
        block[axis] = -(-block[axis] // 2)
    return tuple(block)
