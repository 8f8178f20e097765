"""The plain fields of connectomics requests, checked and with their defaults resolved.

Each function takes a request message and returns the options the core needs, or raises
:class:`~services.common.errors.RequestError` (INVALID_ARGUMENT) naming the first bad field.

Example
-------
>>> from neuromesh.connectomics.v1 import connectomics_pb2 as C
>>> contact_options(C.ContactGraphRequest(voxel_size_nm=[40, 4, 4])).voxel_size
(40.0, 4.0, 4.0)
>>> measures_options(C.GraphMeasuresOptions(measures=["clustering", "clustering"]))
Traceback (most recent call last):
...
services.common.errors.RequestError: measures.measures names 'clustering' twice
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from neuromesh.connectomics.v1 import connectomics_pb2 as C
from services.common.errors import RequestError

from .core.contacts import DEFAULT_BLOCK_SHAPE
from .core.graph_measures import DEFAULT_SUMMARY_MEASURES, SUMMARY_MEASURES
from .core.simulated import MAX_DENSE_NEURONS

__all__ = ["MeasuresOptions", "measures_options", "ContactOptions", "contact_options", "SimulatedOptions",
           "simulated_options", "TrackingOptions", "tracking_options", "MEASURES", "DEFAULT_MEASURES"]

#: every graph measure by name, in the order they are computed
MEASURES = SUMMARY_MEASURES
#: the measures computed when none is named: all but those that build random graphs
DEFAULT_MEASURES = DEFAULT_SUMMARY_MEASURES


@dataclass(frozen=True)
class MeasuresOptions:
    measures: tuple[str, ...]
    n_random: int = 20
    seed: int = 0
    resolution: float = 1.0
    skip: bool = False


def measures_options(options: C.GraphMeasuresOptions, where: str = "measures") -> MeasuresOptions:
    """Check a ``GraphMeasuresOptions``; unknown measure names are refused with the known ones."""
    names = tuple(options.measures) or DEFAULT_MEASURES
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name not in MEASURES:
            raise RequestError(f"{where}.measures[{i}] is {name!r}, not a measure; known: {', '.join(MEASURES)}",
                               field=f"{where}.measures")
        if name in seen:
            raise RequestError(f"{where}.measures names {name!r} twice", field=f"{where}.measures")
        seen.add(name)
    if options.n_random < 0 or options.n_random > 1000:
        raise RequestError(f"{where}.n_random must be in [0, 1000], got {options.n_random}", field=f"{where}.n_random")
    resolution = options.resolution or 1.0
    if not (math.isfinite(resolution) and resolution > 0):
        raise RequestError(f"{where}.resolution must be a finite number > 0, got {options.resolution}",
                           field=f"{where}.resolution")
    ordered = tuple(m for m in MEASURES if m in seen)
    return MeasuresOptions(measures=ordered, n_random=options.n_random or 20, seed=int(options.seed),
                           resolution=float(resolution), skip=options.skip)


def _per_axis(values, name: str, default, *, integer: bool) -> tuple:
    if not values:
        return tuple(default)
    if len(values) != 3:
        raise RequestError(f"{name} must have 3 values (z, y, x), got {len(values)}", field=name)
    for v in values:
        bad = (v < 1) if integer else not (math.isfinite(v) and v > 0)
        if bad:
            raise RequestError(f"{name} must be {'integers >= 1' if integer else 'finite numbers > 0'} (z, y, x), "
                               f"got {list(values)}", field=name)
    return tuple(int(v) for v in values) if integer else tuple(float(v) for v in values)


@dataclass(frozen=True)
class ContactOptions:
    voxel_size: tuple[float, float, float]
    block_shape: tuple[int, int, int]
    min_contact_faces: int
    measures: MeasuresOptions = field(default_factory=lambda: MeasuresOptions(DEFAULT_MEASURES))


def contact_options(request: C.ContactGraphRequest) -> ContactOptions:
    if request.min_contact_faces < 0:
        raise RequestError(f"min_contact_faces must be >= 0, got {request.min_contact_faces}",
                           field="min_contact_faces")
    return ContactOptions(voxel_size=_per_axis(request.voxel_size_nm, "voxel_size_nm", (1.0, 1.0, 1.0), integer=False),
                          block_shape=_per_axis(request.block_shape, "block_shape", DEFAULT_BLOCK_SHAPE, integer=True),
                          min_contact_faces=int(request.min_contact_faces),
                          measures=measures_options(request.measures))


@dataclass(frozen=True)
class SimulatedOptions:
    first_neuron: int
    last_neuron: int          # 0: every neuron of the population table
    bin_ms: float
    start_ms: float
    duration_ms: float


def simulated_options(request: C.SimulatedConnectomeRequest) -> SimulatedOptions:
    bin_ms = request.bin_ms or 20.0
    if not (math.isfinite(bin_ms) and bin_ms > 0):
        raise RequestError(f"bin_ms must be a finite number > 0, got {request.bin_ms}", field="bin_ms")
    if not (math.isfinite(request.duration_ms) and request.duration_ms > 0):
        raise RequestError(f"duration_ms is required: the time counted, a finite number > 0, got "
                           f"{request.duration_ms}", field="duration_ms")
    if not math.isfinite(request.start_ms):
        raise RequestError(f"start_ms must be finite, got {request.start_ms}", field="start_ms")
    if request.duration_ms / bin_ms < 2:
        raise RequestError(f"duration_ms={request.duration_ms} holds fewer than 2 bins of bin_ms={bin_ms}; "
                           f"correlations need at least 2", field="bin_ms")
    first, last = int(request.first_neuron), int(request.last_neuron)
    if first < 0 or last < 0 or (last and last <= first):
        raise RequestError(f"the neurons [first_neuron, last_neuron) = [{first}, {last}) are not a range of ids",
                           field="first_neuron")
    if last and last - first > MAX_DENSE_NEURONS:
        raise RequestError(f"[first_neuron, last_neuron) holds {last - first} neurons, more than the "
                           f"{MAX_DENSE_NEURONS} a dense correlation matrix is made for", field="last_neuron")
    return SimulatedOptions(first, last, float(bin_ms), float(request.start_ms), float(request.duration_ms))


@dataclass(frozen=True)
class TrackingOptions:
    model: str
    tracking: str
    seeds_per_voxel: int
    seed_fa_threshold: float
    stop_fa_threshold: float
    step_size_mm: float | None
    max_angle_deg: float
    min_length_mm: float | None
    max_length_mm: float | None
    processes: int
    seed: int
    shard_index: int
    shard_count: int
    measures: MeasuresOptions


_MODELS = {C.FIBRE_MODEL_UNSPECIFIED: "csd", C.FIBRE_MODEL_CSD: "csd", C.FIBRE_MODEL_CSA: "csa",
           C.FIBRE_MODEL_DTI: "dti"}
_TRACKING = {C.TRACKING_METHOD_UNSPECIFIED: "deterministic", C.TRACKING_METHOD_DETERMINISTIC: "deterministic",
             C.TRACKING_METHOD_PROBABILISTIC: "probabilistic"}
#: most worker processes one call may ask for
MAX_PROCESSES = 64


def _fraction(request, name: str, default: float) -> float:
    value = getattr(request, name) if request.HasField(name) else default
    if not (math.isfinite(value) and 0 <= value < 1):
        raise RequestError(f"{name} must be in [0, 1), got {value}", field=name)
    return float(value)


def tracking_options(request: C.DiffusionConnectomeRequest) -> TrackingOptions:
    if request.model not in _MODELS:
        raise RequestError(f"model {request.model} is not a FibreModel", field="model")
    if request.tracking not in _TRACKING:
        raise RequestError(f"tracking {request.tracking} is not a TrackingMethod", field="tracking")
    seeds = request.seeds_per_voxel or 1
    if not 1 <= seeds <= 10:
        raise RequestError(f"seeds_per_voxel must be in [1, 10] (n^3 seeds per voxel), got {seeds}",
                           field="seeds_per_voxel")
    for name in ("step_size_mm", "max_angle_deg", "min_length_mm", "max_length_mm"):
        value = getattr(request, name)
        if not (math.isfinite(value) and value >= 0):
            raise RequestError(f"{name} must be a finite number >= 0, got {value}", field=name)
    angle = request.max_angle_deg or 30.0
    if angle > 90:
        raise RequestError(f"max_angle_deg must be in (0, 90], got {angle}", field="max_angle_deg")
    if request.max_length_mm and request.min_length_mm > request.max_length_mm:
        raise RequestError(f"min_length_mm {request.min_length_mm} is larger than max_length_mm "
                           f"{request.max_length_mm}", field="min_length_mm")
    processes = request.processes or 1
    if not 1 <= processes <= MAX_PROCESSES:
        raise RequestError(f"processes must be in [1, {MAX_PROCESSES}], got {processes}", field="processes")
    if request.shard_count < 0 or (request.shard_count and not 0 <= request.shard_index < request.shard_count) \
            or (not request.shard_count and request.shard_index):
        raise RequestError(f"shard_index {request.shard_index} of shard_count {request.shard_count}: the index must "
                           f"be in [0, shard_count), or both 0", field="shard_index")
    return TrackingOptions(
        model=_MODELS[request.model], tracking=_TRACKING[request.tracking], seeds_per_voxel=int(seeds),
        seed_fa_threshold=_fraction(request, "seed_fa_threshold", 0.3),
        stop_fa_threshold=_fraction(request, "stop_fa_threshold", 0.2),
        step_size_mm=request.step_size_mm or None, max_angle_deg=float(angle),
        min_length_mm=request.min_length_mm or None, max_length_mm=request.max_length_mm or None,
        processes=int(processes), seed=int(request.seed), shard_index=int(request.shard_index),
        shard_count=int(request.shard_count), measures=measures_options(request.measures))
