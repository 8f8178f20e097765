"""Local learning rules beside backpropagation: Hebbian PCA, feedback alignment, three-factor learning.

Hebbian learning of principal components
----------------------------------------
A linear unit ``y = w . x`` with Oja's rule (Oja 1982, J. Math. Biol. 15:267),
``dw = eta y (x - y w)``, is Hebbian (``eta y x``) with a decay that keeps ``|w|`` bounded;
its stable fixed point is the unit-norm top eigenvector of ``E[x x^T]`` (the first principal
component of centred data) (:func:`oja_rule`). For ``k`` units ``y = W x`` (:func:`generalized_hebbian`):

* **Sanger's** generalised Hebbian algorithm (1989), ``dW = eta (y x^T - LT(y y^T) W)`` with
  ``LT`` the lower triangle (diagonal included): unit ``i`` runs Oja's rule on the input with the
  projections of units ``1 .. i-1`` removed, so the rows converge to the top ``k`` eigenvectors
  in order;
* **Oja's symmetric subspace rule** (1989), ``dW = eta (y x^T - y y^T W)``: the rows converge to
  an orthonormal basis of the top-``k`` subspace, but not to the eigenvectors themselves.

Updates are averaged over minibatches (the online rule for ``batch_size=1``), and the step is
``learning_rate / E|x|^2``, so one ``learning_rate`` suits data of any scale; it anneals as
``1 / (1 + 10 t / T)`` over the ``T`` updates, which the stochastic-approximation convergence of
these rules requires.

Two-layer networks: backprop, feedback alignment, node perturbation
-------------------------------------------------------------------
:func:`train_two_layer` trains ``h = phi(W1 x + b1)``, ``y = W2 h + b2`` on the squared error
``1/2 |y - t|^2`` (averaged over samples) with one of three rules, all of which change the output
layer by the delta rule ``dW2 = -eta e h^T`` (``e = y - t``) except node perturbation, and
differ in how the hidden layer learns:

* ``"backprop"``: ``delta1 = (W2^T e) * phi'``, the exact gradient;
* ``"feedback_alignment"`` (Lillicrap et al. 2016, Nature Communications 7:13276): the error
  reaches the hidden layer through a **fixed random** matrix ``B`` instead of ``W2^T``,
  ``delta1 = (B e) * phi'``. No weight is transported; the forward weights ``W2`` come to align
  with ``B^T`` while they learn, and then ``B e`` points within 90 degrees of the gradient;
* ``"three_factor"``: node perturbation (Williams 1992; Fiete & Seung 2006, PRL 97:048104), a
  rate-based three-factor rule. Every unit's input current is jittered by Gaussian noise
  ``xi`` of sd ``perturbation_sd``; the **eligibility** of synapse ``j -> i`` is ``xi_i r_j``
  (the postsynaptic fluctuation times the presynaptic rate: Hebbian), and a **global modulator**
  ``M = R - R0``, the reward ``R = -1/2 |y - t|^2`` of the jittered run minus the expected reward
  ``R0`` (here the reward of the same input without the jitter), gates it:
  ``dW = eta M xi r^T / perturbation_sd^2``. In expectation this is the gradient of the reward,
  with no error signal sent to any synapse, only one number broadcast to all of them.

For each rule the result has the training (and test) loss after every epoch, the angle between
the hidden-layer update the rule delivers and the backprop gradient (for feedback alignment:
below 90 degrees once the network aligns), and, for feedback alignment, the angle between
``W2^T`` and ``B``. :func:`compare_learning_rules` trains the same network, from the same
initial weights on the same data, with each rule, and adds the least-squares optimum of a
linear map as the reference loss.

Measured on the linear teacher of Lillicrap et al.'s first experiment (a 30-20-10 linear
network learning ``t = T x + noise`` of sd 0.1 from 1000 samples, batches of 10, 40 epochs, all
rules from the same small initial weights; :func:`compare_learning_rules`, about 3 s): backprop
and feedback alignment both reach the least-squares loss (0.0501 against a floor of 0.0499),
the feedback-alignment update settles about 30 degrees from the gradient (from 84 at the start)
and ``W2^T`` about 32 degrees from ``B`` (from 88); node perturbation (learning rate 0.002) is
slower, at 0.077 after 40 epochs, its one-run gradient estimates 60 to 85 degrees from the
gradient: it points downhill, barely, as a scalar reward for 30 units must.

A single-layer three-factor learner with a known answer is :func:`three_factor_association`:
a linear layer learning an association ``t = T x`` from reward alone (its expected-reward
maximiser is the least-squares solution ``T``).

Example
-------
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(2000, 3)) * [3.0, 1.0, 0.5]
>>> fit = oja_rule(X, epochs=5, seed=0)
>>> bool(abs(fit.weights[0, 0]) > 0.99), round(float(np.linalg.norm(fit.weights[0])), 2)
(True, 1.0)
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = ["HebbianResult", "TwoLayerResult", "AssociationResult", "RULES", "oja_rule", "generalized_hebbian",
           "train_two_layer", "compare_learning_rules", "three_factor_association", "linear_teacher_task"]

#: progress callback: ``report(fraction_done, message)``; an exception it raises stops the work
Report = Callable[[float, str], None]

RULES = ("backprop", "feedback_alignment", "three_factor")
ACTIVATIONS = ("linear", "tanh", "relu")


# ------------------------------------------------------------------------------------------------
# checks


def _count(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _positive(value, name: str, *, allow_zero: bool = False) -> float:
    ok = (not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(value)
          and (value >= 0 if allow_zero else value > 0))
    if not ok:
        raise ValueError(f"{name} must be a finite number {'>=' if allow_zero else '>'} 0, got {value!r}")
    return float(value)


def _matrix(values, name: str, *, min_rows: int = 1) -> np.ndarray:
    try:
        X = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must hold real numbers") from None
    if X.ndim != 2:
        raise ValueError(f"{name} must have shape (n_samples, n_features), got shape {X.shape}")
    if X.size == 0:
        raise ValueError(f"{name} is empty, shape {X.shape}")
    if not np.isfinite(X).all():
        first = tuple(int(i) for i in np.argwhere(~np.isfinite(X))[0])
        raise ValueError(f"{name} holds NaN or infinite values (first at index {first})")
    if X.shape[0] < min_rows:
        raise ValueError(f"{name} has {X.shape[0]} samples, fewer than the {min_rows} needed")
    return X


def _angle_degrees(a: np.ndarray, b: np.ndarray) -> float:
    """Angle between two arrays seen as vectors (NaN if either is zero)."""
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return float("nan")
    return float(np.degrees(np.arccos(np.clip(np.sum(a * b) / (na * nb), -1.0, 1.0))))


# ------------------------------------------------------------------------------------------------
# Hebbian PCA


@dataclass(frozen=True)
class HebbianResult:
    """Weights learned by a Hebbian PCA rule, and how they converged.

    Attributes
    ----------
    weights : ndarray, shape (k, n_features)
        One row per unit.
    components : ndarray, shape (k, n_features)
        The top ``k`` eigenvectors of the (centred) data's second-moment matrix, for reference.
    eigenvalues : ndarray, shape (k,)
        Their eigenvalues.
    alignment : ndarray, shape (epochs, k)
        After each epoch: ``|cos|`` of the angle between row ``i`` and eigenvector ``i`` (Oja,
        Sanger), or the cosines of the principal angles between the spans of the rows and of
        the top ``k`` eigenvectors, largest first (subspace rule).
    norms : ndarray, shape (epochs, k)
        Norm of every row after each epoch (Oja's rule drives them to 1).
    mean : ndarray, shape (n_features,)
        The mean removed from the data (zeros with ``center=False``).
    """

    weights: np.ndarray
    components: np.ndarray
    eigenvalues: np.ndarray
    alignment: np.ndarray
    norms: np.ndarray
    mean: np.ndarray


def _principal_angles_cosines(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    qa, _ = np.linalg.qr(A.T)
    qb, _ = np.linalg.qr(B.T)
    return np.clip(np.linalg.svd(qa.T @ qb, compute_uv=False), 0.0, 1.0)


def generalized_hebbian(X, n_components: int, *, rule: str = "sanger", learning_rate: float = 0.2,
                        epochs: int = 20, batch_size: int = 10, center: bool = True,
                        seed: int | np.random.Generator | None = 0, report: Report | None = None) -> HebbianResult:
    """Learn the top ``n_components`` principal components with a Hebbian rule.

    Parameters
    ----------
    X : array_like, shape (n_samples, n_features)
    n_components : int
        Units ``k`` (1 with ``rule="sanger"`` is Oja's single-unit rule).
    rule : {"sanger", "subspace"}
        Sanger's generalised Hebbian algorithm, or Oja's symmetric subspace rule.
    learning_rate : float
        Step in units of ``1 / E|x|^2`` (see the module docstring).
    epochs, batch_size : int
        Passes over the samples (in a fresh random order each), and samples per averaged update.
    center : bool
        Remove the mean first (then the rules find principal components of the covariance).
    seed : int or None
        Seeds the initial weights (small random rows) and the sample order.
    report : callable, optional
        ``report(fraction_done, message)`` after every epoch; raising stops learning.

    Returns
    -------
    HebbianResult

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> X = rng.normal(size=(3000, 4)) * [4.0, 2.0, 1.0, 0.5]
    >>> fit = generalized_hebbian(X, 2, epochs=10)
    >>> np.round(np.abs(fit.weights), 1).tolist()
    [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]]
    """
    X = _matrix(X, "X", min_rows=2)
    n, d = X.shape
    k = _count(n_components, "n_components")
    if k > d:
        raise ValueError(f"n_components ({k}) exceeds the {d} features")
    if rule not in ("sanger", "subspace"):
        raise ValueError(f"rule must be 'sanger' or 'subspace', got {rule!r}")
    learning_rate = _positive(learning_rate, "learning_rate")
    epochs = _count(epochs, "epochs")
    batch_size = _count(batch_size, "batch_size")
    if not isinstance(center, bool):
        raise ValueError(f"center must be True or False, got {center!r}")
    mean = X.mean(axis=0) if center else np.zeros(d)
    Xc = X - mean
    power = float(np.mean(np.sum(Xc ** 2, axis=1)))
    if power == 0:
        raise ValueError("X has no variance to learn from")
    second_moment = Xc.T @ Xc / n
    values, vectors = np.linalg.eigh(second_moment)
    components, eigenvalues = vectors[:, ::-1][:, :k].T, values[::-1][:k]

    rng = np.random.default_rng(seed)
    W = rng.normal(0.0, 0.1 / math.sqrt(d), (k, d))
    step0 = learning_rate / power
    n_updates = epochs * -(-n // batch_size)
    alignment = np.empty((epochs, k))
    norms = np.empty((epochs, k))
    lower = np.tril(np.ones((k, k)))
    t = 0
    for epoch in range(epochs):
        order = rng.permutation(n)
        for start in range(0, n, batch_size):
            x = Xc[order[start:start + batch_size]]                 # (b, d)
            y = x @ W.T                                              # (b, k)
            yy = y.T @ y / len(x)
            hebb = y.T @ x / len(x)                                  # <y x^T>
            decay = (yy * lower if rule == "sanger" else yy) @ W
            W = W + step0 / (1.0 + 10.0 * t / n_updates) * (hebb - decay)
            t += 1
        norms[epoch] = np.linalg.norm(W, axis=1)
        if rule == "sanger":
            alignment[epoch] = np.abs(np.sum(W * components, axis=1)) / np.maximum(norms[epoch], 1e-300)
        else:
            alignment[epoch] = _principal_angles_cosines(W, components)
        if report is not None:
            report((epoch + 1) / epochs, f"epoch {epoch + 1} of {epochs}: smallest alignment "
                                         f"{alignment[epoch].min():.4f}")
    return HebbianResult(weights=W, components=components, eigenvalues=eigenvalues, alignment=alignment,
                         norms=norms, mean=mean)


def oja_rule(X, *, learning_rate: float = 0.02, epochs: int = 10, batch_size: int = 1, center: bool = True,
             seed: int | np.random.Generator | None = 0, report: Report | None = None) -> HebbianResult:
    """Oja's single-unit rule ``dw = eta y (x - y w)``: the first principal component, at unit norm.

    The online rule (one sample per update) by default, hence the smaller default step than
    :func:`generalized_hebbian`'s (which averages minibatches): single samples make noisy steps,
    and the weight fluctuates about the component by an angle that grows with the step. See
    :func:`generalized_hebbian` for the parameters. ``weights`` has one row.

    Examples
    --------
    >>> X = np.random.default_rng(0).normal(size=(1000, 2)) @ [[2.0, 1.0], [0.0, 0.5]]
    >>> fit = oja_rule(X, epochs=3)
    >>> bool(fit.alignment[-1, 0] > 0.99), bool(abs(fit.norms[-1, 0] - 1) < 0.05)
    (True, True)
    """
    return generalized_hebbian(X, 1, rule="sanger", learning_rate=learning_rate, epochs=epochs,
                               batch_size=batch_size, center=center, seed=seed, report=report)


# ------------------------------------------------------------------------------------------------
# two-layer networks


def _phi(a: np.ndarray, activation: str) -> tuple[np.ndarray, np.ndarray]:
    """Rates and their slopes."""
    if activation == "tanh":
        h = np.tanh(a)
        return h, 1.0 - h ** 2
    if activation == "relu":
        return np.maximum(a, 0.0), (a > 0).astype(float)
    return a, np.ones_like(a)


@dataclass(frozen=True)
class TwoLayerResult:
    """A two-layer network trained with one rule, and its learning curves.

    Attributes
    ----------
    rule : str
    weights : dict of ndarray
        ``W1`` (n_hidden, n_in), ``b1``, ``W2`` (n_out, n_hidden), ``b2``, and ``B`` (n_hidden,
        n_out), the fixed feedback matrix (used by feedback alignment only).
    train_loss : ndarray, shape (epochs + 1,)
        Mean of ``1/2 |y - t|^2`` over the training samples before training and after each epoch.
    test_loss : ndarray, shape (epochs + 1,)
        The same on the test samples (NaN without them).
    update_angle : ndarray, shape (epochs + 1,)
        Angle, in degrees, between the hidden-layer weight update the rule delivers summed over
        the whole training set (for node perturbation: from one jittered run of each sample)
        and the backprop gradient's descent direction, at the weights of that moment: 0 for
        backprop.
    feedback_angle : ndarray, shape (epochs + 1,)
        Angle between ``W2^T`` and ``B`` (degrees); NaN for the other rules.
    """

    rule: str
    weights: dict[str, np.ndarray]
    train_loss: np.ndarray
    test_loss: np.ndarray
    update_angle: np.ndarray
    feedback_angle: np.ndarray


def _initial_weights(n_in: int, n_hidden: int, n_out: int, rng: np.random.Generator,
                     scale: float = 1.0) -> dict[str, np.ndarray]:
    """Gaussian weights of sd ``scale / sqrt(fan-in)``; the feedback matrix ``B`` at full scale."""
    return {"W1": rng.normal(0.0, scale / math.sqrt(n_in), (n_hidden, n_in)), "b1": np.zeros(n_hidden),
            "W2": rng.normal(0.0, scale / math.sqrt(n_hidden), (n_out, n_hidden)), "b2": np.zeros(n_out),
            "B": rng.normal(0.0, 1.0 / math.sqrt(n_out), (n_hidden, n_out))}


def _forward(w, X, activation):
    a1 = X @ w["W1"].T + w["b1"]
    h, slope = _phi(a1, activation)
    return a1, h, slope, h @ w["W2"].T + w["b2"]


def _loss(w, X, Y, activation) -> float:
    return float(0.5 * np.mean(np.sum((_forward(w, X, activation)[3] - Y) ** 2, axis=1)))


def _hidden_deltas(w, e, slope, rule):
    """Error signals at the hidden layer (descent direction = -delta)."""
    if rule == "feedback_alignment":
        return (e @ w["B"].T) * slope
    return (e @ w["W2"]) * slope


def _check_xy(X, Y, name_x="X", name_y="Y"):
    X = _matrix(X, name_x)
    Y = _matrix(Y, name_y)
    if len(X) != len(Y):
        raise ValueError(f"{name_x} and {name_y} must have one row per sample, got {len(X)} and {len(Y)} rows")
    return X, Y


def train_two_layer(X, Y, *, rule: str = "backprop", n_hidden: int = 20, activation: str = "linear",
                    epochs: int = 50, batch_size: int = 10, learning_rate: float = 0.01,
                    perturbation_sd: float = 0.1, X_test=None, Y_test=None, initial_weights=None,
                    init_scale: float = 0.1, seed: int | np.random.Generator | None = 0,
                    report: Report | None = None) -> TwoLayerResult:
    """Train ``y = W2 phi(W1 x + b1) + b2`` on ``(X, Y)`` with backprop, feedback alignment or node perturbation.

    Parameters
    ----------
    X : array_like, shape (n_samples, n_in)
    Y : array_like, shape (n_samples, n_out)
    rule : {"backprop", "feedback_alignment", "three_factor"}
        See the module docstring.
    n_hidden : int
    activation : {"linear", "tanh", "relu"}
    epochs, batch_size : int
        Passes over the samples in a fresh random order each, and samples per averaged update.
    learning_rate : float
        Step of every update (node perturbation usually wants a smaller one: its estimate of the
        gradient is noisy).
    perturbation_sd : float
        Sd of the rate jitter of node perturbation.
    X_test, Y_test : array_like, optional
        Samples for the test loss.
    initial_weights : dict, optional
        ``W1, b1, W2, b2, B`` to start from (copied), e.g. from another result, so several rules
        start alike; by default drawn from ``seed``.
    init_scale : float
        The initial forward weights have sd ``init_scale / sqrt(fan-in)`` (``B`` has sd
        ``1 / sqrt(n_out)``). Small, as Lillicrap et al. start them: the forward weights then come
        to be dominated by what they learn, which is what aligns ``W2`` with ``B^T``. (From sd
        ``1 / sqrt(fan-in)`` the random start persists and the angles stay near 60 degrees.)
    seed : int or None
        Seeds the initial weights (when not given), the sample order and the jitter.
    report : callable, optional
        ``report(fraction_done, message)`` after every epoch; raising stops training.

    Returns
    -------
    TwoLayerResult

    Examples
    --------
    >>> X, Y, _ = linear_teacher_task(n_samples=500, n_in=6, n_out=3, seed=0)
    >>> bp = train_two_layer(X, Y, rule="backprop", epochs=20)
    >>> fa = train_two_layer(X, Y, rule="feedback_alignment", epochs=20)
    >>> bool(bp.train_loss[-1] < 0.05 * bp.train_loss[0]), bool(fa.train_loss[-1] < 0.05 * fa.train_loss[0])
    (True, True)
    >>> bool(fa.update_angle[-1] < 90)
    True
    """
    X, Y = _check_xy(X, Y)
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    n_hidden = _count(n_hidden, "n_hidden")
    epochs = _count(epochs, "epochs")
    batch_size = _count(batch_size, "batch_size")
    learning_rate = _positive(learning_rate, "learning_rate")
    perturbation_sd = _positive(perturbation_sd, "perturbation_sd")
    has_test = X_test is not None or Y_test is not None
    if has_test:
        if X_test is None or Y_test is None:
            raise ValueError("X_test and Y_test go together")
        X_test, Y_test = _check_xy(X_test, Y_test, "X_test", "Y_test")
        if X_test.shape[1] != X.shape[1] or Y_test.shape[1] != Y.shape[1]:
            raise ValueError(f"X_test and Y_test must have {X.shape[1]} and {Y.shape[1]} columns like X and Y, "
                             f"got {X_test.shape[1]} and {Y_test.shape[1]}")
    n, n_in = X.shape
    n_out = Y.shape[1]
    rng = np.random.default_rng(seed)
    init_scale = _positive(init_scale, "init_scale")
    if initial_weights is None:
        w = _initial_weights(n_in, n_hidden, n_out, rng, init_scale)
    else:
        expected = {"W1": (n_hidden, n_in), "b1": (n_hidden,), "W2": (n_out, n_hidden), "b2": (n_out,),
                    "B": (n_hidden, n_out)}
        try:
            w = {key: np.array(initial_weights[key], dtype=float) for key in expected}
        except KeyError as missing:
            raise ValueError(f"initial_weights lacks {missing}") from None
        for key, shape in expected.items():
            if w[key].shape != shape:
                raise ValueError(f"initial_weights[{key!r}] must have shape {shape}, got {w[key].shape}")

    def diagnostics():
        a1, h, slope, y = _forward(w, X, activation)
        e = y - Y
        gradient = (e @ w["W2"]) * slope                            # backprop's dL/da1 per sample
        if rule == "three_factor":
            # one jittered run of every training sample: the rule's own (noisy) estimate of the gradient
            xi1 = perturbation_sd * probe_rng.standard_normal(a1.shape)
            xi2 = perturbation_sd * probe_rng.standard_normal(y.shape)
            y_jittered = _phi(a1 + xi1, activation)[0] @ w["W2"].T + w["b2"] + xi2
            modulator = (-0.5 * np.sum((y_jittered - Y) ** 2, axis=1) + 0.5 * np.sum(e ** 2, axis=1)) / variance
            delivered = -modulator[:, None] * xi1
        else:
            delivered = _hidden_deltas(w, e, slope, rule)
        angle = _angle_degrees(delivered.T @ X, gradient.T @ X)
        feedback = _angle_degrees(w["W2"].T, w["B"]) if rule == "feedback_alignment" else float("nan")
        test = _loss(w, X_test, Y_test, activation) if has_test else float("nan")
        return float(0.5 * np.mean(np.sum(e ** 2, axis=1))), test, angle, feedback

    variance = perturbation_sd ** 2
    # the diagnostics draw their own jitter, so measuring does not change what is learned
    probe_rng = np.random.default_rng(rng.integers(2 ** 63))
    train_loss = np.empty(epochs + 1)
    test_loss = np.empty(epochs + 1)
    update_angle = np.empty(epochs + 1)
    feedback_angle = np.empty(epochs + 1)
    train_loss[0], test_loss[0], update_angle[0], feedback_angle[0] = diagnostics()
    for epoch in range(epochs):
        order = rng.permutation(n)
        for start in range(0, n, batch_size):
            x, t = X[order[start:start + batch_size]], Y[order[start:start + batch_size]]
            b = len(x)
            a1, h, slope, y = _forward(w, x, activation)
            if rule == "three_factor":
                # jitter every unit's input current; eligibility = jitter x presynaptic rate;
                # modulator = reward - expected reward (that of the same input without jitter)
                xi1 = perturbation_sd * rng.standard_normal(a1.shape)
                h_jittered = _phi(a1 + xi1, activation)[0]
                xi2 = perturbation_sd * rng.standard_normal(y.shape)
                y_jittered = h_jittered @ w["W2"].T + w["b2"] + xi2
                reward = -0.5 * np.sum((y_jittered - t) ** 2, axis=1)
                expected_reward = -0.5 * np.sum((y - t) ** 2, axis=1)
                modulator = (reward - expected_reward)[:, None] / variance
                w["W2"] += learning_rate * (modulator * xi2).T @ h_jittered / b
                w["b2"] += learning_rate * np.mean(modulator * xi2, axis=0)
                w["W1"] += learning_rate * (modulator * xi1).T @ x / b
                w["b1"] += learning_rate * np.mean(modulator * xi1, axis=0)
            else:
                e = y - t
                delta1 = _hidden_deltas(w, e, slope, rule)
                w["W2"] -= learning_rate * e.T @ h / b
                w["b2"] -= learning_rate * e.mean(axis=0)
                w["W1"] -= learning_rate * delta1.T @ x / b
                w["b1"] -= learning_rate * delta1.mean(axis=0)
        train_loss[epoch + 1], test_loss[epoch + 1], update_angle[epoch + 1], feedback_angle[epoch + 1] = diagnostics()
        if not np.isfinite(train_loss[epoch + 1]):
            raise FloatingPointError(f"the loss diverged at epoch {epoch + 1} with rule {rule!r}; "
                                     f"lower learning_rate")
        if report is not None:
            report((epoch + 1) / epochs, f"{rule}, epoch {epoch + 1} of {epochs}: loss {train_loss[epoch + 1]:.4g}")
    return TwoLayerResult(rule=rule, weights=w, train_loss=train_loss, test_loss=test_loss,
                          update_angle=update_angle, feedback_angle=feedback_angle)


def linear_teacher_task(*, n_samples: int = 1000, n_in: int = 10, n_out: int = 5, noise_sd: float = 0.1,
                        seed: int | np.random.Generator | None = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Samples of a linear teacher ``t = T x + noise``, ``x ~ N(0, I)``: returns ``X``, ``Y`` and ``T``.

    Examples
    --------
    >>> X, Y, T = linear_teacher_task(n_samples=4, n_in=3, n_out=2)
    >>> X.shape, Y.shape, T.shape
    ((4, 3), (4, 2), (2, 3))
    """
    n_samples = _count(n_samples, "n_samples")
    n_in = _count(n_in, "n_in")
    n_out = _count(n_out, "n_out")
    noise_sd = _positive(noise_sd, "noise_sd", allow_zero=True)
    rng = np.random.default_rng(seed)
    T = rng.normal(0.0, 1.0 / math.sqrt(n_in), (n_out, n_in))
    X = rng.normal(size=(n_samples, n_in))
    return X, X @ T.T + noise_sd * rng.normal(size=(n_samples, n_out)), T


def compare_learning_rules(X, Y, *, rules=RULES, n_hidden: int = 20, activation: str = "linear",
                           epochs: int = 50, batch_size: int = 10, learning_rates=None,
                           perturbation_sd: float = 0.1, X_test=None, Y_test=None, init_scale: float = 0.1,
                           seed: int | np.random.Generator | None = 0,
                           report: Report | None = None) -> dict[str, object]:
    """Train the same two-layer network with each rule and return their learning curves side by side.

    Every rule starts from the same initial weights (and feedback matrix) drawn from ``seed`` and
    sees the same data; ``learning_rates`` maps rule names to steps (default 0.01 for backprop
    and feedback alignment, 0.002 for node perturbation, whose gradient estimate is noisy).

    Returns
    -------
    dict
        ``results``: rule -> :class:`TwoLayerResult`; ``train_loss`` and ``test_loss``: rule ->
        curve, shape (epochs + 1,); ``least_squares_loss``: the training loss of the best affine
        map from ``X`` to ``Y`` (the floor of a linear network; a nonlinear one may go below it).

    Examples
    --------
    >>> X, Y, _ = linear_teacher_task(n_samples=300, n_in=5, n_out=2, seed=1)
    >>> out = compare_learning_rules(X, Y, epochs=5)
    >>> sorted(out["train_loss"]), out["train_loss"]["backprop"].shape
    (['backprop', 'feedback_alignment', 'three_factor'], (6,))
    """
    X, Y = _check_xy(X, Y)
    rules = tuple(rules)
    if not rules or any(r not in RULES for r in rules):
        raise ValueError(f"rules must be a non-empty selection of {RULES}, got {rules!r}")
    rates = {"backprop": 0.01, "feedback_alignment": 0.01, "three_factor": 0.002}
    if learning_rates is not None:
        unknown = set(learning_rates) - set(RULES)
        if unknown:
            raise ValueError(f"learning_rates names unknown rules {sorted(unknown)}")
        rates.update(learning_rates)
    rng = np.random.default_rng(seed)
    start = _initial_weights(X.shape[1], _count(n_hidden, "n_hidden"), Y.shape[1], rng,
                             _positive(init_scale, "init_scale"))
    streams = rng.spawn(len(rules))
    results = {}
    for i, rule in enumerate(rules):
        def sub_report(fraction, message, _i=i):
            if report is not None:
                report((_i + fraction) / len(rules), message)

        results[rule] = train_two_layer(X, Y, rule=rule, n_hidden=n_hidden, activation=activation, epochs=epochs,
                                        batch_size=batch_size, learning_rate=rates[rule],
                                        perturbation_sd=perturbation_sd, X_test=X_test, Y_test=Y_test,
                                        initial_weights=start, seed=streams[i], report=sub_report)
    design = np.hstack([X, np.ones((len(X), 1))])
    coef, *_ = np.linalg.lstsq(design, Y, rcond=None)
    least_squares = float(0.5 * np.mean(np.sum((design @ coef - Y) ** 2, axis=1)))
    return {"results": results, "train_loss": {r: res.train_loss for r, res in results.items()},
            "test_loss": {r: res.test_loss for r, res in results.items()}, "least_squares_loss": least_squares}


# ------------------------------------------------------------------------------------------------
# a single-layer three-factor learner


@dataclass(frozen=True)
class AssociationResult:
    """A linear association learned from reward alone.

    Attributes
    ----------
    weights : ndarray, shape (n_out, n_in)
    reward : ndarray, shape (epochs,)
        Mean reward ``-1/2 |y - t|^2`` of the jittered responses during each epoch.
    weight_error : ndarray, shape (epochs,)
        ``|W - W*| / |W*|`` after each epoch, ``W*`` the least-squares map (the answer).
    optimum : ndarray, shape (n_out, n_in)
        ``W*``.
    """

    weights: np.ndarray
    reward: np.ndarray
    weight_error: np.ndarray
    optimum: np.ndarray


def three_factor_association(X, targets, *, learning_rate: float = 0.02, epochs: int = 30, batch_size: int = 1,
                             perturbation_sd: float = 0.2, baseline: str = "unperturbed", baseline_rate: float = 0.05,
                             seed: int | np.random.Generator | None = 0,
                             report: Report | None = None) -> AssociationResult:
    """Learn ``t = W x`` with a reward-modulated Hebbian (three-factor) rule.

    On each trial the layer answers ``y = W x + xi`` (``xi``: exploratory noise of sd
    ``perturbation_sd``) and receives only a scalar reward ``R = -1/2 |y - t|^2``. Each synapse
    keeps the eligibility ``xi_i x_j`` (postsynaptic fluctuation times presynaptic rate) and
    changes by ``learning_rate * (R - R_bar) * xi_i x_j / (perturbation_sd^2 E|x|^2)``: no teacher
    signal ever reaches a synapse. ``R_bar``, the expected reward the modulator is measured
    against, is

    * ``"unperturbed"``: the reward of the same trial's response without the noise (a critic
      that knows the stimulus; low variance);
    * ``"running"``: a running average of past rewards, updated with rate ``baseline_rate``
      (a critic that knows nothing of the stimulus; unbiased too, as the baseline does not
      depend on this trial's noise, but noisier, so it learns more slowly).

    In expectation the update ascends the reward, so ``W`` converges to the least-squares map.

    Examples
    --------
    >>> X, Y, T = linear_teacher_task(n_samples=400, n_in=3, n_out=2, noise_sd=0.0, seed=2)
    >>> fit = three_factor_association(X, Y, epochs=20)
    >>> bool(fit.weight_error[-1] < 0.1), bool(fit.reward[-1] > fit.reward[0])
    (True, True)
    """
    X, Y = _check_xy(X, targets, "X", "targets")
    learning_rate = _positive(learning_rate, "learning_rate")
    epochs = _count(epochs, "epochs")
    batch_size = _count(batch_size, "batch_size")
    perturbation_sd = _positive(perturbation_sd, "perturbation_sd")
    if baseline not in ("unperturbed", "running"):
        raise ValueError(f"baseline must be 'unperturbed' or 'running', got {baseline!r}")
    baseline_rate = _positive(baseline_rate, "baseline_rate")
    if baseline_rate > 1:
        raise ValueError(f"baseline_rate must be in (0, 1], got {baseline_rate}")
    n, n_in = X.shape
    n_out = Y.shape[1]
    optimum = np.linalg.lstsq(X, Y, rcond=None)[0].T
    rng = np.random.default_rng(seed)
    W = np.zeros((n_out, n_in))
    variance = perturbation_sd ** 2
    reward_curve = np.empty(epochs)
    error_curve = np.empty(epochs)
    scale = 1.0 / float(np.mean(np.sum(X ** 2, axis=1)))          # keeps the step scale-free
    running = None
    for epoch in range(epochs):
        order = rng.permutation(n)
        total = 0.0
        for start in range(0, n, batch_size):
            x, t = X[order[start:start + batch_size]], Y[order[start:start + batch_size]]
            clean = x @ W.T
            xi = perturbation_sd * rng.standard_normal(clean.shape)
            reward = -0.5 * np.sum((clean + xi - t) ** 2, axis=1)
            if baseline == "unperturbed":
                expected = -0.5 * np.sum((clean - t) ** 2, axis=1)
            else:
                if running is None:
                    running = float(reward.mean())
                expected = np.full(len(x), running)
                running += baseline_rate * (float(reward.mean()) - running)
            modulator = (reward - expected)[:, None] / variance
            W += learning_rate * scale * (modulator * xi).T @ x / len(x)
            total += float(reward.sum())
        reward_curve[epoch] = total / n
        error_curve[epoch] = np.linalg.norm(W - optimum) / max(np.linalg.norm(optimum), 1e-300)
        if not np.isfinite(error_curve[epoch]):
            raise FloatingPointError(f"the weights diverged at epoch {epoch + 1}; lower learning_rate")
        if report is not None:
            report((epoch + 1) / epochs, f"epoch {epoch + 1} of {epochs}: mean reward {reward_curve[epoch]:.4g}")
    return AssociationResult(weights=W, reward=reward_curve, weight_error=error_curve, optimum=optimum)
