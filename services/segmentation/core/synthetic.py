"""Synthetic EM volumes with known neurons, and the targets a boundary predictor learns from them.

Axes are always ``(z, y, x)``. The model of :func:`synthetic_em_volume`:

* **Neurites** are tubes around random smooth 3-D curves: a straight line through a random point
  of the volume in a random direction, bent by two low-frequency sine waves perpendicular to it,
  sampled every 0.75 voxel. Each curve has a radius that varies smoothly along it, in
  ``radius_range``.
* **Every voxel belongs to a neurite** (EM neuropil is densely packed): a voxel goes to the tube
  whose surface is nearest, ``argmin_k (distance to curve k - radius of k at the closest point)``,
  an additively weighted Voronoi partition, so thick neurites claim more space.
* **Clean-up** makes the labels what a boundary map can describe exactly: no part of a neuron is
  thinner than three voxels (every voxel lies in the 3x3x3 neighbourhood of a voxel whose whole
  neighbourhood has its label). Thin slivers go to the nearest neuron that is thick there; the
  few that stay thin whoever gets them (wedges where interfaces meet at a shallow angle, about
  1-2 % of the voxels) become **extracellular space**, label 0, dark in the image, ignored by
  the scores (as the unlabelled voxels of CREMI's ground truth); ``extracellular=False`` leaves
  them in the nearest neuron so that every voxel has a neuron. Every label is then one
  6-connected piece, pieces smaller than ``min_size`` voxels join the neighbour they touch most,
  and labels are numbered ``1 .. n``.
* **Image**: cytoplasm bright (a grey level per neurite around 0.7 with faint texture), membranes
  dark (0.15) where a voxel is within ``membrane_width / 2`` voxels of a label interface (at least
  one voxel on each side), then a Gaussian blur (``blur_sigma``, per axis for anisotropic data) and
  Gaussian noise (``noise_std``), clipped to [0, 1].

The same ``seed`` gives the same volume. :func:`boundary_map_from_labels` and
:func:`affinities_from_labels` give the perfect boundary map and affinities of a label volume.

Example
-------
>>> raw, labels = synthetic_em_volume((16, 24, 24), n_neurites=5, seed=0)
>>> raw.shape, raw.dtype, labels.dtype, int(labels.max())
((16, 24, 24), dtype('float32'), dtype('uint64'), 8)
>>> bool((labels == 0).mean() < 0.03)          # a little extracellular space
True
>>> affinities_from_labels(labels).shape
(3, 16, 24, 24)
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np
from scipy import ndimage, spatial

from .metrics import _check_labels

__all__ = ["SyntheticVolume", "synthetic_em_volume", "boundary_map_from_labels", "affinities_from_labels",
           "DEFAULT_OFFSETS"]

DEFAULT_OFFSETS = ((1, 0, 0), (0, 1, 0), (0, 0, 1))
"""Nearest-neighbour affinity offsets: channel 0 links a voxel to the one below in z, 1 in y, 2 in x."""

_CYTOPLASM = 0.7
_MEMBRANE = 0.15
_NEAREST_SAMPLES = 8        # curve samples examined per voxel when finding the nearest tube surface
_SAMPLE_STEP = 0.75         # voxels between curve samples


class SyntheticVolume(NamedTuple):
    """The image and its ground truth; unpacks as ``raw, labels``."""

    raw: np.ndarray
    """Image, shape (z, y, x): float32 in [0, 1], or uint8 in [0, 255]."""
    labels: np.ndarray
    """Neuron of every voxel, uint64, ``1 .. n``; 0 for extracellular space."""


def _int_tuple(name, value, *, n=3, minimum=1):
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value,) * n
    try:
        value = tuple(value)
    except TypeError:
        raise ValueError(f"{name} must be {n} integers (z, y, x), got {value!r}") from None
    if len(value) != n or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value):
        raise ValueError(f"{name} must be {n} integers (z, y, x), got {value!r}")
    if any(v < minimum for v in value):
        raise ValueError(f"{name} must be {n} integers >= {minimum} (z, y, x), got {value!r}")
    return tuple(int(v) for v in value)


def _real(name, value, *, minimum=0.0, strict=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    if value < minimum or (strict and value == minimum):
        raise ValueError(f"{name} must be {'>' if strict else '>='} {minimum}, got {value!r}")
    return float(value)


def _curve(rng, shape, radius_range):
    """Samples (n, 3) of one smooth random curve through the volume and the radius at each."""
    shape_arr = np.asarray(shape, dtype=np.float64)
    direction = rng.normal(size=3)
    direction /= np.linalg.norm(direction)
    # two unit vectors perpendicular to the direction carry the bends
    helper = np.eye(3)[np.argmin(np.abs(direction))]
    normal_a = np.cross(direction, helper)
    normal_a /= np.linalg.norm(normal_a)
    normal_b = np.cross(direction, normal_a)
    centre = rng.uniform(0.15, 0.85, size=3) * (shape_arr - 1)
    half_length = float(np.linalg.norm(shape_arr))
    t = np.arange(-half_length, half_length, _SAMPLE_STEP)
    bends = []
    for _ in range(2):
        amplitude = rng.uniform(0.05, 0.2) * shape_arr.min()
        wavelength = rng.uniform(0.7, 2.0) * shape_arr.max()
        bends.append(amplitude * np.sin(2 * np.pi * t / wavelength + rng.uniform(0, 2 * np.pi)))
    points = centre + t[:, None] * direction + bends[0][:, None] * normal_a + bends[1][:, None] * normal_b
    base = rng.uniform(*radius_range)
    radius = base * (1 + 0.25 * np.sin(2 * np.pi * t / rng.uniform(10, 30) + rng.uniform(0, 2 * np.pi)))
    margin = radius_range[1] + 2
    inside = np.all((points > -margin) & (points < shape_arr - 1 + margin), axis=1)
    return points[inside], radius[inside]


def _interior(labels):
    """Voxels whose whole 3x3x3 neighbourhood (within the volume) carries their label."""
    return ndimage.maximum_filter(labels, size=3, mode="nearest") == ndimage.minimum_filter(
        labels, size=3, mode="nearest")


def _clean_labels(labels, min_size, *, extracellular, max_rounds=8):
    """Make every neuron at least three voxels thick, 6-connected and at least ``min_size`` voxels.

    "Thick": every voxel lies in the 3x3x3 neighbourhood of an *interior* voxel, one whose whole
    neighbourhood has one label (that label is then the voxel's own: two interior voxels near one
    voxel share its label). A voxel that is not takes the label of the nearest interior voxel;
    interior voxels never lose that status by it (their neighbourhoods are covered, so unchanged),
    so the thin parts shrink over a few rounds. Slivers that stay thin (wedges between oblique
    interfaces) become label 0 with ``extracellular``, else keep their nearest neuron's label.
    """
    cube = np.ones((3, 3, 3), bool)
    thin = np.zeros(labels.shape, bool)
    previous = np.inf
    for _ in range(max_rounds):
        interior = _interior(labels)
        if not interior.any():
            raise ValueError("the neurites are too thin for the volume: raise radius_range or lower n_neurites")
        thin = ~ndimage.binary_dilation(interior, structure=cube)
        n_thin = np.count_nonzero(thin)
        if n_thin == 0 or n_thin > 0.98 * previous:
            break                                          # done, or the rest stays thin whatever the rounds
        previous = n_thin
        _, nearest = ndimage.distance_transform_edt(~interior, return_distances=True, return_indices=True)
        changed = labels[tuple(axis[thin] for axis in nearest)]
        if np.array_equal(changed, labels[thin]):
            break                                          # no progress: what is left stays thin
        labels = labels.copy()
        labels[thin] = changed
    if extracellular and thin.any():
        labels = np.where(thin, 0, labels)
    from skimage.measure import label as connected_components
    labels = connected_components(labels, background=0, connectivity=1).astype(np.int64)
    from .watershed import remove_small_fragments     # (watershed imports this module)
    return remove_small_fragments(labels, min_size)


def synthetic_em_volume(shape=(32, 48, 48), *, n_neurites=8, seed=0, blur_sigma=1.0, noise_std=0.05,
                        membrane_width=2.0, radius_range=(3.0, 7.0), min_size=64, extracellular=True,
                        dtype="float32"):
    """A synthetic EM volume of densely packed tubular neurites and its ground-truth labels.

    Parameters
    ----------
    shape : tuple of 3 int, optional
        Volume shape ``(z, y, x)``, each at least 4.
    n_neurites : int, optional
        Number of curves drawn. After the clean-up a neurite may be cut by the volume into several
        labels, or vanish; the number of labels is about this.
    seed : int, optional
        Seed of :func:`numpy.random.default_rng`; the same seed gives the same volume.
    blur_sigma : float or tuple of 3 float, optional
        Gaussian blur of the image in voxels, per axis ``(z, y, x)`` for anisotropic data; 0: none.
    noise_std : float, optional
        Standard deviation of the additive Gaussian noise (intensities in [0, 1]).
    membrane_width : float, optional
        Membrane thickness in voxels, >= 1; at least one voxel on each side of an interface is dark.
    radius_range : (float, float), optional
        Range of the tube radii in voxels.
    min_size : int, optional
        Pieces smaller than this many voxels are merged into a neighbour.
    extracellular : bool, optional
        True (default): slivers that cannot be made three voxels thick are extracellular space
        (label 0, dark). False: they stay in the nearest neuron and no voxel is 0, but a perfect
        boundary map then no longer pins every voxel down (see the module docstring).
    dtype : {"float32", "uint8"}, optional
        float32 in [0, 1] or uint8 in [0, 255] (rounded).

    Returns
    -------
    SyntheticVolume
        ``(raw, labels)``: the image, shape ``shape``, and the uint64 labels ``1 .. n`` (0:
        extracellular space).

    Raises
    ------
    ValueError
        A shape that is not 3 integers >= 4, or an out-of-range option.

    Example
    -------
    >>> raw, labels = synthetic_em_volume((12, 20, 20), n_neurites=4, seed=1)
    >>> raw2, labels2 = synthetic_em_volume((12, 20, 20), n_neurites=4, seed=1)
    >>> bool(np.array_equal(raw, raw2) and np.array_equal(labels, labels2))
    True
    >>> # membranes are dark: the image is darker on label boundaries than inside neurites
    >>> edge = boundary_map_from_labels(labels, connectivity=1).astype(bool)
    >>> bool(raw[edge].mean() < raw[~edge].mean() - 0.2)
    True
    """
    shape = _int_tuple("shape", shape, minimum=4)
    if isinstance(n_neurites, bool) or not isinstance(n_neurites, numbers.Integral) or n_neurites < 1:
        raise ValueError(f"n_neurites must be an integer >= 1, got {n_neurites!r}")
    sigma = blur_sigma if np.ndim(blur_sigma) else (blur_sigma,) * 3
    if len(sigma) != 3:
        raise ValueError(f"blur_sigma must be one number or 3 (z, y, x), got {blur_sigma!r}")
    sigma = tuple(_real("blur_sigma", s) for s in sigma)
    noise_std = _real("noise_std", noise_std)
    membrane_width = _real("membrane_width", membrane_width, minimum=1.0)
    if len(radius_range) != 2:
        raise ValueError(f"radius_range must be (min, max), got {radius_range!r}")
    r_lo, r_hi = (_real("radius_range", r, minimum=0.0, strict=True) for r in radius_range)
    if r_lo > r_hi:
        raise ValueError(f"radius_range must be (min, max) with min <= max, got {radius_range!r}")
    if isinstance(min_size, bool) or not isinstance(min_size, numbers.Integral) or min_size < 1:
        raise ValueError(f"min_size must be an integer >= 1, got {min_size!r}")
    if dtype not in ("float32", "uint8", np.float32, np.uint8):
        raise ValueError(f"dtype must be 'float32' or 'uint8', got {dtype!r}")

    rng = np.random.default_rng(seed)
    points, radii, owner = [], [], []
    for k in range(int(n_neurites)):
        p, r = _curve(rng, shape, (r_lo, r_hi))
        points.append(p)
        radii.append(r)
        owner.append(np.full(len(p), k))
    points, radii, owner = np.concatenate(points), np.concatenate(radii), np.concatenate(owner)

    # nearest tube surface: among the nearest curve samples, the smallest distance minus radius
    grid = np.indices(shape, dtype=np.float32).reshape(3, -1).T
    k = min(_NEAREST_SAMPLES, len(points))
    dist, idx = spatial.cKDTree(points).query(grid, k=k, workers=1)
    dist, idx = dist.reshape(len(grid), k), idx.reshape(len(grid), k)
    best = np.argmin(dist - radii[idx], axis=1)
    labels = owner[idx[np.arange(len(grid)), best]].reshape(shape) + 1
    labels = _clean_labels(labels, int(min_size), extracellular=bool(extracellular))
    ids, labels = np.unique(labels, return_inverse=True)       # renumber 1 .. n, 0 stays 0
    labels = (labels.reshape(shape) + (1 if ids[0] != 0 else 0)).astype(np.uint64)

    # image: cytoplasm with a grey level per neurite and faint texture, dark membranes
    n_labels = int(labels.max())
    grey = rng.uniform(_CYTOPLASM - 0.08, _CYTOPLASM + 0.08, size=n_labels + 1).astype(np.float32)
    raw = grey[labels]
    texture = ndimage.gaussian_filter(rng.normal(size=shape).astype(np.float32), 1.5)
    raw += 0.08 * texture / max(float(texture.std()), 1e-6)
    interface = boundary_map_from_labels(labels, connectivity=1).astype(bool)
    if membrane_width > 2:
        interface = ndimage.distance_transform_edt(~interface) <= membrane_width / 2 - 1
    raw[interface | (labels == 0)] = _MEMBRANE
    if any(sigma):
        raw = ndimage.gaussian_filter(raw, sigma)
    if noise_std > 0:
        raw = raw + rng.normal(scale=noise_std, size=shape).astype(np.float32)
    raw = np.clip(raw, 0.0, 1.0).astype(np.float32)
    if np.dtype(dtype) == np.uint8:
        raw = np.round(raw * 255).astype(np.uint8)
    return SyntheticVolume(raw, labels)


def boundary_map_from_labels(labels, *, connectivity=3):
    """1 on voxels next to a different label, 0 elsewhere: the perfect boundary map.

    Parameters
    ----------
    labels : array_like of non-negative int, shape (z, y, x)
        Label volume.
    connectivity : {1, 3}, optional
        Which neighbours count: 1, the 6 face neighbours; 3 (default), all 26 neighbours. Both
        mark voxels on *both* sides of an interface (a two-voxel-thick boundary). The default
        matches :func:`~services.segmentation.core.watershed.seeded_watershed`'s flooding, with
        which it reproduces every neuron that is at least three voxels thick exactly. Voxels
        outside the volume are not neighbours: the volume's faces are not boundaries.

    Returns
    -------
    boundaries : ndarray of float32, shape (z, y, x)
        1.0 on boundary voxels, else 0.0. Label 0 is a label like any other here.

    Example
    -------
    >>> labels = np.zeros((1, 1, 6), int); labels[..., 3:] = 1
    >>> boundary_map_from_labels(labels)
    array([[[0., 0., 1., 1., 0., 0.]]], dtype=float32)
    """
    labels = _check_labels("labels", labels)
    if connectivity not in (1, 3):
        raise ValueError(f"connectivity must be 1 (6 neighbours) or 3 (26 neighbours), got {connectivity!r}")
    footprint = ndimage.generate_binary_structure(3, connectivity)
    high = ndimage.maximum_filter(labels, footprint=footprint, mode="nearest")
    low = ndimage.minimum_filter(labels, footprint=footprint, mode="nearest")
    return (high != low).astype(np.float32)


def _check_offsets(offsets):
    try:
        offsets = np.asarray(offsets)
    except (TypeError, ValueError):
        raise ValueError(f"offsets must be a sequence of (dz, dy, dx) integer triples, got {offsets!r}") from None
    if offsets.ndim != 2 or offsets.shape[1] != 3 or offsets.shape[0] == 0 or not np.issubdtype(
            offsets.dtype, np.integer):
        raise ValueError(f"offsets must be a sequence of (dz, dy, dx) integer triples, got shape {offsets.shape}")
    if np.any(np.all(offsets == 0, axis=1)):
        raise ValueError("offsets must not contain (0, 0, 0): a voxel is not its own neighbour")
    return [tuple(int(v) for v in o) for o in offsets]


def _shifted_pair(shape, offset):
    """Slices ``here, there`` so that ``volume[there]`` is the voxel at ``position - offset`` of ``volume[here]``."""
    here, there = [], []
    for size, o in zip(shape, offset):
        if o >= 0:
            here.append(slice(min(o, size), size))
            there.append(slice(0, max(size - o, 0)))
        else:
            here.append(slice(0, max(size + o, 0)))
            there.append(slice(min(-o, size), size))
    return tuple(here), tuple(there)


def affinities_from_labels(labels, offsets=DEFAULT_OFFSETS):
    """Perfect affinities of a label volume: 1 where a voxel and its neighbour share a nonzero label.

    Convention: ``aff[c, z, y, x]`` is the affinity of voxel ``(z, y, x)`` with voxel
    ``(z, y, x) - offsets[c]``. It is 1.0 when both carry the same label and that label is not 0,
    else 0.0; where ``(z, y, x) - offsets[c]`` lies outside the volume it is 0.0.

    Parameters
    ----------
    labels : array_like of non-negative int, shape (z, y, x)
        Label volume; 0 is background.
    offsets : sequence of (dz, dy, dx) int, optional
        One offset per channel; the default, the 6-neighbourhood, is ``((1, 0, 0), (0, 1, 0),
        (0, 0, 1))``. Long-range and negative offsets work too.

    Returns
    -------
    affinities : ndarray of float32, shape (len(offsets), z, y, x)

    Example
    -------
    >>> labels = np.array([[[1, 1, 2]]])
    >>> affinities_from_labels(labels)[2]      # x channel: voxel x links to voxel x - 1
    array([[[0., 1., 0.]]], dtype=float32)
    """
    labels = _check_labels("labels", labels)
    offsets = _check_offsets(offsets)
    affinities = np.zeros((len(offsets),) + labels.shape, np.float32)
    for channel, offset in enumerate(offsets):
        here, there = _shifted_pair(labels.shape, offset)
        a, b = labels[here], labels[there]
        affinities[(channel,) + here] = (a == b) & (a != 0)
    return affinities
