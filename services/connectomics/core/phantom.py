"""A synthetic diffusion-MRI phantom with known fibre bundles and known connections.

The phantom is a cube of ``size`` voxels per side (``voxel_size_mm`` mm, isotropic). Voxel
``(i, j, k)`` lies at world position ``affine @ (i, j, k, 1)`` in mm, RAS+ as nibabel reads
it (axis ``i`` points to the Right, ``j`` Anterior, ``k`` Superior) with the centre of the grid at
the origin. The model:

* **Air** in a ``margin``-voxel shell at the faces: no signal, only noise; outside ``mask``.
* **Grey-matter-like tissue** fills the rest (the brain ``mask``): an isotropic tensor of
  diffusivity ``0.8e-3 mm^2/s`` (FA 0).
* **Straight fibre bundles**, tubes of radius ``bundle_radius`` voxels whose fibres are
  single tensors of eigenvalues ``(1.7, 0.3, 0.3) x 1e-3 mm^2/s`` (FA 0.80) along the tube:

  - bundle 1 along ``i`` through the centre, joining region 1 (its left end) to region 2
    (its right end);
  - bundle 2 along ``j`` through the centre, **crossing bundle 1 at 90 degrees**, joining
    region 3 (posterior end) to region 4 (anterior end);
  - bundle 3 (``n_bundles=3``) along ``k``, offset from the other two so that it touches neither,
    joining region 5 (inferior end) to region 6 (superior end).

  Each bundle stops one voxel inside the brain; its end regions are blocks of ``region_depth``
  voxels at the faces of the brain around the bundle's ends, a voxel wider than the tube. A last
  region (7, or 5 with two bundles) is a decoy block of grey matter that no bundle reaches.
* **Partial volume**: the fibre fraction of a voxel falls linearly from 1 to 0 over the voxel
  that straddles the tube's surface (and its ends); where two bundles overlap their fractions are
  scaled to sum to at most 1; the rest of the voxel is grey matter.
* **Signal**: dipy's multi-tensor model (:func:`dipy.sims.voxel.multi_tensor`) is a sum of
  single-tensor signals weighted by volume fractions, so the signal of each compartment
  (grey matter, each bundle's fibres) is simulated once with it and mixed voxel by voxel with the
  fractions above, which gives exactly ``multi_tensor`` of those fractions. ``S0 = 100``.
* **Noise**: Rician, ``sqrt((S + s n1)^2 + (s n2)^2)`` with ``n1, n2 ~ N(0, 1)`` and
  ``s = S0 / snr``, drawn from ``numpy.random.default_rng(seed)``.
* **Gradient table**: one b = 0 volume then ``n_directions`` unit vectors spread over the
  sphere by electrostatic repulsion (:func:`dipy.core.gradients.generate_bvecs`, seeded) at
  ``bval`` s/mm^2.

The same arguments give the same phantom.

Example
-------
>>> ph = diffusion_phantom(size=16, n_directions=20, seed=0)
>>> ph.dwi.shape, ph.dwi.dtype, ph.bvals.shape, ph.bvecs.shape
((16, 16, 16, 21), dtype('float32'), (21,), (21, 3))
>>> sorted(ph.connected_pairs)
[(1, 2), (3, 4), (5, 6)]
>>> sorted(int(v) for v in np.unique(ph.parcellation))
[0, 1, 2, 3, 4, 5, 6, 7]
>>> ph.affine[:3, :3].diagonal().tolist(), ph.affine[:3, 3].tolist()    # centre at the origin
([2.0, 2.0, 2.0], [-15.0, -15.0, -15.0])
"""

from __future__ import annotations

import functools
import numbers
from dataclasses import dataclass

import numpy as np

__all__ = ["DiffusionPhantom", "PhantomBundle", "diffusion_phantom", "FIBRE_EVALS", "GREY_EVALS", "S0"]

FIBRE_EVALS = (1.7e-3, 0.3e-3, 0.3e-3)
"""Eigenvalues (mm^2/s) of the fibre compartment; its first eigenvector runs along the bundle."""
GREY_EVALS = (0.8e-3, 0.8e-3, 0.8e-3)
"""Eigenvalues (mm^2/s) of the isotropic grey-matter-like compartment."""
S0 = 100.0
"""Signal without diffusion weighting, in arbitrary units."""

_MAX_SIZE = 160          # 160^3 x 61 volumes of float32 is ~1 GB: larger is a mistake, not a phantom


@dataclass(frozen=True)
class PhantomBundle:
    """One straight bundle of the phantom; positions in voxel indices ``(i, j, k)``."""

    start: tuple[float, float, float]
    """Centre of the tube at its first end (voxel indices)."""
    end: tuple[float, float, float]
    """Centre of the tube at its other end (voxel indices)."""
    radius: float
    """Tube radius in voxels."""
    regions: tuple[int, int]
    """Labels of the regions at ``start`` and ``end``."""
    direction: tuple[float, float, float]
    """Unit vector from ``start`` to ``end`` in voxel axes (equal to world axes here, the affine being diagonal)."""


@dataclass(frozen=True)
class DiffusionPhantom:
    """A simulated acquisition and its ground truth (see :func:`diffusion_phantom`)."""

    dwi: np.ndarray
    """Diffusion-weighted images, float32, shape ``(X, Y, Z, N)``: one volume per gradient."""
    bvals: np.ndarray
    """b-values in s/mm^2, shape ``(N,)``; the first is 0."""
    bvecs: np.ndarray
    """Unit gradient directions, shape ``(N, 3)``, in the voxel axes (here equal to RAS+); zero rows where b = 0."""
    affine: np.ndarray
    """Voxel indices to world coordinates in mm (RAS+), shape ``(4, 4)``."""
    mask: np.ndarray
    """Brain (everything but the air shell), bool, shape ``(X, Y, Z)``."""
    parcellation: np.ndarray
    """Region of every voxel, int32, shape ``(X, Y, Z)``; 0 is background."""
    connected_pairs: frozenset
    """Ground truth: the pairs ``(a, b)``, ``a < b``, of region labels that a bundle joins."""
    bundles: tuple
    """The :class:`PhantomBundle` of each bundle."""
    fibre_fraction: np.ndarray
    """Volume fraction of each bundle's fibres in every voxel, float32, shape ``(X, Y, Z, n_bundles)``."""
    snr: float | None
    """``S0`` over the noise's standard deviation (None: no noise)."""


def _check_int(name, value, minimum, maximum=None):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        raise ValueError(f"{name} must be in [{minimum}, {maximum if maximum is not None else 'inf'}], got {value}")
    return int(value)


@functools.lru_cache(maxsize=8)
def _directions(n: int, seed: int) -> np.ndarray:
    # the repulsion takes ~1 s for 45 directions; phantoms of the same table share it
    from dipy.core.gradients import generate_bvecs
    vecs = generate_bvecs(n, iters=5000, rng=np.random.default_rng(seed))
    vecs = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
    vecs.setflags(write=False)
    return vecs


def _tube_fraction(grid: np.ndarray, start: np.ndarray, end: np.ndarray, radius: float) -> np.ndarray:
    """Fraction of each voxel inside a tube, by a linear ramp over the voxel straddling its surface.

    ``grid`` is ``(X, Y, Z, 3)`` voxel centres. The fraction is ``clip(radius + 0.5 - d, 0, 1)`` of
    the distance ``d`` to the axis, times the same ramp along the axis beyond either end (a
    one-voxel-wide edge is what a voxel of that size would average).
    """
    axis = end - start
    length = float(np.linalg.norm(axis))
    unit = axis / length
    rel = grid - start
    t = rel @ unit                                   # position along the axis, voxels from start
    radial = np.linalg.norm(rel - t[..., None] * unit, axis=-1)
    across = np.clip(radius + 0.5 - radial, 0.0, 1.0)
    along = np.clip(np.minimum(t, length - t) + 0.5, 0.0, 1.0)
    return across * along


def diffusion_phantom(*, size: int = 24, voxel_size_mm: float = 2.0, n_bundles: int = 3,
                      bundle_radius: float | None = None, margin: int = 2, region_depth: int = 3,
                      bval: float = 2000.0, n_directions: int = 45, snr: float | None = 30.0,
                      seed: int = 0) -> DiffusionPhantom:
    """Simulate the phantom described in the module docstring.

    Parameters
    ----------
    size : int
        Voxels per side (12 to 160).
    voxel_size_mm : float
        Isotropic voxel size in mm.
    n_bundles : {2, 3}
        Two crossing bundles, or those plus a third that touches neither.
    bundle_radius : float, optional
        Tube radius in voxels; default ``max(1.5, size / 12)``.
    margin : int
        Thickness in voxels of the air shell outside the brain mask.
    region_depth : int
        Thickness in voxels of each end region, from the face of the brain inwards.
    bval : float
        b-value of the diffusion-weighted volumes, s/mm^2.
    n_directions : int
        Diffusion-weighted volumes (after one b = 0 volume).
    snr : float or None
        ``S0`` over the Rician noise's sigma; None for noise-free signal.
    seed : int
        Seeds the noise and the spreading of the gradient directions.

    Returns
    -------
    DiffusionPhantom
        Data and ground truth; ``dwi`` of shape ``(size, size, size, n_directions + 1)``.

    Raises
    ------
    ValueError
        If an argument is out of range, or the bundles do not fit in the grid.
    """
    from dipy.core.gradients import gradient_table
    from dipy.sims.voxel import multi_tensor

    size = _check_int("size", size, 12, _MAX_SIZE)
    n_bundles = _check_int("n_bundles", n_bundles, 2, 3)
    margin = _check_int("margin", margin, 0)
    region_depth = _check_int("region_depth", region_depth, 1)
    n_directions = _check_int("n_directions", n_directions, 6, 300)
    seed = _check_int("seed", seed, 0)
    if not (np.isfinite(voxel_size_mm) and voxel_size_mm > 0):
        raise ValueError(f"voxel_size_mm must be a positive number, got {voxel_size_mm!r}")
    if not (np.isfinite(bval) and bval > 0):
        raise ValueError(f"bval must be a positive number of s/mm^2, got {bval!r}")
    if snr is not None and not (np.isfinite(snr) and snr > 0):
        raise ValueError(f"snr must be positive or None, got {snr!r}")
    radius = float(max(1.5, size / 12) if bundle_radius is None else bundle_radius)
    if not radius > 0:
        raise ValueError(f"bundle_radius must be positive, got {bundle_radius!r}")

    c = (size - 1) / 2.0                       # grid centre, voxel index
    lo, hi = margin, size - 1 - margin           # first and last brain voxel along each axis
    offset = 2.5 * radius                        # bundle 3 clears bundles 1 and 2 by half a radius
    reach = offset + radius                      # farthest a tube goes from the centre
    if hi - lo < 2 * region_depth + 4 or c + reach > hi or c - reach < lo:
        raise ValueError(f"the bundles (radius {radius:g} voxels) and regions do not fit in a grid of {size} voxels "
                         f"with a margin of {margin}: make size larger or bundle_radius smaller")

    # bundle ends: one voxel inside the brain, so a streamline's end lies in the end region
    ends = [((lo + 1, c, c), (hi - 1, c, c)), ((c, lo + 1, c), (c, hi - 1, c)),
            ((c + offset, c + offset, lo + 1), (c + offset, c + offset, hi - 1))][:n_bundles]
    grid = np.stack(np.meshgrid(*(np.arange(size, dtype=np.float64),) * 3, indexing="ij"), axis=-1)
    bundles, fractions = [], []
    for b, (start, end) in enumerate(ends):
        start, end = np.asarray(start, float), np.asarray(end, float)
        unit = (end - start) / np.linalg.norm(end - start)
        bundles.append(PhantomBundle(start=tuple(start.tolist()), end=tuple(end.tolist()), radius=radius,
                                     regions=(2 * b + 1, 2 * b + 2), direction=tuple(unit.tolist())))
        fractions.append(_tube_fraction(grid, start, end, radius))
    fibre = np.stack(fractions, axis=-1)
    total = fibre.sum(axis=-1, keepdims=True)
    fibre = np.where(total > 1.0, fibre / np.maximum(total, 1e-12), fibre)   # overlaps share the voxel

    mask = np.zeros((size,) * 3, dtype=bool)
    mask[lo:hi + 1, lo:hi + 1, lo:hi + 1] = True
    fibre *= mask[..., None]

    # end regions: blocks at the faces of the brain, a voxel wider than the tube on each side
    parcellation = np.zeros((size,) * 3, dtype=np.int32)
    half = radius + 1.0
    for bundle in bundles:
        axis = int(np.argmax(np.abs(bundle.direction)))
        for label, point, face in ((bundle.regions[0], bundle.start, lo), (bundle.regions[1], bundle.end, hi)):
            block = [slice(int(np.ceil(p - half)), int(np.floor(p + half)) + 1) for p in point]
            block[axis] = slice(face, face + region_depth) if face == lo else slice(face - region_depth + 1, face + 1)
            parcellation[tuple(block)] = label
    # decoy: a block of grey matter in the octant opposite bundle 3, clear of every tube; it
    # never takes a voxel from an end region
    decoy = 2 * n_bundles + 1
    d = (slice(int(np.ceil(c - offset - radius)), int(np.floor(c - offset + radius)) + 1),) * 3
    parcellation[d] = np.where(parcellation[d] == 0, decoy, parcellation[d])
    parcellation *= mask

    vecs = _directions(n_directions, seed)
    bvals = np.concatenate([[0.0], np.full(n_directions, float(bval))])
    bvecs = np.concatenate([np.zeros((1, 3)), vecs])
    gtab = gradient_table(bvals, bvecs=bvecs)
    # compartment signals, each with multi_tensor (a single compartment of fraction 100 %)
    grey, _ = multi_tensor(gtab, np.array([GREY_EVALS]), S0=S0, angles=[(0.0, 0.0)], fractions=[100], snr=None)
    fibre_signals = []
    for bundle in bundles:
        x, y, z = bundle.direction
        theta, phi = np.degrees(np.arccos(np.clip(z, -1, 1))), np.degrees(np.arctan2(y, x))
        s, _ = multi_tensor(gtab, np.array([FIBRE_EVALS]), S0=S0, angles=[(theta, phi)], fractions=[100], snr=None)
        fibre_signals.append(s)
    grey_fraction = mask - fibre.sum(axis=-1)
    signal = grey_fraction[..., None] * grey + np.tensordot(fibre, np.stack(fibre_signals), axes=(-1, 0))
    if snr is not None:
        rng = np.random.default_rng(seed)
        sigma = S0 / snr
        noise = rng.standard_normal((2,) + signal.shape) * sigma
        signal = np.sqrt((signal + noise[0]) ** 2 + noise[1] ** 2)

    affine = np.diag([voxel_size_mm] * 3 + [1.0])
    affine[:3, 3] = -c * voxel_size_mm
    pairs = frozenset(tuple(sorted(bundle.regions)) for bundle in bundles)
    return DiffusionPhantom(dwi=signal.astype(np.float32), bvals=bvals, bvecs=bvecs, affine=affine, mask=mask,
                            parcellation=parcellation, connected_pairs=pairs, bundles=tuple(bundles),
                            fibre_fraction=fibre.astype(np.float32), snr=None if snr is None else float(snr))
