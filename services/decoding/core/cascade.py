"""Wiener cascade decoder (Hunter & Korenberg 1986; Glaser et al. 2020): a Wiener filter, then a
static polynomial nonlinearity per output.

The model
---------
For every output ``j`` the prediction is ``g_j(u_j)`` with ``u = RidgeDecoder(X)`` the linear
(Wiener filter) prediction on the flattened window and ``g_j`` a polynomial of degree
``degree``. The linear stage is fitted first, with its ridge strength chosen by inner blocked
cross-validation as in :class:`~.base.RidgeDecoder`; then ``g_j`` is fitted by least squares from
the linear stage's training predictions ``u_j`` to the targets ``y_j``.

Why this works: for Gaussian inputs the least-squares linear fit of ``y = g(X w)`` points along
``w`` whatever the nonlinearity ``g`` (Bussgang 1952; Brillinger 1982), so the linear stage finds
the right direction and the polynomial only has to learn ``g``.

Numerical details
-----------------
* The polynomial is fitted in the variable ``(u - centre) / half_range``, ``u``'s training range
  mapped to [-1, 1], where the Vandermonde columns are well conditioned, and solved with
  ``lstsq`` (minimum norm when the linear prediction takes fewer than ``degree + 1`` values).
* ``u`` is clipped to its training range before ``g`` is applied: a cubic extrapolated beyond
  the data it was fitted on diverges, while the targets of a decoder (velocities, forces) are
  bounded in practice.

Example
-------
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=(4000, 3))
>>> y = np.tanh(x @ [1.0, -0.5, 0.25])[:, None]        # a saturating response
>>> X = x[:, np.newaxis, :]                              # windows with history_bins=0
>>> cascade = WienerCascadeDecoder().fit(X[:3000], y[:3000])
>>> linear = RidgeDecoder().fit(X[:3000], y[:3000])
>>> bool(cascade.score(X[3000:], y[3000:]) > linear.score(X[3000:], y[3000:]) + 0.05)
True
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from .base import Decoder, Report, RidgeDecoder, check_targets, register_decoder

__all__ = ["WienerCascadeDecoder"]

_LINEAR_PREFIX = "linear__"


def _vandermonde(u: np.ndarray, degree: int) -> np.ndarray:
    """Columns ``1, u, u^2, .., u^degree`` of a 1-D ``u``: shape (n, degree + 1)."""
    return u[:, np.newaxis] ** np.arange(degree + 1)


@register_decoder("wiener_cascade")
class WienerCascadeDecoder(Decoder):
    """Wiener filter followed by a per-output polynomial of its prediction.

    See the module docstring for the model and how it is fitted.

    Parameters
    ----------
    degree : int, default 3
        Degree of the static nonlinearity, >= 1 (1 gives back the Wiener filter, refitted).
    alphas : sequence of float, optional
        Ridge strengths of the linear stage, as in :class:`~.base.RidgeDecoder`.
    n_inner_folds : int, default 5
        Inner blocked folds that choose the linear stage's ridge strength.

    Attributes
    ----------
    linear_ : RidgeDecoder
        The fitted linear stage.
    poly_coef_ : ndarray, shape (n_outputs, degree + 1)
        Coefficients of ``g_j`` in the scaled variable ``s = (u - poly_centre_) / poly_half_range_``,
        lowest power first.
    poly_centre_, poly_half_range_ : ndarray, shape (n_outputs,)
        Centre and half-width of the training range of each linear prediction (half-width 1
        where the linear prediction is constant).

    Examples
    --------
    A cubic of a linear combination of the inputs, which the Wiener filter alone cannot follow:

    >>> rng = np.random.default_rng(1)
    >>> x = rng.normal(size=(2000, 1, 2))
    >>> u = x[:, 0] @ [1.0, 2.0]
    >>> y = u + 0.1 * u ** 3
    >>> model = WienerCascadeDecoder(alphas=(1e-9,)).fit(x, y)
    >>> round(model.score(x, y), 3), round(model.linear_.score(x, y), 3)
    (1.0, 0.797)
    """

    state_attributes = ("poly_coef_", "poly_centre_", "poly_half_range_")

    def __init__(self, *, degree: int = 3, alphas=None, n_inner_folds: int = 5) -> None:
        self.degree = degree
        self.alphas = alphas
        self.n_inner_folds = n_inner_folds

    def _checked_degree(self) -> int:
        degree = self.degree
        if isinstance(degree, bool) or not isinstance(degree, numbers.Integral) or degree < 1:
            raise ValueError(f"degree must be an integer >= 1, got {degree!r}")
        return int(degree)

    def fit(self, X, y, *, report: Report | None = None) -> "WienerCascadeDecoder":
        """Fit the Wiener filter on ``X`` (n, n_lags, n_features), then a polynomial per output."""
        degree = self._checked_degree()
        # the linear stage checks X and y; its progress is reported as the first 90 % of the fit
        linear_report = None if report is None else (lambda f, message: report(0.9 * f, message))
        linear = RidgeDecoder(alphas=self.alphas, n_inner_folds=self.n_inner_folds).fit(X, y, report=linear_report)
        y = check_targets(y, task="regression")
        u = linear.predict(X)
        low, high = u.min(axis=0), u.max(axis=0)
        centre = 0.5 * (low + high)
        half_range = 0.5 * (high - low)
        half_range[half_range <= 1e-12 * np.maximum(np.abs(centre), 1.0)] = 1.0
        coef = np.empty((y.shape[1], degree + 1))
        for j in range(y.shape[1]):
            design = _vandermonde((u[:, j] - centre[j]) / half_range[j], degree)
            coef[j] = np.linalg.lstsq(design, y[:, j], rcond=None)[0]
        self.linear_ = linear
        self.poly_coef_, self.poly_centre_, self.poly_half_range_ = coef, centre, half_range
        if report is not None:
            report(1.0, f"fitted a degree-{degree} nonlinearity on each of {y.shape[1]} outputs")
        return self

    def linear_predict(self, X) -> np.ndarray:
        """The linear stage's prediction ``u``, shape (n_samples, n_outputs)."""
        if not hasattr(self, "linear_"):
            raise ValueError("WienerCascadeDecoder is not fitted")
        return self.linear_.predict(X)

    def predict(self, X) -> np.ndarray:
        """``g_j(u_j)`` for every output, with ``u`` clipped to its training range."""
        u = self.linear_predict(X)
        s = np.clip((u - self.poly_centre_) / self.poly_half_range_, -1.0, 1.0)
        degree = self.poly_coef_.shape[1] - 1
        return np.stack([_vandermonde(s[:, j], degree) @ self.poly_coef_[j] for j in range(s.shape[1])], axis=1)

    # the linear stage is a decoder of its own: its arrays are saved under a prefix

    def get_model_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        if not hasattr(self, "linear_"):
            raise ValueError("WienerCascadeDecoder is not fitted (no linear_)")
        params, arrays = super().get_model_state()
        _, linear_arrays = self.linear_.get_model_state()
        arrays.update({_LINEAR_PREFIX + name: value for name, value in linear_arrays.items()})
        return params, arrays

    @classmethod
    def from_model_state(cls, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> "WienerCascadeDecoder":
        model = super().from_model_state(params, arrays)
        linear_arrays = {name[len(_LINEAR_PREFIX):]: value for name, value in arrays.items()
                         if name.startswith(_LINEAR_PREFIX)}
        model.linear_ = RidgeDecoder.from_model_state({"alphas": model.alphas, "n_inner_folds": model.n_inner_folds},
                                                      linear_arrays)
        return model
