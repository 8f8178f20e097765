"""Local fibre tracking, parallel over batches of seeds in worker processes, and TRK/TCK files.

Coordinates: seeds and streamlines are in world mm, RAS+ (the ``affine`` of the volumes maps
voxel indices to them). Streamlines come back as a nibabel ``ArraySequence`` (dipy's
``Streamlines``) of float32 points.

How tracking runs (:func:`track`):

* **Model.** The fibre orientations are a :class:`DirectionField`: either a probability mass
  function sampled on dipy's ``default_sphere`` (362 directions) in every voxel, precomputed
  once from the model (fast to track on, 2.9 kB per voxel), or the model's spherical-harmonic
  coefficients, evaluated where the tracker goes (slower, 8 bytes per coefficient and voxel);
  ``representation="auto"`` takes the first when it fits in ``pmf_memory_limit``. The stopping
  criterion is dipy's ``ThresholdStoppingCriterion`` on a map (FA): a streamline ends where the
  trilinearly interpolated map falls below the threshold, turns by more than ``max_angle_deg``,
  or leaves the volume.
* **Trackers.** dipy's ``LocalTracking`` with a fixed step (``step_size_mm``), tracking from each
  seed along every peak of the model at the seed, both ways; ``"deterministic"`` follows the
  most probable direction within ``max_angle_deg`` of the last step
  (``DeterministicMaximumDirectionGetter``), ``"probabilistic"`` draws it from the pmf
  restricted to that cone, after removing the directions below ``pmf_threshold`` times its
  maximum (``ProbabilisticDirectionGetter``).
* **Batches.** Seeds are cut into consecutive batches whose size depends only on the number of
  seeds (never on the number of processes). Batch ``b`` is tracked with the random seed
  ``SeedSequence(seed, spawn_key=(1, b))`` (dipy reseeds from it and each seed's position), so
  the streamlines are the same whatever ``n_processes`` is, and come back in seed order.
* **Processes.** With ``n_processes > 1`` a :class:`TrackingPool` of the ``spawn`` (or
  ``forkserver``) start method -- safe from a multi-threaded server, unlike ``fork`` -- tracks
  the batches; it can be started ahead so that the workers' start-up overlaps the model fit.
  The model's data goes to each worker once: the direction field and the stopping map are
  written to ``.npy`` files (in ``/dev/shm`` when it has room, else the temporary directory)
  that a worker maps copy-on-write (the workers share the pages) on the first batch of the job
  and keeps for the others. A batch carries its seeds and a small record of settings, and gets
  back its streamlines, already filtered by length. ``n_processes=1`` tracks in the calling
  process.
* **Progress and cancelling.** ``progress(done_seeds, total_seeds)`` is called in the calling
  thread with ``(0, total)`` first, then each time a batch finishes. If it raises, the remaining
  batches are cancelled, the worker processes are terminated and joined, and the exception
  propagates.
* **Size guard.** :func:`estimate_tracking` bounds the work (seeds x 2 directions x the steps
  a streamline of ``max_length_mm`` takes) and the memory (direction field, stopping map, and the
  points of that many steps); above ``max_steps`` or ``max_memory_bytes``
  :class:`TrackingTooLargeError` is raised before anything runs.
* **Length filter.** A streamline is kept when ``min_length_mm <= length <= max_length_mm``
  (and it has at least two points). Each half is capped at the number of steps that exceeds
  ``max_length_mm``, so no kept streamline was cut short by the cap.

Example
-------
A straight field of directions along x in a 10 x 3 x 3 volume of 2 mm voxels, one seed:

>>> from dipy.data import default_sphere
>>> pmf = np.zeros((10, 3, 3, len(default_sphere.vertices)))
>>> pmf[..., np.argmax(default_sphere.vertices[:, 0])] = 1.0       # the vertex nearest +x
>>> field = DirectionField(kind="pmf", data=pmf)
>>> fa = np.zeros((10, 3, 3)); fa[1:9] = 0.8
>>> affine = np.diag([2.0, 2.0, 2.0, 1.0])
>>> result = track(field, fa, np.array([[8.0, 2.0, 2.0]]), affine, step_size_mm=1.0, min_length_mm=0)
>>> len(result.streamlines), result.n_seeds
(1, 1)
>>> sl = result.streamlines[0]                 # world mm, from x = 1 to 17 where FA ends
>>> round(float(sl[:, 0].min())), round(float(sl[:, 0].max())), bool(np.abs(sl[:, 1:] - 2.0).max() < 1)
(1, 17, True)
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import io
import math
import multiprocessing
import numbers
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .connectivity import as_streamlines, streamline_lengths

__all__ = ["TrackingTooLargeError", "DirectionField", "direction_field_from_sh", "direction_field_from_tensor",
           "seeds_from_mask", "TrackingEstimate", "estimate_tracking", "check_tracking_size", "Tracking",
           "TrackingPool", "track", "default_batch_size",
           "save_tractogram", "load_tractogram", "METHODS", "MAX_STEPS", "MAX_MEMORY_BYTES", "PMF_MEMORY_LIMIT"]

METHODS = ("deterministic", "probabilistic")
MAX_STEPS = 2_000_000_000
"""Default limit of :func:`estimate_tracking`'s steps (about 2 core-hours at dipy's pace in the worst case)."""
MAX_MEMORY_BYTES = 16 * 2 ** 30
"""Default limit of :func:`estimate_tracking`'s memory."""
PMF_MEMORY_LIMIT = 2 * 2 ** 30
"""Largest precomputed pmf ``representation="auto"`` chooses; beyond it the SH coefficients are tracked on."""

_CHUNK_VOXELS = 16384             # voxels per block when evaluating a model on the sphere
_MAX_BATCH = 2000                 # seeds per batch at most (progress at least every ~2 s of one core)
_MIN_BATCH = 50                   # and at least (the per-batch overhead is ~1 ms)
_TARGET_BATCHES = 64              # batches aimed at: load balance over a few processes, fine progress
_IN_PROCESS_LOCK = threading.Lock()   # dipy's random numbers are process-global (C rand)


class TrackingTooLargeError(ValueError):
    """The tracking a request asks for exceeds the work or memory limit (see :func:`estimate_tracking`).

    A ``ValueError`` so that a service reports it as a refused request; raised before any work.
    The message says what to change; ``estimate``, ``limit_name`` (``"max_steps"`` or
    ``"max_memory_bytes"``), ``value`` and ``limit`` hold the same facts.
    """

    def __init__(self, message: str, *, estimate=None, limit_name: str = "", value: int = 0, limit: int = 0):
        super().__init__(message)
        self.estimate, self.limit_name, self.value, self.limit = estimate, limit_name, value, limit


# ================================================================================================
# direction fields


@dataclass(frozen=True)
class DirectionField:
    """Fibre orientations to track on, in every voxel of a volume."""

    kind: str
    """``"pmf"``: values on dipy's ``default_sphere``; ``"sh"``: SH coefficients (descoteaux07, legacy basis)."""
    data: np.ndarray
    """float64, C-contiguous, shape ``(X, Y, Z, 362)`` (pmf, >= 0) or ``(X, Y, Z, n_coefficients)`` (sh)."""
    path: str | None = None
    """A ``.npy`` file that holds ``data`` (memory-mapped), when it lives in one; see :meth:`close`."""

    def __post_init__(self):
        if self.kind not in ("pmf", "sh"):
            raise ValueError(f"kind must be 'pmf' or 'sh', got {self.kind!r}")
        if self.data.ndim != 4:
            raise ValueError(f"direction data must be 4-D (x, y, z, values), got shape {self.data.shape}")

    @property
    def nbytes(self) -> int:
        return int(self.data.nbytes)

    def close(self) -> None:
        """Delete the backing file, if any (the mapping stays valid until ``data`` is dropped)."""
        if self.path:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)


def _sphere():
    from dipy.data import default_sphere
    return default_sphere


def _scratch_dir(nbytes: int) -> str:
    # /dev/shm is memory that all processes map without a disk behind it; containers often give
    # it 64 MB, so fall back to the temporary directory (its page cache is shared just the same)
    shm = "/dev/shm"
    with contextlib.suppress(OSError):
        if os.path.isdir(shm) and shutil.disk_usage(shm).free > 2 * nbytes + (64 << 20):
            return shm
    return tempfile.gettempdir()


def _new_array(shape, *, shared: bool) -> tuple[np.ndarray, str | None]:
    """A zeroed float64 array, in a memory-mapped ``.npy`` file when ``shared``."""
    if not shared:
        return np.zeros(shape, dtype=np.float64), None
    nbytes = int(np.prod(shape)) * 8
    fd, path = tempfile.mkstemp(prefix="neuromesh-directions-", suffix=".npy", dir=_scratch_dir(nbytes))
    os.close(fd)
    try:
        array = np.lib.format.open_memmap(path, mode="w+", dtype=np.float64, shape=tuple(shape))
    except BaseException:
        os.unlink(path)
        raise
    return array, path


def _choose(representation, shape, pmf_memory_limit):
    if representation not in ("auto", "pmf", "sh"):
        raise ValueError(f"representation must be 'auto', 'pmf' or 'sh', got {representation!r}")
    if representation != "auto":
        return representation
    pmf_bytes = int(np.prod(shape)) * len(_sphere().vertices) * 8
    return "pmf" if pmf_bytes <= pmf_memory_limit else "sh"


def direction_field_from_sh(shcoeff: np.ndarray, *, mask: np.ndarray, subtract_minimum: bool = False,
                            representation: str = "auto", pmf_memory_limit: int = PMF_MEMORY_LIMIT,
                            shared: bool = False) -> DirectionField:
    """A direction field from SH coefficients (CSD fODF or CSA ODF), evaluated inside ``mask``.

    Parameters
    ----------
    shcoeff : ndarray, shape (X, Y, Z, C)
        Coefficients in dipy's default basis (descoteaux07, legacy); the order follows from ``C``.
    mask : ndarray of bool, shape (X, Y, Z)
        Voxels to evaluate (elsewhere the field is 0: no direction).
    subtract_minimum : bool
        Remove each voxel's minimum over the sphere (the isotropic part, which carries no
        direction), as for the CSA ODF; negative values are set to 0 in any case (the negative
        lobes of an fODF are noise).
    representation : {"auto", "pmf", "sh"}
        See :class:`DirectionField`.
    shared : bool
        Put the data in a memory-mapped file that worker processes can map (for ``n_processes > 1``).
    """
    from dipy.reconst.shm import sh_to_sf_matrix
    shcoeff = np.asarray(shcoeff, dtype=np.float64)
    n_coef = shcoeff.shape[-1]
    order = int(round((math.sqrt(8 * n_coef + 1) - 3) / 2))
    if shcoeff.ndim != 4 or (order + 1) * (order + 2) // 2 != n_coef:
        raise ValueError(f"SH coefficients must be (x, y, z, (L+1)(L+2)/2) for an even L, got shape {shcoeff.shape}")
    sphere = _sphere()
    basis = sh_to_sf_matrix(sphere, sh_order_max=order, basis_type=None, return_inv=False)   # (C, n_vertices)
    kind = _choose(representation, shcoeff.shape[:3], pmf_memory_limit)
    width = basis.shape[1] if kind == "pmf" else n_coef
    data, path = _new_array(shcoeff.shape[:3] + (width,), shared=shared)
    try:
        flat_out = data.reshape(-1, width)
        flat_in = shcoeff.reshape(-1, n_coef)
        voxels = np.flatnonzero(mask)
        y00 = float(basis[0, 0])          # the l = 0 harmonic is the same constant at every vertex
        for start in range(0, voxels.size, _CHUNK_VOXELS):
            idx = voxels[start:start + _CHUNK_VOXELS]
            coef = flat_in[idx]
            sf = coef @ basis
            if kind == "pmf":
                if subtract_minimum:
                    sf -= sf.min(axis=1, keepdims=True)
                flat_out[idx] = np.maximum(sf, 0.0)
            else:
                if subtract_minimum:
                    coef = coef.copy()
                    coef[:, 0] -= sf.min(axis=1) / y00
                flat_out[idx] = coef
        if path:
            data.flush()
    except BaseException:
        if path:
            os.unlink(path)
        raise
    return DirectionField(kind=kind, data=data, path=path)


def _tensor_odf(evals: np.ndarray, evecs: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """ODF of a tensor on unit ``vertices``: ``(sum_i (u . e_i)^2 / l_i)^(-3/2) / (4 pi sqrt(l1 l2 l3))``.

    The radial integral of the Gaussian displacement propagator (Tuch 2004); 0 where an
    eigenvalue is not positive (no valid tensor).
    """
    valid = np.all(evals > 0, axis=-1)
    safe = np.where(valid[:, None], evals, 1.0)
    projection = np.einsum("vk,nkj->nvj", vertices, evecs) ** 2     # (n, n_vertices, 3): (u . e_j)^2
    quad = np.einsum("nvj,nj->nv", projection, 1.0 / safe)
    odf = quad ** -1.5 / (4 * np.pi * np.sqrt(np.prod(safe, axis=-1)))[:, None]
    return np.where(valid[:, None], odf, 0.0)


def direction_field_from_tensor(evals: np.ndarray, evecs: np.ndarray, *, mask: np.ndarray, sh_order_max: int = 8,
                                representation: str = "auto", pmf_memory_limit: int = PMF_MEMORY_LIMIT,
                                shared: bool = False) -> DirectionField:
    """A direction field from a tensor fit: the tensor ODF minus its minimum, inside ``mask``.

    ``evals`` ``(X, Y, Z, 3)`` (mm^2/s) and ``evecs`` ``(X, Y, Z, 3, 3)`` (eigenvectors in the
    columns) as dipy's ``TensorFit`` has them. The maximum of the ODF is the principal
    eigenvector, so deterministic tracking on it follows the tensor's main axis. With the ``"sh"``
    representation the ODF is projected on SH of order ``sh_order_max``.
    """
    from dipy.reconst.shm import sh_to_sf_matrix
    evals = np.asarray(evals, dtype=np.float64)
    evecs = np.asarray(evecs, dtype=np.float64)
    shape = evals.shape[:3]
    sphere = _sphere()
    vertices = np.asarray(sphere.vertices, dtype=np.float64)
    kind = _choose(representation, shape, pmf_memory_limit)
    if kind == "sh":
        _, inverse = sh_to_sf_matrix(sphere, sh_order_max=sh_order_max, basis_type=None, return_inv=True)
        width = inverse.shape[1]
    else:
        width = len(vertices)
    data, path = _new_array(shape + (width,), shared=shared)
    try:
        flat_out = data.reshape(-1, width)
        flat_evals, flat_evecs = evals.reshape(-1, 3), evecs.reshape(-1, 3, 3)
        voxels = np.flatnonzero(mask)
        for start in range(0, voxels.size, _CHUNK_VOXELS):
            idx = voxels[start:start + _CHUNK_VOXELS]
            sf = _tensor_odf(flat_evals[idx], flat_evecs[idx], vertices)
            sf -= sf.min(axis=1, keepdims=True)
            flat_out[idx] = sf if kind == "pmf" else sf @ inverse
        if path:
            data.flush()
    except BaseException:
        if path:
            os.unlink(path)
        raise
    return DirectionField(kind=kind, data=data, path=path)


# ================================================================================================
# seeds and the size guard


def seeds_from_mask(mask: np.ndarray, affine: np.ndarray, *, seeds_per_voxel: int = 1, seed: int = 0) -> np.ndarray:
    """``seeds_per_voxel`` seeds at uniformly random positions in every voxel of ``mask``.

    A voxel spans ``index +- 0.5`` along each axis. Positions come from
    ``numpy.random.default_rng(SeedSequence(seed, spawn_key=(0,)))``, voxel after voxel in C order.

    Returns
    -------
    ndarray, shape (n_voxels * seeds_per_voxel, 3)
        World coordinates in mm.

    Examples
    --------
    >>> mask = np.zeros((3, 3, 3), bool); mask[1, 1, 1] = True
    >>> s = seeds_from_mask(mask, np.diag([2.0, 2.0, 2.0, 1.0]), seeds_per_voxel=4)
    >>> s.shape, bool(np.all((s >= 1.0) & (s <= 3.0)))
    ((4, 3), True)
    """
    seeds_per_voxel = _check_int("seeds_per_voxel", seeds_per_voxel, 1, 10_000)
    seed = _check_int("seed", seed, 0)
    voxels = np.argwhere(np.asarray(mask, dtype=bool)).astype(np.float64)
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,)))
    points = np.repeat(voxels, seeds_per_voxel, axis=0)
    points += rng.uniform(-0.5, 0.5, size=points.shape)
    affine = np.asarray(affine, dtype=np.float64)
    return points @ affine[:3, :3].T + affine[:3, 3]


@dataclass(frozen=True)
class TrackingEstimate:
    """Upper bounds of a tracking job."""

    n_seeds: int
    max_points: int
    """Points of a streamline at most (both halves at their cap)."""
    steps: int
    """Tracking steps at most, ``n_seeds * max_points`` (one streamline per seed; seeds in
    crossings start one per peak, a few more)."""
    memory_bytes: int
    """Direction field (once), stopping map (per process), and ``steps`` float32 points."""


def _half_cap(step_size_mm: float, max_length_mm: float) -> int:
    # steps of one half: the first count whose length exceeds max_length_mm
    return int(math.floor(max_length_mm / step_size_mm)) + 1


def estimate_tracking(n_seeds: int, *, direction_bytes: int, stopping_bytes: int, step_size_mm: float,
                      max_length_mm: float, n_processes: int = 1) -> TrackingEstimate:
    """Bound the work and memory of tracking ``n_seeds`` seeds (see :class:`TrackingEstimate`).

    Examples
    --------
    >>> e = estimate_tracking(1000, direction_bytes=10**6, stopping_bytes=10**4, step_size_mm=0.5,
    ...                       max_length_mm=200)
    >>> e.max_points, e.steps
    (803, 803000)
    """
    cap = _half_cap(step_size_mm, max_length_mm)
    max_points = 2 * cap + 1
    steps = int(n_seeds) * max_points
    memory = int(direction_bytes) + int(stopping_bytes) * (1 + max(1, int(n_processes))) + steps * 12
    return TrackingEstimate(n_seeds=int(n_seeds), max_points=max_points, steps=steps, memory_bytes=memory)


def check_tracking_size(estimate: TrackingEstimate, *, max_steps: int = MAX_STEPS,
                        max_memory_bytes: int = MAX_MEMORY_BYTES) -> None:
    """Raise :class:`TrackingTooLargeError` when ``estimate`` exceeds a limit (both overridable by keyword)."""
    if estimate.steps > max_steps:
        raise TrackingTooLargeError(
            f"tracking {estimate.n_seeds} seeds of up to {estimate.max_points} points each is up to "
            f"{estimate.steps:.3g} steps, above the limit of {max_steps:.3g} (max_steps): use fewer seeds per voxel, "
            "a larger step or a shorter max_length_mm",
            estimate=estimate, limit_name="max_steps", value=estimate.steps, limit=max_steps)
    if estimate.memory_bytes > max_memory_bytes:
        raise TrackingTooLargeError(
            f"tracking {estimate.n_seeds} seeds needs up to {estimate.memory_bytes / 2 ** 30:.2f} GiB, above the limit "
            f"of {max_memory_bytes / 2 ** 30:.2f} GiB (max_memory_bytes): use fewer seeds or a shorter max_length_mm",
            estimate=estimate, limit_name="max_memory_bytes", value=estimate.memory_bytes, limit=max_memory_bytes)


# ================================================================================================
# tracking: the per-process state and one batch


@dataclass(frozen=True)
class _Settings:
    """What a tracker needs besides the direction data; small, except ``stopping`` in-process."""

    kind: str
    method: str
    max_angle_deg: float
    pmf_threshold: float
    stopping_threshold: float
    step_size_mm: float
    half_cap: int
    min_length_mm: float
    max_length_mm: float
    affine: np.ndarray
    stopping: np.ndarray | None = None      # float64 (X, Y, Z), in the calling process
    job: str | None = None                  # for workers: a token naming this tracking job ...
    path: str | None = None                 # ... the direction data's .npy file ...
    stopping_path: str | None = None        # ... and the stopping map's


def _build(settings: _Settings, data: np.ndarray):
    from dipy.direction import DeterministicMaximumDirectionGetter, ProbabilisticDirectionGetter
    from dipy.tracking.stopping_criterion import ThresholdStoppingCriterion
    cls = ProbabilisticDirectionGetter if settings.method == "probabilistic" else DeterministicMaximumDirectionGetter
    options = dict(max_angle=settings.max_angle_deg, sphere=_sphere(), pmf_threshold=settings.pmf_threshold)
    getter = cls.from_pmf(data, **options) if settings.kind == "pmf" else cls.from_shcoeff(data, **options)
    criterion = ThresholdStoppingCriterion(np.ascontiguousarray(settings.stopping, dtype=np.float64),
                                           settings.stopping_threshold)
    return settings, getter, criterion


def _batch_random_seed(seed: int, batch: int) -> int:
    return int(np.random.SeedSequence(seed, spawn_key=(1, batch)).generate_state(1, dtype=np.uint32)[0])


def _run_batch(state, seeds: np.ndarray, random_seed: int):
    """Track one batch: (points float32 (P, 3), points per streamline (n,), tracked, too short, too long, CPU s)."""
    from dipy.tracking.local_tracking import LocalTracking
    cpu = time.thread_time()        # this thread's CPU time: right in a worker and in a threaded server alike
    settings, getter, criterion = state
    tracker = LocalTracking(getter, criterion, seeds, settings.affine, settings.step_size_mm,
                            maxlen=settings.half_cap, fixedstep=True, return_all=True, random_seed=random_seed)
    lines = [s for s in tracker]
    n_tracked = len(lines)
    counts = np.fromiter((len(s) for s in lines), dtype=np.intp, count=n_tracked)
    if n_tracked == 0:
        return np.zeros((0, 3), np.float32), counts, 0, 0, 0, time.thread_time() - cpu
    # measured on the float32 points that are returned, by the function the connectivity uses,
    # so that a kept streamline is within the limits whoever measures it again
    points = np.concatenate(lines).astype(np.float32)
    lengths = streamline_lengths(_sequence(points, counts))
    short = (lengths < settings.min_length_mm) | (counts < 2)
    long_ = ~short & (lengths > settings.max_length_mm)
    keep = ~(short | long_)
    return (points[np.repeat(keep, counts)], counts[keep], n_tracked, int(short.sum()), int(long_.sum()),
            time.thread_time() - cpu)


_WORKER_STATE: dict = {}      # job token -> (settings, getter, criterion), in a worker process


def _warm_worker() -> None:
    """Pool initializer: one BLAS thread, and the imports (most of a worker's start-up) done now."""
    import threadpoolctl
    threadpoolctl.threadpool_limits(limits=1)   # one busy thread per worker process
    from dipy.direction import DeterministicMaximumDirectionGetter, ProbabilisticDirectionGetter  # noqa: F401
    from dipy.tracking.local_tracking import LocalTracking  # noqa: F401
    _sphere()


def _noop() -> None:
    return None


def _worker_batch(settings: _Settings, index: int, seeds: np.ndarray, random_seed: int):
    """Track one batch in a worker; the job's data is mapped and the tracker built on its first batch only."""
    state = _WORKER_STATE.get(settings.job)
    if state is None:
        _WORKER_STATE.clear()                  # a worker serves one job at a time
        data = np.load(settings.path, mmap_mode="c")   # copy-on-write: shared pages, writable for dipy
        stopping = np.load(settings.stopping_path)
        from dataclasses import replace
        state = _build(replace(settings, stopping=stopping), data)
        _WORKER_STATE[settings.job] = state
    return index, _run_batch(state, seeds, random_seed)


class TrackingPool:
    """Worker processes for :func:`track`, started ahead of the tracking.

    Start one before fitting the model and the workers' start-up (a fresh interpreter importing
    dipy, 1-2 s each) overlaps the fit. The pool uses the ``spawn`` (or ``forkserver``) start
    method, safe from a multi-threaded server. Use it as a context manager: leaving the block
    normally waits for the workers to exit, leaving it by an exception terminates them. As with
    every spawn pool, the program's main script must guard its entry point with
    ``if __name__ == "__main__":`` (``python -m package`` entry points need not).
    """

    def __init__(self, n_processes: int, *, start_method: str = "spawn") -> None:
        if start_method not in ("spawn", "forkserver"):
            raise ValueError(f"start_method must be 'spawn' or 'forkserver', got {start_method!r}")
        self.n_processes = _check_int("n_processes", n_processes, 1, 256)
        self._executor = cf.ProcessPoolExecutor(max_workers=self.n_processes,
                                                mp_context=multiprocessing.get_context(start_method),
                                                initializer=_warm_worker)
        self.closed = False
        # the executor spawns a worker per submitted task while none is idle: n tasks start n now
        for _ in range(self.n_processes):
            self._executor.submit(_noop)

    def submit(self, *args):
        if self.closed:
            raise RuntimeError("the tracking pool is closed")
        return self._executor.submit(*args)

    def close(self) -> None:
        """Let the workers finish and exit."""
        if not self.closed:
            self.closed = True
            self._executor.shutdown(wait=True)

    def terminate(self) -> None:
        """Cancel what has not started and kill the workers now."""
        if not self.closed:
            self.closed = True
            _terminate(self._executor)

    def __enter__(self) -> "TrackingPool":
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.close()
        else:
            self.terminate()


# ================================================================================================
# tracking: the public entry point


@dataclass(frozen=True)
class Tracking:
    """What :func:`track` produced."""

    streamlines: object
    """nibabel ``ArraySequence`` of float32 ``(n_i, 3)`` arrays, world mm (RAS+), in seed order."""
    n_seeds: int
    n_tracked: int
    """Streamlines the tracker produced (a seed in a crossing starts one per peak), before the length filter."""
    n_too_short: int
    """Left out: shorter than ``min_length_mm`` or a single point."""
    n_too_long: int
    """Left out: longer than ``max_length_mm``."""
    batch_size: int
    n_batches: int
    n_processes: int
    """Processes that tracked (1: the calling process)."""
    seconds: float
    """Wall time, pool start-up included."""
    cpu_seconds: float = 0.0
    """CPU time the batches took, summed over the processes (worker start-up not included)."""


def _check_int(name, value, minimum, maximum=None):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        raise ValueError(f"{name} must be in [{minimum}, {maximum if maximum is not None else 'inf'}], got {value}")
    return int(value)


def _check_number(name, value, lo, hi, *, lo_open=False, hi_open=False):
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(value) or value < lo or value > hi or (lo_open and value == lo) or (hi_open and value == hi):
        raise ValueError(f"{name} must be in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}, "
                         f"got {value:g}")
    return value


def default_batch_size(n_seeds: int) -> int:
    """Seeds per batch for ``n_seeds`` seeds: about 64 batches, 50 to 2000 seeds each.

    A function of the seed count alone, so that the batches (and their random seeds) are the same
    whatever the number of processes.
    """
    return int(min(_MAX_BATCH, max(_MIN_BATCH, math.ceil(n_seeds / _TARGET_BATCHES))))


def _terminate(executor: cf.ProcessPoolExecutor) -> None:
    """Stop a pool now: cancel what has not started, kill the workers, reap them."""
    processes = list((getattr(executor, "_processes", None) or {}).values())
    executor.shutdown(wait=False, cancel_futures=True)
    if hasattr(executor, "terminate_workers"):       # Python >= 3.14
        with contextlib.suppress(Exception):
            executor.terminate_workers()
    for process in processes:                       # before 3.14 the pool's processes are only reachable here
        with contextlib.suppress(Exception):
            process.terminate()
    for process in processes:
        with contextlib.suppress(Exception):
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join(timeout=5)


def track(field: DirectionField, stopping_map: np.ndarray, seeds: np.ndarray, affine: np.ndarray, *,
          method: str = "deterministic", stopping_threshold: float = 0.2, max_angle_deg: float = 30.0,
          step_size_mm: float = 0.5, pmf_threshold: float = 0.1, min_length_mm: float = 10.0,
          max_length_mm: float = 250.0, n_processes: int = 1, seed: int = 0, batch_size: int | None = None,
          progress: Callable[[int, int], None] | None = None, max_steps: int = MAX_STEPS,
          max_memory_bytes: int = MAX_MEMORY_BYTES, start_method: str = "spawn",
          pool: TrackingPool | None = None) -> Tracking:
    """Track from ``seeds`` on ``field`` until ``stopping_map`` falls below ``stopping_threshold``.

    Parameters
    ----------
    field : DirectionField
        Orientations on the voxel grid of ``affine``.
    stopping_map : ndarray, shape (X, Y, Z)
        Usually FA (0 outside the brain).
    seeds : ndarray, shape (n, 3)
        Seed points, world mm.
    affine : ndarray, shape (4, 4)
        Voxel indices to world mm; no shear.
    method : {"deterministic", "probabilistic"}
    stopping_threshold : float
        Tracking stops where the interpolated ``stopping_map`` is below this.
    max_angle_deg : float
        Largest turn between consecutive steps, degrees (0, 90].
    step_size_mm : float
        Fixed step, mm.
    pmf_threshold : float
        Directions below this fraction of the pmf's maximum are never taken, in [0, 1).
    min_length_mm, max_length_mm : float
        Streamlines outside these lengths (mm) are dropped.
    n_processes : int
        Worker processes (1: track in the calling process).
    seed : int
        Random seed of the probabilistic tracker (see the module docstring).
    batch_size : int, optional
        Seeds per batch; default :func:`default_batch_size`. The streamlines depend on it (not
        on ``n_processes``).
    progress : callable, optional
        ``progress(done_seeds, total_seeds)`` once before the first batch and after each batch;
        raise from it to cancel.
    max_steps, max_memory_bytes : int
        Limits of :func:`check_tracking_size`.
    start_method : {"spawn", "forkserver"}
        How worker processes start (``fork`` is refused: unsafe in a threaded server).
    pool : TrackingPool, optional
        Workers started earlier (then ``n_processes`` is the pool's); terminated if tracking
        is cancelled or fails, left open otherwise. Default: a pool of ``n_processes`` for this call.

    Returns
    -------
    Tracking

    Raises
    ------
    ValueError
        For a bad argument or no seed; :class:`TrackingTooLargeError` above the limits.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
    if start_method not in ("spawn", "forkserver"):
        raise ValueError(f"start_method must be 'spawn' or 'forkserver', got {start_method!r}")
    stopping_threshold = _check_number("stopping_threshold", stopping_threshold, 0.0, 1.0, hi_open=True)
    max_angle_deg = _check_number("max_angle_deg", max_angle_deg, 0.0, 90.0, lo_open=True)
    step_size_mm = _check_number("step_size_mm", step_size_mm, 0.0, 100.0, lo_open=True)
    pmf_threshold = _check_number("pmf_threshold", pmf_threshold, 0.0, 1.0, hi_open=True)
    min_length_mm = _check_number("min_length_mm", min_length_mm, 0.0, 1e6)
    max_length_mm = _check_number("max_length_mm", max_length_mm, step_size_mm, 1e6)
    if max_length_mm < min_length_mm:
        raise ValueError(f"max_length_mm ({max_length_mm:g}) must be at least min_length_mm ({min_length_mm:g})")
    n_processes = pool.n_processes if pool is not None else _check_int("n_processes", n_processes, 1, 256)
    seed = _check_int("seed", seed, 0)
    affine = np.asarray(affine, dtype=np.float64)
    stopping = np.ascontiguousarray(stopping_map, dtype=np.float64)
    if stopping.shape != field.data.shape[:3]:
        raise ValueError(f"the stopping map has shape {stopping.shape} but the direction field {field.data.shape[:3]}")
    seeds = np.ascontiguousarray(seeds, dtype=np.float64)
    if seeds.ndim != 2 or seeds.shape[1] != 3:
        raise ValueError(f"seeds must be an (n, 3) array of points, got shape {seeds.shape}")
    n_seeds = seeds.shape[0]
    if n_seeds == 0:
        raise ValueError("no seeds to track from")
    if not np.all(np.isfinite(seeds)):
        raise ValueError("seeds must be finite")
    check_tracking_size(estimate_tracking(n_seeds, direction_bytes=field.nbytes, stopping_bytes=stopping.nbytes,
                                          step_size_mm=step_size_mm, max_length_mm=max_length_mm,
                                          n_processes=n_processes),
                        max_steps=max_steps, max_memory_bytes=max_memory_bytes)
    size = default_batch_size(n_seeds) if batch_size is None else _check_int("batch_size", batch_size, 1)
    starts = list(range(0, n_seeds, size))
    n_batches = len(starts)
    n_processes = n_processes if pool is not None else min(n_processes, n_batches)
    settings = _Settings(kind=field.kind, method=method, max_angle_deg=max_angle_deg, pmf_threshold=pmf_threshold,
                         stopping_threshold=stopping_threshold, step_size_mm=step_size_mm,
                         half_cap=_half_cap(step_size_mm, max_length_mm), min_length_mm=min_length_mm,
                         max_length_mm=max_length_mm, affine=affine, stopping=stopping)
    t0 = time.perf_counter()
    results: dict[int, tuple] = {}

    def report(done):
        if progress is not None:
            progress(done, n_seeds)

    report(0)
    if n_processes == 1:
        state = _build(settings, np.ascontiguousarray(field.data, dtype=np.float64))
        done = 0
        for b, start in enumerate(starts):
            batch = seeds[start:start + size]
            # the probabilistic getter draws from the process-wide C generator that dipy reseeds
            # per seed; two threads of this process tracking at once would interleave draws
            lock = _IN_PROCESS_LOCK if method == "probabilistic" else contextlib.nullcontext()
            with lock:
                results[b] = _run_batch(state, batch, _batch_random_seed(seed, b))
            done += len(batch)
            report(done)
    else:
        files = []
        try:
            path = field.path
            if path is None:       # write the data once for the workers to map
                path = _copy_to_file(field.data)
                files.append(path)
            stopping_path = _copy_to_file(stopping)
            files.append(stopping_path)
            job = _replace(settings, stopping=None, job=os.path.basename(stopping_path), path=path,
                           stopping_path=stopping_path)
            own_pool = pool is None
            active = TrackingPool(n_processes, start_method=start_method) if own_pool else pool
            try:
                futures = {active.submit(_worker_batch, job, b, seeds[start:start + size], _batch_random_seed(seed, b)):
                           min(size, n_seeds - start) for b, start in enumerate(starts)}
                done = 0
                for future in cf.as_completed(futures):
                    index, result = future.result()
                    results[index] = result
                    done += futures[future]
                    report(done)
            except BaseException as err:
                active.terminate()
                if isinstance(err, cf.process.BrokenProcessPool):
                    raise RuntimeError("a tracking worker process died (out of memory?)") from err
                raise
            if own_pool:
                active.close()
        finally:
            for name in files:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(name)
    points = [results[b][0] for b in range(n_batches)]
    counts = [results[b][1] for b in range(n_batches)]
    streamlines = _sequence(np.concatenate(points) if points else np.zeros((0, 3), np.float32),
                            np.concatenate(counts) if counts else np.zeros(0, np.intp))
    return Tracking(streamlines=streamlines, n_seeds=n_seeds, n_tracked=sum(r[2] for r in results.values()),
                    n_too_short=sum(r[3] for r in results.values()), n_too_long=sum(r[4] for r in results.values()),
                    batch_size=size, n_batches=n_batches, n_processes=n_processes,
                    seconds=time.perf_counter() - t0, cpu_seconds=sum(r[5] for r in results.values()))


def _replace(settings: _Settings, **changes) -> _Settings:
    from dataclasses import replace
    return replace(settings, **changes)


def _copy_to_file(data: np.ndarray) -> str:
    """Write ``data`` to a new ``.npy`` file for worker processes to map; its path."""
    array, path = _new_array(data.shape, shared=True)
    try:
        array[...] = data
        array.flush()
    except BaseException:
        os.unlink(path)
        raise
    return path


def _sequence(points: np.ndarray, counts: np.ndarray):
    """An ArraySequence over ``points`` split by ``counts``, without copying the points."""
    from nibabel.streamlines import ArraySequence
    seq = ArraySequence()
    counts = np.asarray(counts, dtype=np.intp)
    # nibabel's own loaders fill these three attributes the same way
    seq._data = np.ascontiguousarray(points, dtype=np.float32).reshape(-1, 3)
    seq._offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.intp) if counts.size else counts
    seq._lengths = counts
    return seq


# ================================================================================================
# files


def _trk_header(affine: np.ndarray, shape):
    from nibabel.orientations import aff2axcodes
    from nibabel.streamlines.trk import Field
    affine = np.asarray(affine, dtype=np.float64)
    return {Field.VOXEL_TO_RASMM: affine.astype(np.float32),
            Field.VOXEL_SIZES: np.sqrt(np.sum(affine[:3, :3] ** 2, axis=0)).astype(np.float32),
            Field.DIMENSIONS: np.asarray(shape[:3], dtype=np.int16),
            Field.VOXEL_ORDER: "".join(aff2axcodes(affine)).encode()}


def save_tractogram(streamlines, *, affine: np.ndarray, shape, format: str = "trk",
                    path: str | os.PathLike | None = None) -> bytes | None:
    """Write streamlines (world mm, RAS+) as TrackVis ``.trk`` or MRtrix ``.tck``.

    Parameters
    ----------
    streamlines : sequence of (n_i, 3) arrays or ArraySequence
    affine, shape :
        The reference volume (TRK stores its grid, voxel sizes and orientation; TCK ignores them).
    format : {"trk", "tck"}
    path : str or path-like, optional
        Write there and return None; default return the file's bytes.

    Examples
    --------
    >>> data = save_tractogram([np.array([[0.0, 0, 0], [1, 2, 3]])], affine=np.eye(4), shape=(4, 4, 4),
    ...                        format="tck")
    >>> load_tractogram(data)[0].tolist()
    [[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]]
    """
    from nibabel.streamlines import Tractogram
    from nibabel.streamlines.tck import TckFile
    from nibabel.streamlines.trk import TrkFile
    if format not in ("trk", "tck"):
        raise ValueError(f"format must be 'trk' or 'tck', got {format!r}")
    seq = as_streamlines(streamlines)
    tractogram = Tractogram(seq, affine_to_rasmm=np.eye(4))
    file = TrkFile(tractogram, header=_trk_header(affine, shape)) if format == "trk" else TckFile(tractogram)
    if path is not None:
        file.save(os.fspath(path))
        return None
    buffer = io.BytesIO()
    file.save(buffer)
    return buffer.getvalue()


def load_tractogram(source, *, name: str | None = None):
    """Read a ``.trk`` or ``.tck`` file (bytes or a path); streamlines in world mm (RAS+), float32.

    Raises
    ------
    ValueError
        Naming the file, if it is neither format or is damaged.
    """
    from nibabel.streamlines import detect_format
    label = name or (os.fspath(source) if isinstance(source, (str, os.PathLike)) else "<bytes>")
    if isinstance(source, (bytes, bytearray, memoryview)):
        fileobj = io.BytesIO(bytes(source))
    else:
        try:
            fileobj = io.BytesIO(Path(source).read_bytes())
        except OSError as err:
            raise ValueError(f"{label}: cannot be read ({err.strerror or err})") from None
    cls = detect_format(fileobj)
    fileobj.seek(0)
    if cls is None:
        raise ValueError(f"{label} is neither a TrackVis .trk nor an MRtrix .tck file")
    try:
        return cls.load(fileobj, lazy_load=False).streamlines
    except Exception as err:  # nibabel raises several types on damaged files
        raise ValueError(f"{label}: damaged {cls.__name__[:3].lower()} file ({err})") from None
