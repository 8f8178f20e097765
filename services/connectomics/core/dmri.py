"""The diffusion-MRI connectome pipeline: DWI in, tractogram and region x region matrices out.

:func:`dmri_connectome` runs, in order:

1. **checks** of every input (:mod:`.diffusion`; a ``ValueError`` names the problem);
2. **brain mask**: the given one, else dipy's ``median_otsu`` on the b = 0 volumes;
3. **DTI** (weighted least squares) in the mask: FA (the stopping map, 0 outside the mask) and
   MD (mm^2/s);
4. **seeds**: ``seeds_per_voxel`` uniformly random points in each voxel of the seed mask (default
   the white-matter-like voxels of the brain, FA > ``seed_fa_threshold``, which defaults to
   ``fa_threshold``), and the size guard (:func:`.tractography.check_tracking_size`);
5. **model** on the voxels tracking can reach (:func:`.diffusion.tracking_support`: FA at or above
   ``fa_threshold`` and the seed voxels, grown by one voxel), which gives the same streamlines as a
   whole-brain fit in a fraction of the time: ``"csd"`` (fODF, response from the data), ``"csa"``
   (q-ball ODF with its isotropic minimum removed) or ``"dti"`` (the tensor ODF, minimum removed);
6. **tracking** (:func:`.tractography.track`), parallel over batches of seeds, results
   independent of ``n_processes``; length filter. With ``n_processes > 1`` the worker processes
   are started before step 5, so that their start-up (importing dipy) overlaps the model fit;
   they are stopped however the call ends (cancelled from ``progress``, an error, or done);
7. **connectivity** (:func:`.connectivity.connectivity_matrices`): ``count``, ``volume``
   (by sqrt of the two regions' volumes in mm^3) and ``length`` (each streamline weighted by
   1/length in mm) matrices, plus the mean length of each pair's streamlines.

``pmf_threshold`` defaults by model: 0.1 for CSD (dipy's default; the fODF is sharp already) and
0.5 for CSA and DTI, whose ODFs are broad: drawing directions from all of such a lobe is a random
walk that leaves a bundle within a few centimetres (on the phantom, CSA at 0.1 ended ~75 % of the
streamlines in background against ~35 % at 0.5).

Example
-------
>>> from services.connectomics.core.phantom import diffusion_phantom
>>> ph = diffusion_phantom(size=16, n_directions=45, seed=1)
>>> result = dmri_connectome(ph.dwi, ph.bvals, ph.bvecs, ph.affine, ph.parcellation, mask=ph.mask,
...                          model="csa", min_length_mm=5)
>>> result.labels.tolist()
[1, 2, 3, 4, 5, 6, 7]
>>> count = result.matrices["count"]
>>> bool(count[0, 1] > 20 and count[2, 3] > 20 and count[4, 5] > 20), int(count[6].sum())   # 1-2, 3-4, 5-6; decoy 7
(True, 0)
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import diffusion, tractography
from .connectivity import NORMALISATIONS, connectivity_matrices

__all__ = ["DmriConnectome", "dmri_connectome", "MODELS", "TRACKING"]

MODELS = ("csd", "csa", "dti")
TRACKING = tractography.METHODS
_PMF_THRESHOLD = {"csd": 0.1, "csa": 0.5, "dti": 0.5}
_DTI_SH_ORDER = 8


@dataclass(frozen=True)
class DmriConnectome:
    """Everything :func:`dmri_connectome` computed. Volumes are ``(X, Y, Z)`` on the DWI's grid."""

    fa: np.ndarray
    """Fractional anisotropy, float32 in [0, 1], 0 outside ``mask``."""
    md: np.ndarray
    """Mean diffusivity, float32, mm^2/s, 0 outside ``mask``."""
    mask: np.ndarray
    """Brain mask used (bool)."""
    seed_mask: np.ndarray
    """Voxels seeded (bool)."""
    streamlines: object
    """Kept streamlines: nibabel ``ArraySequence`` of float32 ``(n_i, 3)`` points, world mm (RAS+)."""
    labels: np.ndarray
    """Region labels in matrix order (sorted, background 0 excluded), int64 ``(K,)``."""
    matrices: dict
    """``"count"`` (int64), ``"volume"`` (streamlines / mm^3), ``"length"`` (sum of 1/length, mm^-1): ``(K, K)``."""
    mean_length_mm: np.ndarray
    """Mean length of each pair's streamlines (mm), 0 where none, ``(K, K)``."""
    region_volumes_voxels: np.ndarray
    """Voxels per region, ``(K,)``."""
    region_volumes_mm3: np.ndarray
    """mm^3 per region, ``(K,)`` (the ``volume`` normalisation uses these)."""
    n_seeds: int
    n_tracked: int
    """Streamlines the tracker produced, before the length filter."""
    n_kept: int
    """Streamlines within the length limits (``len(streamlines)``)."""
    n_too_short: int
    n_too_long: int
    n_connecting: int
    """Kept streamlines with both ends in a region (what the matrices count)."""
    n_unassigned: int
    """Kept streamlines with an end in the background or outside the volume."""
    affine: np.ndarray
    """Voxel indices to world mm (RAS+), ``(4, 4)``."""
    shape: tuple
    """Spatial shape ``(X, Y, Z)``."""
    model: str
    tracking: str
    sh_order_max: int | None
    """SH order of the CSD/CSA model (None for DTI, whose ODF is used directly or at order 8)."""
    response: tuple | None
    """CSD response ``((l1, l2, l3) mm^2/s, S0)``; None for the other models."""
    representation: str
    """``"pmf"`` (precomputed on the sphere) or ``"sh"`` (coefficients evaluated while tracking)."""
    n_processes: int
    """Processes that tracked."""
    batch_size: int
    parameters: dict = field(default_factory=dict)
    """Every setting used (after defaults), for provenance."""
    seconds: dict = field(default_factory=dict)
    """Wall time of each stage: ``mask``, ``dti``, ``model``, ``tracking``, ``connectivity``; and
    ``tracking_cpu``, the CPU time of the tracking summed over its processes."""

    def save_streamlines(self, *, format: str = "trk", path=None) -> bytes | None:
        """The streamlines as TRK or TCK bytes (or written to ``path``); see :func:`.tractography.save_tractogram`."""
        return tractography.save_tractogram(self.streamlines, affine=self.affine, shape=self.shape, format=format,
                                            path=path)


def _check_shear(affine):
    lin = affine[:3, :3]
    gram = lin.T @ lin
    # dipy's LocalTracking steps on a regular grid and refuses sheared affines; say it first
    if not np.allclose(np.triu(gram, 1), 0.0, atol=1e-5 * max(1.0, float(np.abs(gram).max()))):
        raise ValueError("the affine has shear: tracking needs a rectilinear voxel grid (resample the DWI first)")


def dmri_connectome(dwi, bvals, bvecs, affine, parcellation, *, mask=None, seed_mask=None, model: str = "csd",
                    tracking: str = "deterministic", seeds_per_voxel: int = 1, step_size_mm: float = 0.5,
                    max_angle_deg: float = 30.0, fa_threshold: float = 0.2, seed_fa_threshold: float | None = None,
                    pmf_threshold: float | None = None, sh_order_max: int | None = None, min_length_mm: float = 10.0,
                    max_length_mm: float = 250.0, n_processes: int = 1, seed: int = 0,
                    progress: Callable[[int, int], None] | None = None,
                    b0_threshold: float = diffusion.B0_THRESHOLD, representation: str = "auto",
                    pmf_memory_limit: int = tractography.PMF_MEMORY_LIMIT, batch_size: int | None = None,
                    max_steps: int = tractography.MAX_STEPS, max_memory_bytes: int = tractography.MAX_MEMORY_BYTES,
                    start_method: str = "spawn", shard: tuple[int, int] | None = None) -> DmriConnectome:
    """Structural connectome of a diffusion-weighted image over a parcellation (see the module docstring).

    Parameters
    ----------
    dwi : array, shape (X, Y, Z, N)
        Diffusion-weighted volumes.
    bvals : array, shape (N,)
        b-values, s/mm^2.
    bvecs : array, shape (N, 3) or (3, N)
        Unit gradient directions (voxel axes, FSL convention) where b > ``b0_threshold``.
    affine : array, shape (4, 4)
        Voxel indices to world mm (RAS+); no shear.
    parcellation : array of int, shape (X, Y, Z)
        Region labels on the DWI's grid, 0 for background.
    mask : array of bool, optional
        Brain mask; default ``median_otsu`` of the b = 0 volumes.
    seed_mask : array of bool, optional
        Voxels to seed in (within the brain mask); default brain voxels with FA > ``seed_fa_threshold``.
    model : {"csd", "csa", "dti"}
    tracking : {"deterministic", "probabilistic"}
    seeds_per_voxel : int
    step_size_mm, max_angle_deg, fa_threshold :
        Tracking step (mm), largest turn per step (degrees), FA below which streamlines stop.
    seed_fa_threshold : float, optional
        Default ``fa_threshold``.
    pmf_threshold : float, optional
        Default by model (see the module docstring).
    sh_order_max : int, optional
        CSD/CSA order; default the largest even order <= 8 the gradient table supports.
    min_length_mm, max_length_mm : float
        Length filter of the streamlines, mm.
    n_processes : int
        Tracking processes; the streamlines do not depend on it.
    seed : int
        Seeds the seed positions and the probabilistic tracker.
    progress : callable, optional
        ``progress(done_seeds, total_seeds)`` during tracking (first call ``(0, total)``); raise to cancel.
    b0_threshold, representation, pmf_memory_limit, batch_size, max_steps, max_memory_bytes, start_method :
        See :mod:`.diffusion` and :func:`.tractography.track`.
    shard : (index, count), optional
        Track only seeds ``index, index + count, ...`` of the seeds drawn: ``count`` calls (on as many
        replicas) with ``index`` 0 .. count - 1 share the seeds out, and with deterministic tracking
        their count matrices sum to the unsharded one exactly.

    Returns
    -------
    DmriConnectome

    Raises
    ------
    ValueError
        Naming a bad input or setting; :class:`.tractography.TrackingTooLargeError` above the limits
        (checked before the model is fitted).
    """
    if model not in MODELS:
        raise ValueError(f"model must be one of {list(MODELS)}, got {model!r}")
    if tracking not in TRACKING:
        raise ValueError(f"tracking must be one of {list(TRACKING)}, got {tracking!r}")
    fa_threshold = tractography._check_number("fa_threshold", fa_threshold, 0.0, 1.0, hi_open=True)
    seed_fa = fa_threshold if seed_fa_threshold is None else tractography._check_number(
        "seed_fa_threshold", seed_fa_threshold, 0.0, 1.0, hi_open=True)
    pmf_threshold = _PMF_THRESHOLD[model] if pmf_threshold is None else pmf_threshold
    # the tracker checks these again; checking now fails a bad request before any fitting
    tractography._check_number("step_size_mm", step_size_mm, 0.0, 100.0, lo_open=True)
    tractography._check_number("max_angle_deg", max_angle_deg, 0.0, 90.0, lo_open=True)
    tractography._check_number("pmf_threshold", pmf_threshold, 0.0, 1.0, hi_open=True)
    tractography._check_number("min_length_mm", min_length_mm, 0.0, 1e6)
    tractography._check_number("max_length_mm", max_length_mm, float(step_size_mm), 1e6)
    if max_length_mm < min_length_mm:
        raise ValueError(f"max_length_mm ({max_length_mm:g}) must be at least min_length_mm ({min_length_mm:g})")
    n_processes = tractography._check_int("n_processes", n_processes, 1, 256)
    seeds_per_voxel = tractography._check_int("seeds_per_voxel", seeds_per_voxel, 1, 10_000)
    seed = tractography._check_int("seed", seed, 0)
    if sh_order_max is not None:
        diffusion._check_order(sh_order_max)

    mask_given, seed_mask_given = mask is not None, seed_mask is not None
    seconds = {}
    t = time.perf_counter()
    dwi, bvals, bvecs = diffusion.check_dwi(dwi, bvals, bvecs, b0_threshold=b0_threshold)
    affine = diffusion.check_affine(affine)
    _check_shear(affine)
    shape = dwi.shape[:3]
    labels_volume = diffusion.check_parcellation(parcellation, shape)
    gtab = diffusion.make_gradient_table(bvals, bvecs, b0_threshold=b0_threshold)
    order = None
    if model in ("csd", "csa"):
        order = diffusion.default_sh_order(gtab) if sh_order_max is None else int(sh_order_max)
    if mask is None:
        mask = diffusion.brain_mask(dwi, gtab)
    else:
        mask = diffusion.check_mask(mask, shape)
    seconds["mask"] = time.perf_counter() - t

    t = time.perf_counter()
    dti = diffusion.fit_dti(dwi, gtab, mask=mask)
    seconds["dti"] = time.perf_counter() - t

    fa = dti.fa.astype(np.float64)
    if seed_mask is None:
        seeding = mask & (fa > seed_fa)
        if not seeding.any():
            raise ValueError(f"no seeds: no voxel of the brain mask has FA > {seed_fa:g} (max FA "
                             f"{float(fa.max()):.2f}); lower seed_fa_threshold or pass a seed_mask")
    else:
        seeding = diffusion.check_mask(seed_mask, shape, name="seed mask") & mask
        if not seeding.any():
            raise ValueError("no seeds: the seed mask does not overlap the brain mask")
    seeds = tractography.seeds_from_mask(seeding, affine, seeds_per_voxel=seeds_per_voxel, seed=seed)
    if shard is not None:
        index = tractography._check_int("shard index", shard[0], 0)
        count = tractography._check_int("shard count", shard[1], 1)
        if index >= count:
            raise ValueError(f"shard index {index} must be below the shard count {count}")
        if index >= len(seeds):
            raise ValueError(f"shard {index} of {count} holds no seed ({len(seeds)} seeds in all): use fewer shards")
        seeds = seeds[index::count]
    n_sh = (order + 1) * (order + 2) // 2 if order else (_DTI_SH_ORDER + 1) * (_DTI_SH_ORDER + 2) // 2
    kind = tractography._choose(representation, shape, pmf_memory_limit)
    width = len(tractography._sphere().vertices) if kind == "pmf" else n_sh
    stopping = fa * mask
    tractography.check_tracking_size(
        tractography.estimate_tracking(len(seeds), direction_bytes=int(np.prod(shape)) * width * 8,
                                       stopping_bytes=stopping.nbytes, step_size_mm=step_size_mm,
                                       max_length_mm=max_length_mm, n_processes=n_processes),
        max_steps=max_steps, max_memory_bytes=max_memory_bytes)

    # with several processes the workers start now, importing dipy while the model is fitted;
    # the pool is closed when tracking is done, terminated if anything fails before
    n_batches = -(-len(seeds) // (batch_size or tractography.default_batch_size(len(seeds))))
    workers = min(n_processes, n_batches)
    pool = tractography.TrackingPool(workers, start_method=start_method) if workers > 1 else None
    with pool if pool is not None else contextlib.nullcontext():
        t = time.perf_counter()
        support = diffusion.tracking_support((stopping >= fa_threshold) | seeding, mask)
        directions, response = _direction_field(model, dwi, gtab, dti, support=support, brain=mask, order=order,
                                                representation=kind, shared=pool is not None)
        seconds["model"] = time.perf_counter() - t
        try:
            t = time.perf_counter()
            result = tractography.track(directions, stopping, seeds, affine, method=tracking,
                                        stopping_threshold=fa_threshold, max_angle_deg=max_angle_deg,
                                        step_size_mm=step_size_mm, pmf_threshold=pmf_threshold,
                                        min_length_mm=min_length_mm, max_length_mm=max_length_mm,
                                        n_processes=n_processes, seed=seed, batch_size=batch_size, progress=progress,
                                        max_steps=max_steps, max_memory_bytes=max_memory_bytes,
                                        start_method=start_method, pool=pool)
            seconds["tracking"] = time.perf_counter() - t
            seconds["tracking_cpu"] = result.cpu_seconds
        finally:
            directions.close()

    t = time.perf_counter()
    conn = connectivity_matrices(result.streamlines, affine, labels_volume, normalisations=NORMALISATIONS)
    seconds["connectivity"] = time.perf_counter() - t
    parameters = dict(model=model, tracking=tracking, seeds_per_voxel=seeds_per_voxel, step_size_mm=float(step_size_mm),
                      max_angle_deg=float(max_angle_deg), fa_threshold=fa_threshold, seed_fa_threshold=seed_fa,
                      pmf_threshold=float(pmf_threshold), sh_order_max=order, min_length_mm=float(min_length_mm),
                      max_length_mm=float(max_length_mm), n_processes=n_processes, seed=seed,
                      b0_threshold=float(b0_threshold), representation=kind, batch_size=result.batch_size,
                      mask_given=mask_given, seed_mask_given=seed_mask_given, shard=shard)
    return DmriConnectome(
        fa=dti.fa, md=dti.md, mask=mask, seed_mask=seeding, streamlines=result.streamlines, labels=conn.labels,
        matrices=conn.matrices, mean_length_mm=conn.mean_length_mm, region_volumes_voxels=conn.region_volumes_voxels,
        region_volumes_mm3=conn.region_volumes_mm3, n_seeds=result.n_seeds, n_tracked=result.n_tracked,
        n_kept=len(result.streamlines), n_too_short=result.n_too_short, n_too_long=result.n_too_long,
        n_connecting=conn.n_used, n_unassigned=conn.n_unassigned, affine=affine, shape=tuple(int(s) for s in shape),
        model=model, tracking=tracking, sh_order_max=order, response=response, representation=kind,
        n_processes=result.n_processes, batch_size=result.batch_size, parameters=parameters, seconds=seconds)


def _direction_field(model, dwi, gtab, dti, *, support, brain, order, representation, shared):
    """Step 5: the model fitted on ``support`` as a direction field; and the CSD response (else None)."""
    if model == "dti":
        return tractography.direction_field_from_tensor(dti.fit.evals, dti.fit.evecs, mask=support,
                                                        sh_order_max=_DTI_SH_ORDER, representation=representation,
                                                        shared=shared), None
    if model == "csd":
        sh = diffusion.fit_csd(dwi, gtab, mask=support, fa=dti.fa, response_mask=brain, sh_order_max=order)
    else:
        sh = diffusion.fit_csa(dwi, gtab, mask=support, sh_order_max=order)
    return tractography.direction_field_from_sh(sh.shcoeff, mask=support, subtract_minimum=model == "csa",
                                                representation=representation, shared=shared), sh.response
