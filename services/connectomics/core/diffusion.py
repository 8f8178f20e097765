"""Diffusion-MRI inputs and models: reading, validation, brain masking, DTI, CSD and CSA.

Conventions:

* A DWI is 4-D, ``(X, Y, Z, N)``: ``N`` volumes, one per entry of the gradient table. Its
  ``affine`` maps voxel indices ``(i, j, k)`` to world coordinates in mm, RAS+ (nibabel's
  convention: voxel centres at integer indices).
* b-values are in s/mm^2; ``bvecs`` are ``(N, 3)`` unit vectors in the voxel axes (FSL
  convention, which is what dipy's gradient table expects); the text files may hold them as
  ``3 x N`` (FSL) or ``N x 3``. Volumes with ``b <= b0_threshold`` (50) are b = 0 volumes; their
  vectors may be zero (or NaN in some exports, read as zero).
* FA is dimensionless in [0, 1]; MD is in mm^2/s (the unit of 1/b). Maps are float32 and 0
  outside the mask.
* Every check raises :class:`ValueError` naming the problem (the service answers
  INVALID_ARGUMENT with it).

Models (all fitted only inside a given mask):

* :func:`fit_dti` -- the diffusion tensor (weighted least squares), giving FA and MD;
* :func:`fit_csd` -- constrained spherical deconvolution (Tournier 2007) with a single-fibre
  response estimated from the data (:func:`estimate_response`: the voxels of the brain mask
  with FA > 0.7, or the most anisotropic ones when there are too few);
* :func:`fit_csa` -- the constant-solid-angle ODF (Aganj 2010), a q-ball ODF.

CSD and CSA return real spherical-harmonic coefficients in dipy's default basis (descoteaux07,
legacy), which is what :mod:`tractography` tracks on.

Example
-------
>>> bvals = read_bvals(b"0 1000 1000 1000 1000 1000 1000", name="x.bval")
>>> bvecs = read_bvecs(b"0 1 0 0 0.7071 0.7071 0\\n0 0 1 0 0.7071 0 0.7071\\n0 0 0 1 0 0.7071 0.7071",
...                    name="x.bvec")
>>> bvals.shape, bvecs.shape
((7,), (7, 3))
>>> dwi = np.ones((2, 2, 2, 7), np.float32)
>>> try:
...     check_dwi(dwi[..., :6], bvals, bvecs)
... except ValueError as err:
...     print(err)
bvals has 7 values but the DWI has 6 volumes
"""

from __future__ import annotations

import gzip
import numbers
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np

__all__ = ["Source", "read_nifti", "read_bvals", "read_bvecs", "check_dwi", "check_affine", "check_mask",
           "check_parcellation", "make_gradient_table", "default_sh_order", "brain_mask", "DtiMaps", "fit_dti",
           "ShFit", "estimate_response", "fit_csd", "fit_csa", "tracking_support", "B0_THRESHOLD"]

Source = Union[bytes, bytearray, memoryview, str, os.PathLike]
"""File contents (bytes-like) or a path (str or path-like)."""

B0_THRESHOLD = 50.0
"""b-values (s/mm^2) at or below which a volume counts as unweighted, as in dipy."""

_UNIT_TOLERANCE = 0.01           # |norm - 1| allowed for a gradient direction (dipy's gradient_table uses 1e-2)
_RESPONSE_FA = 0.7               # single-fibre voxels for the CSD response
_RESPONSE_MIN_VOXELS = 50        # fewer than this above _RESPONSE_FA: take the most anisotropic voxels
_RESPONSE_MIN_FA = 0.4           # ... but not below this: such data has no fibre to estimate from


# ================================================================================================
# reading


def _label(source, name):
    if name:
        return str(name)
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return "<bytes>"


def _read_bytes(source: Source, name: str) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    if isinstance(source, (str, os.PathLike)):
        try:
            return Path(source).read_bytes()
        except OSError as err:
            raise ValueError(f"{name}: cannot be read ({err.strerror or err})") from None
    raise ValueError(f"{name}: expected file contents (bytes) or a path, got {type(source).__name__}")


def read_nifti(source: Source, *, name: str | None = None, dtype=None) -> tuple[np.ndarray, np.ndarray]:
    """Read a NIfTI-1 or NIfTI-2 image (``.nii`` or ``.nii.gz``) from bytes or a path.

    Parameters
    ----------
    source : bytes or path
        The file's contents, gzip-compressed or not, or its path.
    name : str, optional
        What to call the file in error messages (default: the path, or ``<bytes>``).
    dtype : numpy dtype, optional
        Return the scaled data as this floating type (``get_fdata``); default: the stored values
        as stored (integer labels stay integers unless the header scales them).

    Returns
    -------
    data : ndarray
        The image array, axes as stored (``(X, Y, Z[, N])``).
    affine : ndarray, shape (4, 4)
        Voxel indices to world mm, RAS+, as nibabel chooses it (sform, else qform).

    Raises
    ------
    ValueError
        Naming the file, if it cannot be read or is not a complete NIfTI image.
    """
    import nibabel as nib

    label = _label(source, name)
    raw = _read_bytes(source, label)
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, ValueError) as err:
            raise ValueError(f"{label} is not a valid gzip-compressed NIfTI file: {err}") from None
    if len(raw) < 348:
        raise ValueError(f"{label} is not a NIfTI image: {len(raw)} bytes is shorter than a NIfTI header")
    image = None
    errors = []
    for cls in (nib.Nifti1Image, nib.Nifti2Image):
        try:
            image = cls.from_bytes(raw)
            break
        except Exception as err:  # nibabel raises several types for a foreign header
            errors.append(f"{cls.__name__}: {err}")
    if image is None:
        raise ValueError(f"{label} is not a NIfTI-1 or NIfTI-2 image ({'; '.join(errors)})")
    try:
        data = image.get_fdata(dtype=dtype) if dtype is not None else np.asanyarray(image.dataobj)
    except Exception as err:  # truncated data, unsupported storage type
        raise ValueError(f"{label}: the image data cannot be read ({err})") from None
    return np.asarray(data), np.asarray(image.affine, dtype=np.float64)


def _read_numbers(source: Source, name: str | None) -> list[list[float]]:
    label = _label(source, name)
    raw = _read_bytes(source, label)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{label} is not a text file of numbers") from None
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].replace(",", " ").strip()
        if not line:
            continue
        try:
            rows.append([float(field) for field in line.split()])
        except ValueError:
            bad = next(f for f in line.split() if not _is_float(f))
            raise ValueError(f"{label}: line {number} has {bad!r}, which is not a number") from None
    if not rows:
        raise ValueError(f"{label} holds no numbers")
    if len({len(row) for row in rows}) != 1:
        raise ValueError(f"{label}: the lines hold different counts of numbers "
                         f"({', '.join(str(len(row)) for row in rows)})")
    return rows


def _is_float(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_bvals(source: Source, *, name: str | None = None) -> np.ndarray:
    """Read b-values (s/mm^2) from a text file: one line (FSL) or one column of numbers.

    Raises
    ------
    ValueError
        Naming the file, if it is not numbers, not one line or column, negative or not finite.

    Examples
    --------
    >>> read_bvals(b"0\\n1000\\n1000\\n", name="a.bval").tolist()
    [0.0, 1000.0, 1000.0]
    """
    label = _label(source, name)
    values = np.array(_read_numbers(source, name), dtype=np.float64)
    if min(values.shape) != 1:
        raise ValueError(f"{label}: b-values must be one line or one column, got {values.shape[0]} lines of "
                         f"{values.shape[1]}")
    values = values.ravel()
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ValueError(f"{label}: b-values must be finite and >= 0")
    return values


def read_bvecs(source: Source, *, name: str | None = None) -> np.ndarray:
    """Read gradient directions from a text file, ``3 x N`` (FSL) or ``N x 3``; returns ``(N, 3)``.

    NaN is kept (it is accepted at b = 0 by :func:`check_dwi`, which some exports write there).

    Raises
    ------
    ValueError
        Naming the file, if it is not numbers or has neither 3 lines nor 3 columns.

    Examples
    --------
    >>> read_bvecs(b"0 0 0\\n1 0 0\\n0 1 0\\n0 0 1\\n", name="a.bvec").shape
    (4, 3)
    """
    label = _label(source, name)
    values = np.array(_read_numbers(source, name), dtype=np.float64)
    if values.shape[1] == 3:
        return values
    if values.shape[0] == 3:
        return np.ascontiguousarray(values.T)
    raise ValueError(f"{label}: gradient directions must be 3 lines (FSL) or 3 columns, got {values.shape[0]} "
                     f"lines of {values.shape[1]}")


# ================================================================================================
# validation


def check_dwi(dwi, bvals, bvecs, *, b0_threshold: float = B0_THRESHOLD
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check a DWI against its gradient table; return ``(dwi float32, bvals, bvecs (N, 3))``.

    Checks: the DWI is a 4-D array of finite numbers (no NaN); ``bvals`` has one finite value
    >= 0 per volume; ``bvecs`` is ``(N, 3)`` or ``(3, N)``, finite and of unit norm (within 0.01)
    wherever ``b > b0_threshold``; at ``b <= b0_threshold`` a vector may be zero (NaN is read
    as zero) or a unit vector; at least one b = 0 volume and six weighted ones (a tensor has six
    unknowns).

    Raises
    ------
    ValueError
        Naming the first problem found.
    """
    dwi = np.asarray(dwi)
    if dwi.ndim != 4:
        raise ValueError(f"the DWI must be 4-D (x, y, z, volumes), got {dwi.ndim}-D with shape {dwi.shape}")
    if dwi.dtype.kind not in "biuf":
        raise ValueError(f"the DWI must hold numbers, got dtype {dwi.dtype}")
    if min(dwi.shape) < 1:
        raise ValueError(f"the DWI is empty, shape {dwi.shape}")
    dwi = dwi.astype(np.float32, copy=False)
    n_nan = int(np.count_nonzero(np.isnan(dwi)))
    if n_nan:
        raise ValueError(f"the DWI contains {n_nan} NaN values")
    if not np.all(np.isfinite(dwi)):
        raise ValueError("the DWI contains infinite values")
    n = dwi.shape[3]
    bvals = np.asarray(bvals, dtype=np.float64)
    if bvals.ndim != 1:
        bvals = bvals.squeeze()
        if bvals.ndim != 1:
            raise ValueError(f"bvals must be one value per volume, got shape {np.shape(bvals)}")
    if bvals.size != n:
        raise ValueError(f"bvals has {bvals.size} values but the DWI has {n} volumes")
    if not np.all(np.isfinite(bvals)) or np.any(bvals < 0):
        raise ValueError("bvals must be finite and >= 0")
    bvecs = np.array(bvecs, dtype=np.float64)
    if bvecs.ndim == 2 and bvecs.shape == (3, n) and n != 3:
        bvecs = np.ascontiguousarray(bvecs.T)
    if bvecs.shape != (n, 3):
        raise ValueError(f"bvecs must have shape ({n}, 3) or (3, {n}) for {n} volumes, got {bvecs.shape}")
    weighted = bvals > b0_threshold
    if not np.all(np.isfinite(bvecs[weighted])):
        bad = np.flatnonzero(weighted & ~np.isfinite(bvecs).all(axis=1))
        raise ValueError(f"bvecs are not finite at volume(s) {bad.tolist()} where b > {b0_threshold:g}")
    bvecs[~weighted & ~np.isfinite(bvecs).all(axis=1)] = 0.0
    norms = np.linalg.norm(bvecs, axis=1)
    bad = np.flatnonzero(weighted & (np.abs(norms - 1.0) > _UNIT_TOLERANCE))
    if bad.size:
        raise ValueError(f"bvecs must be unit vectors where b > {b0_threshold:g}: volume {int(bad[0])} has norm "
                         f"{norms[bad[0]]:.4g} ({bad.size} such volumes)")
    bad = np.flatnonzero(~weighted & (norms > _UNIT_TOLERANCE) & (np.abs(norms - 1.0) > _UNIT_TOLERANCE))
    if bad.size:
        raise ValueError(f"bvecs must be zero or unit vectors where b <= {b0_threshold:g}: volume {int(bad[0])} has "
                         f"norm {norms[bad[0]]:.4g}")
    if not np.any(~weighted):
        raise ValueError(f"the gradient table has no b = 0 volume (b <= {b0_threshold:g})")
    if np.count_nonzero(weighted) < 6:
        raise ValueError(f"the gradient table has {np.count_nonzero(weighted)} diffusion-weighted volumes; "
                         "a tensor needs at least 6")
    return dwi, bvals, bvecs


def check_affine(affine) -> np.ndarray:
    """Check a voxel-to-world affine: 4 x 4, finite, last row ``0 0 0 1``, not singular.

    Raises
    ------
    ValueError
        Naming the problem.

    Examples
    --------
    >>> check_affine(np.diag([2.0, 2.0, 2.0, 1.0])).shape
    (4, 4)
    >>> check_affine(np.diag([2.0, 0.0, 2.0, 1.0]))
    Traceback (most recent call last):
    ...
    ValueError: the affine is singular (its 3 x 3 part has determinant 0)
    """
    affine = np.asarray(affine, dtype=np.float64)
    if affine.shape != (4, 4):
        raise ValueError(f"the affine must be 4 x 4, got shape {affine.shape}")
    if not np.all(np.isfinite(affine)):
        raise ValueError("the affine has non-finite entries")
    if not np.allclose(affine[3], [0, 0, 0, 1]):
        raise ValueError(f"the affine's last row must be 0 0 0 1, got {affine[3].tolist()}")
    lin = affine[:3, :3]
    det = float(np.linalg.det(lin))
    scale = float(np.prod(np.linalg.norm(lin, axis=0)))
    if scale == 0 or abs(det) <= 1e-6 * scale:
        raise ValueError(f"the affine is singular (its 3 x 3 part has determinant {det:.3g})")
    return affine


def check_mask(mask, shape: tuple[int, ...], *, name: str = "mask") -> np.ndarray:
    """Check a mask of the DWI's spatial ``shape`` (bool, or numbers 0/1); return it as bool.

    Raises
    ------
    ValueError
        If its shape differs, it holds values other than 0 and 1, or it is empty.
    """
    mask = np.asarray(mask)
    shape = tuple(int(s) for s in shape)
    if mask.shape != shape:
        raise ValueError(f"the {name} has shape {mask.shape} but the DWI's spatial shape is {shape}")
    if mask.dtype != bool:
        if mask.dtype.kind not in "iuf" or not np.all(np.isin(mask, (0, 1))):
            raise ValueError(f"the {name} must be boolean (or 0/1), got dtype {mask.dtype}")
        mask = mask.astype(bool)
    if not mask.any():
        raise ValueError(f"the {name} is empty")
    return mask


def check_parcellation(parcellation, shape: tuple[int, ...]) -> np.ndarray:
    """Check an integer parcellation of the DWI's spatial ``shape``; return it as int64.

    Label 0 is background. Floating-point volumes are accepted when every value is a whole
    number (NIfTI label images are often stored as float32).

    Raises
    ------
    ValueError
        If its shape differs (both shapes named), values are fractional, negative or not finite,
        or no voxel has a label other than 0.

    Examples
    --------
    >>> check_parcellation(np.array([[[0.0, 1.0], [2.0, 2.0]]]), (1, 2, 2)).dtype
    dtype('int64')
    >>> check_parcellation(np.array([[[0.0, 1.5], [2.0, 2.0]]]), (1, 2, 2))
    Traceback (most recent call last):
    ...
    ValueError: the parcellation must hold integer labels, got fractional values such as 1.5
    """
    parcellation = np.asarray(parcellation)
    shape = tuple(int(s) for s in shape)
    if parcellation.shape != shape:
        raise ValueError(f"the parcellation has shape {parcellation.shape} but the DWI's spatial shape is {shape}")
    kind = parcellation.dtype.kind
    if kind == "f":
        if not np.all(np.isfinite(parcellation)):
            raise ValueError("the parcellation has non-finite values")
        fractional = parcellation[parcellation != np.round(parcellation)]
        if fractional.size:
            raise ValueError(f"the parcellation must hold integer labels, got fractional values such as "
                             f"{float(fractional.flat[0]):g}")
        if np.abs(parcellation).max() >= 2 ** 53:
            raise ValueError("the parcellation's labels are too large to be exact in floating point")
    elif kind not in "biu":
        raise ValueError(f"the parcellation must hold integer labels, got dtype {parcellation.dtype}")
    if kind == "u" and parcellation.dtype.itemsize >= 8 and parcellation.max() > np.iinfo(np.int64).max:
        raise ValueError("the parcellation's labels do not fit in int64")
    labels = parcellation.astype(np.int64)
    if labels.min() < 0:
        raise ValueError(f"the parcellation has negative labels (min {int(labels.min())})")
    if not labels.any():
        raise ValueError("the parcellation has no region: every voxel is 0 (background)")
    return labels


def make_gradient_table(bvals, bvecs, *, b0_threshold: float = B0_THRESHOLD):
    """dipy's :class:`~dipy.core.gradients.GradientTable` of checked ``bvals`` and ``(N, 3)`` ``bvecs``."""
    from dipy.core.gradients import gradient_table
    bvecs = np.array(bvecs, dtype=np.float64)
    bvals = np.asarray(bvals, dtype=np.float64)
    # dipy's check wants the low-b vectors zero or unit; ours allowed NaN there, already zeroed
    return gradient_table(bvals, bvecs=bvecs, b0_threshold=b0_threshold, atol=_UNIT_TOLERANCE)


def default_sh_order(gtab) -> int:
    """The largest even SH order (at most 8) whose coefficient count the weighted volumes cover.

    Order ``L`` has ``(L + 1)(L + 2) / 2`` coefficients (15 at 4, 28 at 6, 45 at 8); fitting more
    coefficients than measurements is not determined (CSA) or relies entirely on the constraint (CSD).
    """
    n = int(np.count_nonzero(~gtab.b0s_mask))
    for order in (8, 6, 4, 2):
        if (order + 1) * (order + 2) // 2 <= n:
            return order
    raise ValueError(f"{n} diffusion-weighted volumes are too few for a spherical-harmonic model (6 at least)")


# ================================================================================================
# masking and models


def brain_mask(dwi: np.ndarray, gtab, *, median_radius: int = 2, numpass: int = 1) -> np.ndarray:
    """Brain mask of a DWI by dipy's ``median_otsu`` on the mean of its b = 0 volumes.

    The mean b = 0 volume is median-filtered (``median_radius`` voxels, ``numpass`` times) and
    thresholded by Otsu's method. The defaults are those of dipy's command-line workflow's
    radius with one pass: the function's own defaults (radius 4, 4 passes) smear the brain's
    edge into the background by a few voxels (on the phantom a fifth of that mask was air).

    Returns
    -------
    ndarray of bool, shape (X, Y, Z)

    Raises
    ------
    ValueError
        If the mask comes out empty.
    """
    from dipy.segment.mask import median_otsu
    b0 = np.flatnonzero(gtab.b0s_mask)
    _, mask = median_otsu(dwi, vol_idx=b0, median_radius=int(median_radius), numpass=int(numpass))
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        raise ValueError("the brain mask (median_otsu on the b = 0 volumes) is empty; pass a mask")
    return mask


@dataclass(frozen=True)
class DtiMaps:
    """A tensor fit: FA and MD maps and the fit itself (for the tensor ODF)."""

    fa: np.ndarray
    """Fractional anisotropy, float32 in [0, 1], 0 outside the mask."""
    md: np.ndarray
    """Mean diffusivity in mm^2/s, float32, 0 outside the mask."""
    fit: object
    """dipy's ``TensorFit`` (``evals`` in mm^2/s, ``evecs`` in the voxel axes)."""


def fit_dti(dwi: np.ndarray, gtab, *, mask: np.ndarray) -> DtiMaps:
    """Fit the diffusion tensor by weighted least squares inside ``mask``; FA and MD maps.

    Voxels where the fit is undefined (non-positive signal) get FA 0 and MD 0.
    """
    from dipy.reconst.dti import TensorModel
    fit = TensorModel(gtab, fit_method="WLS").fit(dwi, mask=mask)
    fa = np.nan_to_num(np.asarray(fit.fa, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    md = np.nan_to_num(np.asarray(fit.md, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    fa = np.clip(fa, 0.0, 1.0) * mask
    md = md * mask
    return DtiMaps(fa=fa.astype(np.float32), md=md.astype(np.float32), fit=fit)


@dataclass(frozen=True)
class ShFit:
    """Spherical-harmonic coefficients of a fibre ODF (CSD) or diffusion ODF (CSA)."""

    model: str
    """``"csd"`` or ``"csa"``."""
    shcoeff: np.ndarray
    """Coefficients, float64, shape ``(X, Y, Z, (L + 1)(L + 2) / 2)``; 0 outside the fitted mask."""
    sh_order_max: int
    """Maximum SH order ``L`` (even)."""
    response: tuple | None = None
    """CSD only: the single-fibre response ``((l1, l2, l3) mm^2/s, S0)``."""
    response_voxels: int = 0
    """CSD only: voxels the response was estimated from."""


def estimate_response(dwi: np.ndarray, gtab, *, fa: np.ndarray, mask: np.ndarray):
    """Single-fibre response for CSD from the most anisotropic voxels of the brain.

    Voxels of ``mask`` with FA > 0.7 are single-fibre white matter (dipy's criterion); with
    fewer than 50 of them the 50 most anisotropic voxels are used, provided their FA exceeds 0.4.
    dipy's ``response_from_mask_ssst`` fits a tensor to them: the response is its mean
    eigenvalues (prolate, ``l2 = l3``) and the mean b = 0 signal.

    Returns
    -------
    response : tuple
        ``((l1, l2, l3), S0)`` with eigenvalues in mm^2/s.
    n_voxels : int
        Voxels used.

    Raises
    ------
    ValueError
        If the brain has no anisotropic voxels to estimate from.
    """
    from dipy.reconst.csdeconv import response_from_mask_ssst
    fa = np.where(mask, fa, 0.0)
    selected = fa > _RESPONSE_FA
    if np.count_nonzero(selected) < _RESPONSE_MIN_VOXELS:
        order = np.argsort(fa, axis=None)[::-1][:_RESPONSE_MIN_VOXELS]
        selected = np.zeros(fa.shape, dtype=bool)
        selected.flat[order] = True
        selected &= fa > _RESPONSE_MIN_FA
    if not selected.any():
        raise ValueError(f"no white-matter-like voxel (FA > {_RESPONSE_MIN_FA}) to estimate the CSD response from "
                         f"(maximum FA {float(fa.max()):.2f}); use model='csa' or 'dti'")
    response, _ = response_from_mask_ssst(gtab, dwi, selected.astype(np.uint8))
    evals, s0 = response
    return (tuple(float(v) for v in evals), float(s0)), int(np.count_nonzero(selected))


def fit_csd(dwi: np.ndarray, gtab, *, mask: np.ndarray, fa: np.ndarray, response_mask: np.ndarray | None = None,
            sh_order_max: int | None = None, response=None) -> ShFit:
    """Constrained spherical deconvolution inside ``mask``; fODF SH coefficients.

    Parameters
    ----------
    mask : ndarray of bool
        Voxels to fit (see :func:`tracking_support` for the smallest set tracking needs).
    fa : ndarray
        FA map, for the response estimate.
    response_mask : ndarray of bool, optional
        Where to look for single-fibre voxels (the brain mask); default ``mask``.
    sh_order_max : int, optional
        Default :func:`default_sh_order`.
    response : tuple, optional
        ``((l1, l2, l3), S0)``; default estimated by :func:`estimate_response`.
    """
    from dipy.reconst.csdeconv import ConstrainedSphericalDeconvModel
    order = default_sh_order(gtab) if sh_order_max is None else _check_order(sh_order_max)
    n_voxels = 0
    if response is None:
        response, n_voxels = estimate_response(dwi, gtab, fa=fa, mask=mask if response_mask is None else response_mask)
    evals, s0 = response
    model = ConstrainedSphericalDeconvModel(gtab, (np.asarray(evals, dtype=np.float64), float(s0)),
                                            sh_order_max=order)
    coeff = np.asarray(model.fit(dwi, mask=mask).shm_coeff, dtype=np.float64)
    return ShFit(model="csd", shcoeff=np.nan_to_num(coeff) * mask[..., None], sh_order_max=order,
                 response=(tuple(float(v) for v in evals), float(s0)), response_voxels=n_voxels)


def fit_csa(dwi: np.ndarray, gtab, *, mask: np.ndarray, sh_order_max: int | None = None) -> ShFit:
    """Constant-solid-angle (q-ball) ODF inside ``mask``; SH coefficients (dipy's ``CsaOdfModel``)."""
    from dipy.reconst.shm import CsaOdfModel
    order = default_sh_order(gtab) if sh_order_max is None else _check_order(sh_order_max)
    coeff = np.asarray(CsaOdfModel(gtab, order).fit(dwi, mask=mask).shm_coeff, dtype=np.float64)
    return ShFit(model="csa", shcoeff=np.nan_to_num(coeff) * mask[..., None], sh_order_max=order)


def _check_order(order):
    if not isinstance(order, numbers.Integral) or isinstance(order, bool) or order < 2 or order % 2 or order > 16:
        raise ValueError(f"sh_order_max must be an even integer in [2, 16], got {order!r}")
    return int(order)


def tracking_support(core: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The voxels whose model a tracker can read: ``core`` grown by one voxel (26-neighbours), in ``mask``.

    A tracker reads the model at a point only where tracking goes on there, which with a
    threshold stopping criterion means the trilinearly interpolated stopping value is at least
    the threshold, so at least one of the 8 voxels around the point is in ``core`` (the voxels at
    or above the threshold, and the seed voxels); the other 7 are its 26-neighbours. Fitting the
    model on this support instead of the whole brain gives the same streamlines, faster.

    Examples
    --------
    >>> core = np.zeros((5, 5, 5), bool); core[2, 2, 2] = True
    >>> int(tracking_support(core, np.ones((5, 5, 5), bool)).sum())
    27
    """
    from scipy import ndimage
    grown = ndimage.binary_dilation(core, structure=np.ones((3, 3, 3), dtype=bool))
    return grown & mask
