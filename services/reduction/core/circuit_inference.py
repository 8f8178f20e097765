"""Circuit-mechanism inference: fit a recurrent rate network to recordings, then read its dynamics.

The model
---------
A network of ``N`` rate units with state ``x`` (input currents), rates ``phi(x)``, inputs ``u_t``
and outputs ``y_t``, integrated with Euler steps of ``dt`` (time constant ``tau``):

``x_{t+1} = F(x_t, u_t) = x_t + (dt / tau) (-x_t + W phi(x_t) + B u_t + b)``,  ``y_t = C phi(x_t) + d``,

from a state ``x_0`` at the start of every trial (:class:`RateNetwork`,
:func:`simulate_rate_network`). ``phi`` is ``tanh``, ``relu``, ``softplus`` or the identity.
Column ``j`` of ``W`` holds the weights *from* unit ``j``, so **Dale's law** (every unit either
excitatory or inhibitory) is the constraint that each column has one sign; it is imposed by
parameterising ``W = |W_raw| diag(signs)`` with fixed ``signs`` of +1 and -1.

Fitting
-------
:func:`fit_rate_network` fits ``W``, ``B``, ``b``, ``C``, ``d`` (and optionally a shared initial
state ``x_0``) to recorded rates of a subset of the units (``observed_units``; the other units
are hidden and inferred only through their effect) and to behaviour (``y``), by
backpropagation through time in torch (on a GPU when there is one). The loss is the mean
squared error of the observed rates and of the behaviour, each divided by the variance of its
data so the two weigh alike, plus ``l2`` times the mean square of ``W``. A seeded random subset
of the trials (``holdout_fraction``) is kept out of the fit, and the fitted network is
evaluated on it by the fraction of variance (``R^2``) of the activity and of the behaviour it
predicts from the inputs alone.

The optimiser is Adam (minibatches, any size of problem) or full-batch L-BFGS. On the test
problem (12 tanh units, all observed with noise of sd 0.02, 48 training trials of 40 steps,
``dt / tau = 0.1``) BPTT is badly conditioned for Adam: after about 5 s of Adam the training
loss is still near 0.02 and the correlation of fitted and true ``W`` about 0.6, while 20
L-BFGS steps (also about 5 s) reach a loss of 0.002, held-out ``R^2`` of 0.997 (activity) and
0.9996 (behaviour), and a correlation of 0.89 (0.95 with Dale's law imposed). A one-step
regression of the differenced, inverted rates on the rates reaches only 0.67 on the same
data: the whole trajectory carries the information, which is why BPTT is worth its cost.

Identifiability: with every unit observed and ``phi`` fixed, ``W`` itself is identified and
is compared entry by entry (:func:`connectivity_correlation`). With hidden units only the
observed block and the input-output behaviour are comparable; and with a ``phi`` that
saturates, :func:`effective_connectivity` (``W diag(mean phi')``) is what the data constrain.

Reading the mechanism
---------------------
:func:`find_fixed_points` looks for the fixed points and slow points of the fitted (or any)
network under a constant input, as Sussillo & Barak (2013, Neural Computation 25:626) do:
minimise ``q(x) = 1/2 |F(x, u) - x|^2`` from many initial states (e.g. :func:`sample_states`
of the trajectories), keep the minima with small ``q`` (``q = 0``: a fixed point; a small
positive minimum: a slow point, where the flow nearly stops), merge those closer than a
tolerance, and linearise there: the Jacobian of the map is
``J = I + (dt / tau) (-I + W diag(phi'(x)))``; its eigenvalues ``m`` give the continuous-time
rates ``(m - 1) / dt`` (per unit time), negative for decaying directions, positive for
growing ones and about 0 for marginal ones (a line attractor has one along the line).

Examples
--------
>>> rng = np.random.default_rng(0)
>>> truth = random_rate_network(6, n_inputs=2, n_outputs=1, gain=1.2, seed=1)
>>> inputs = 0.5 * rng.normal(size=(20, 25, 2))
>>> data = simulate_rate_network(truth, inputs)
>>> data.rates.shape, data.outputs.shape
((20, 25, 6), (20, 25, 1))
>>> fit = fit_rate_network(inputs, data.rates, behaviour=data.outputs, optimizer="lbfgs", epochs=8,
...                        tau=truth.tau, dt=truth.dt, device="cpu", seed=0)
>>> bool(fit.heldout_activity_r2 > 0.95), bool(fit.heldout_behaviour_r2 > 0.95)
(True, True)
>>> points = find_fixed_points(fit.network, sample_states(fit.states, 50, seed=0), device="cpu")
>>> points.points.shape[1], points.eigenvalues.shape[1]
(6, 6)
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from services.common.estimators import check_count, check_real, resolve_device

__all__ = ["RateNetwork", "RateTrajectories", "CircuitFit", "FixedPoints", "ACTIVATIONS", "random_rate_network",
           "simulate_rate_network", "fit_rate_network", "sample_states", "find_fixed_points",
           "effective_connectivity", "connectivity_correlation", "variance_explained"]

#: progress callback: ``report(fraction_done, message)``; an exception it raises stops the work
Report = Callable[[float, str], None]

ACTIVATIONS = ("tanh", "relu", "softplus", "linear")


# ------------------------------------------------------------------------------------------------
# nonlinearities (numpy; the torch ones are in _torch_phi)


def _phi(x: np.ndarray, activation: str) -> np.ndarray:
    if activation == "tanh":
        return np.tanh(x)
    if activation == "relu":
        return np.maximum(x, 0.0)
    if activation == "softplus":
        return np.logaddexp(0.0, x)
    return x


def _phi_prime(x: np.ndarray, activation: str) -> np.ndarray:
    if activation == "tanh":
        return 1.0 - np.tanh(x) ** 2
    if activation == "relu":
        return (x > 0).astype(float)
    if activation == "softplus":
        return 1.0 / (1.0 + np.exp(-x))
    return np.ones_like(x)


def _torch_phi(x, activation: str):
    import torch

    if activation == "tanh":
        return torch.tanh(x)
    if activation == "relu":
        return torch.relu(x)
    if activation == "softplus":
        return torch.nn.functional.softplus(x)
    return x


# ------------------------------------------------------------------------------------------------
# checks


def _array(values, name: str, ndim: int) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must hold real numbers") from None
    if array.ndim != ndim:
        raise ValueError(f"{name} must have rank {ndim}, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty, shape {array.shape}")
    if not np.isfinite(array).all():
        first = tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0])
        raise ValueError(f"{name} holds NaN or infinite values (first at index {first})")
    return array


def _activation(activation) -> str:
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    return activation


def _signs(signs, n_units: int) -> np.ndarray | None:
    if signs is None:
        return None
    s = np.asarray(signs)
    if s.shape != (n_units,) or not np.isin(s, (-1, 1)).all():
        raise ValueError(f"dale_signs must hold +1 (excitatory) or -1 (inhibitory) for each of the {n_units} units, "
                         f"got {signs!r}")
    return s.astype(float)


# ------------------------------------------------------------------------------------------------
# the network


@dataclass
class RateNetwork:
    """A discrete-time recurrent rate network (see the module docstring for the equations).

    Attributes
    ----------
    recurrent : ndarray, shape (N, N)
        ``W``; ``recurrent[i, j]`` is the weight from unit ``j`` to unit ``i``.
    input_weights : ndarray, shape (N, n_inputs)
        ``B``.
    readout : ndarray, shape (n_outputs, N)
        ``C``.
    bias : ndarray, shape (N,)
        ``b``.
    readout_bias : ndarray, shape (n_outputs,)
        ``d``.
    initial_state : ndarray, shape (N,)
        ``x_0``.
    tau, dt : float
        Time constant and step, in the same unit of time.
    activation : str
        One of :data:`ACTIVATIONS`.
    """

    recurrent: np.ndarray
    input_weights: np.ndarray
    readout: np.ndarray
    bias: np.ndarray
    readout_bias: np.ndarray
    initial_state: np.ndarray
    tau: float = 1.0
    dt: float = 0.1
    activation: str = "tanh"

    def __post_init__(self) -> None:
        self.recurrent = _array(self.recurrent, "recurrent", 2)
        n = self.recurrent.shape[0]
        if self.recurrent.shape != (n, n):
            raise ValueError(f"recurrent must be square, got shape {self.recurrent.shape}")
        self.input_weights = np.asarray(self.input_weights, dtype=float).reshape(n, -1)
        self.readout = np.asarray(self.readout, dtype=float).reshape(-1, n)
        self.bias = np.broadcast_to(np.asarray(self.bias, dtype=float), (n,)).copy()
        self.readout_bias = np.broadcast_to(np.asarray(self.readout_bias, dtype=float), (self.readout.shape[0],)).copy()
        self.initial_state = np.broadcast_to(np.asarray(self.initial_state, dtype=float), (n,)).copy()
        for name in ("input_weights", "readout", "bias", "readout_bias", "initial_state"):
            if not np.isfinite(getattr(self, name)).all():
                raise ValueError(f"{name} holds NaN or infinite values")
        self.tau = check_real(self.tau, "tau", low=0.0, low_open=True)
        self.dt = check_real(self.dt, "dt", low=0.0, low_open=True)
        if self.dt > self.tau:
            raise ValueError(f"dt ({self.dt}) must not exceed tau ({self.tau}): Euler steps longer than the time "
                             f"constant overshoot")
        self.activation = _activation(self.activation)

    @property
    def n_units(self) -> int:
        return self.recurrent.shape[0]

    @property
    def n_inputs(self) -> int:
        return self.input_weights.shape[1]

    @property
    def n_outputs(self) -> int:
        return self.readout.shape[0]

    def step(self, x: np.ndarray, u: np.ndarray | None = None) -> np.ndarray:
        """``F(x, u)``: the state one step later (``x`` of shape (..., N), ``u`` of shape (..., n_inputs))."""
        drive = _phi(x, self.activation) @ self.recurrent.T + self.bias
        if u is not None:
            drive = drive + u @ self.input_weights.T
        return x + (self.dt / self.tau) * (drive - x)

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        """Jacobian of the map ``F`` at states ``x`` (..., N): shape (..., N, N)."""
        gain = _phi_prime(np.asarray(x, dtype=float), self.activation)
        eye = np.eye(self.n_units)
        return eye + (self.dt / self.tau) * (self.recurrent * gain[..., None, :] - eye)


def random_rate_network(n_units: int, *, n_inputs: int = 1, n_outputs: int = 1, gain: float = 0.9,
                        activation: str = "tanh", tau: float = 1.0, dt: float = 0.1, dale_signs=None,
                        seed: int | np.random.Generator | None = 0) -> RateNetwork:
    """A random network: ``W`` Gaussian with spectral radius about ``gain`` (entries of sd ``gain / sqrt(N)``).

    With ``dale_signs`` the entries are ``|W| diag(signs)``, each column scaled so the network
    stays balanced (the inhibitory columns by the ratio of excitatory to inhibitory units).

    Examples
    --------
    >>> net = random_rate_network(10, n_inputs=3, n_outputs=2, seed=0)
    >>> net.recurrent.shape, net.input_weights.shape, net.readout.shape
    ((10, 10), (10, 3), (2, 10))
    >>> dale = random_rate_network(10, dale_signs=[1] * 8 + [-1] * 2, seed=0)
    >>> bool((dale.recurrent[:, :8] >= 0).all() and (dale.recurrent[:, 8:] <= 0).all())
    True
    """
    n_units = check_count(n_units, "n_units", 1)
    n_inputs = check_count(n_inputs, "n_inputs", 1)
    n_outputs = check_count(n_outputs, "n_outputs", 1)
    gain = check_real(gain, "gain", low=0.0)
    rng = np.random.default_rng(seed)
    W = rng.normal(0.0, gain / math.sqrt(n_units), (n_units, n_units))
    signs = _signs(dale_signs, n_units)
    if signs is not None:
        n_exc, n_inh = int((signs > 0).sum()), int((signs < 0).sum())
        scale = np.where(signs > 0, 1.0, n_exc / max(n_inh, 1))
        W = np.abs(W) * signs * scale
    return RateNetwork(recurrent=W, input_weights=rng.normal(0.0, 1.0, (n_units, n_inputs)),
                       readout=rng.normal(0.0, 1.0 / math.sqrt(n_units), (n_outputs, n_units)),
                       bias=np.zeros(n_units), readout_bias=np.zeros(n_outputs), initial_state=np.zeros(n_units),
                       tau=tau, dt=dt, activation=activation)


@dataclass(frozen=True)
class RateTrajectories:
    """A simulated run: states, rates and outputs after every step, shape (n_trials, n_steps, ...)."""

    states: np.ndarray
    rates: np.ndarray
    outputs: np.ndarray


def _check_inputs(inputs, n_inputs: int) -> np.ndarray:
    u = _array(inputs, "inputs", np.ndim(inputs) if np.ndim(inputs) in (2, 3) else 3)
    if u.ndim == 2:
        u = u[None]
    if u.shape[-1] != n_inputs:
        raise ValueError(f"inputs must have {n_inputs} channels in the last axis, got shape {u.shape}")
    return u


def simulate_rate_network(network: RateNetwork, inputs, *, initial_state=None, process_noise: float = 0.0,
                          seed: int | np.random.Generator | None = 0) -> RateTrajectories:
    """Run the network on inputs of shape (n_trials, n_steps, n_inputs) (or (n_steps, n_inputs)).

    Step ``t`` takes the state ``x_t`` and input ``u_t`` to ``x_{t+1}``; the arrays hold
    ``x_1 .. x_T`` (the state after each input), their rates and outputs. ``process_noise`` adds
    independent Gaussian noise of that sd times ``sqrt(dt / tau)`` to every unit at every step
    (the Euler-Maruyama form of a white-noise current).

    Examples
    --------
    >>> net = RateNetwork(recurrent=[[0.0]], input_weights=[[1.0]], readout=[[1.0]], bias=0, readout_bias=0,
    ...                   initial_state=0, tau=1.0, dt=0.5, activation="linear")
    >>> simulate_rate_network(net, np.ones((3, 1))).states[0, :, 0].tolist()   # x -> x + 0.5 (1 - x)
    [0.5, 0.75, 0.875]
    """
    if not isinstance(network, RateNetwork):
        raise ValueError(f"network must be a RateNetwork, got {type(network).__name__}")
    u = _check_inputs(inputs, network.n_inputs)
    n_trials, n_steps, _ = u.shape
    x = np.broadcast_to(network.initial_state if initial_state is None
                        else _array(initial_state, "initial_state", np.ndim(initial_state)),
                        (n_trials, network.n_units)).astype(float)
    process_noise = check_real(process_noise, "process_noise", low=0.0)
    rng = np.random.default_rng(seed)
    states = np.empty((n_trials, n_steps, network.n_units))
    noise_scale = process_noise * math.sqrt(network.dt / network.tau)
    for t in range(n_steps):
        x = network.step(x, u[:, t])
        if noise_scale:
            x = x + noise_scale * rng.standard_normal(x.shape)
        states[:, t] = x
    rates = _phi(states, network.activation)
    return RateTrajectories(states=states, rates=rates, outputs=rates @ network.readout.T + network.readout_bias)


# ------------------------------------------------------------------------------------------------
# scores


def variance_explained(target, prediction) -> float:
    """``R^2 = 1 - SS_res / SS_tot`` pooled over all values, ``SS_tot`` about each channel's mean.

    The last axis holds the channels (units, outputs); all other axes are samples.

    Examples
    --------
    >>> variance_explained([[1.0], [2.0], [3.0]], [[1.0], [2.0], [4.0]])
    0.5
    """
    y, p = np.asarray(target, dtype=float), np.asarray(prediction, dtype=float)
    if y.shape != p.shape:
        raise ValueError(f"target and prediction must have one shape, got {y.shape} and {p.shape}")
    flat_y, flat_p = y.reshape(-1, y.shape[-1]), p.reshape(-1, y.shape[-1])
    total = float(np.sum((flat_y - flat_y.mean(axis=0)) ** 2))
    if total == 0:
        raise ValueError("target is constant in every channel: R^2 is undefined")
    return 1.0 - float(np.sum((flat_y - flat_p) ** 2)) / total


def effective_connectivity(network: RateNetwork, states) -> np.ndarray:
    """``W diag(mean phi'(x))``: how strongly a small change of each unit's state moves each other's.

    The mean of ``phi'`` is taken over ``states`` (any shape ending in N), e.g. the trajectories
    of the data; for a linear network it is ``W`` itself.
    """
    s = _array(states, "states", np.ndim(states))
    if s.shape[-1] != network.n_units:
        raise ValueError(f"states must end in {network.n_units} units, got shape {s.shape}")
    gain = _phi_prime(s.reshape(-1, network.n_units), network.activation).mean(axis=0)
    return network.recurrent * gain[None, :]


def connectivity_correlation(true, fitted, *, include_diagonal: bool = True) -> float:
    """Pearson correlation of the entries of two connectivity matrices (optionally off-diagonal only).

    Examples
    --------
    >>> W = np.arange(9.0).reshape(3, 3)
    >>> connectivity_correlation(W, 2 * W + 1)
    1.0
    """
    a, b = _array(true, "true", 2), _array(fitted, "fitted", 2)
    if a.shape != b.shape or a.shape[0] != a.shape[1]:
        raise ValueError(f"true and fitted must be square matrices of one shape, got {a.shape} and {b.shape}")
    mask = np.ones(a.shape, dtype=bool) if include_diagonal else ~np.eye(a.shape[0], dtype=bool)
    x, y = a[mask], b[mask]
    if x.std() == 0 or y.std() == 0:
        raise ValueError("a connectivity matrix is constant: the correlation is undefined")
    return float(np.corrcoef(x, y)[0, 1])


# ------------------------------------------------------------------------------------------------
# fitting


@dataclass(frozen=True)
class CircuitFit:
    """A rate network fitted to recordings, and how well it predicts held-out trials.

    Attributes
    ----------
    network : RateNetwork
        The fitted network (``recurrent`` already signed when Dale's law was imposed).
    observed_units : ndarray of int
        The model units whose rates were recorded, in the order of the activity's last axis.
    loss : ndarray, shape (epochs,)
        Training loss after each epoch (normalised errors plus the L2 term).
    heldout_loss : ndarray, shape (epochs,)
        The same loss (without the L2 term) on the held-out trials (NaN without them).
    train_trials, heldout_trials : ndarray of int
        The trials of each set.
    train_activity_r2, heldout_activity_r2 : float
        :func:`variance_explained` of the observed rates (NaN for an empty set).
    train_behaviour_r2, heldout_behaviour_r2 : float
        The same for the behaviour (NaN without behaviour).
    predicted_activity : ndarray, shape (n_trials, n_steps, n_observed)
        The fitted network's rates of the observed units on every trial, from the inputs alone.
    predicted_behaviour : ndarray, shape (n_trials, n_steps, n_outputs)
        Its outputs (empty last axis without behaviour).
    states : ndarray, shape (n_trials, n_steps, N)
        Its states on every trial (for :func:`sample_states`).
    """

    network: RateNetwork
    observed_units: np.ndarray
    loss: np.ndarray
    heldout_loss: np.ndarray
    train_trials: np.ndarray
    heldout_trials: np.ndarray
    train_activity_r2: float
    heldout_activity_r2: float
    train_behaviour_r2: float
    heldout_behaviour_r2: float
    predicted_activity: np.ndarray
    predicted_behaviour: np.ndarray
    states: np.ndarray = field(repr=False)


def _check_observed(observed_units, n_observed: int, n_units: int | None) -> tuple[np.ndarray, int]:
    if n_units is None:
        n_units = n_observed if observed_units is None else None
    if observed_units is None:
        if n_units < n_observed:
            raise ValueError(f"n_units ({n_units}) is smaller than the {n_observed} recorded units")
        return np.arange(n_observed), n_units
    idx = np.asarray(observed_units)
    if idx.shape != (n_observed,) or not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"observed_units must list one model unit per recorded unit ({n_observed}), "
                         f"got {observed_units!r}")
    if n_units is None:
        raise ValueError("n_units (the model's size) is needed with observed_units")
    n_units = check_count(n_units, "n_units", 1)
    if idx.min() < 0 or idx.max() >= n_units or np.unique(idx).size != idx.size:
        raise ValueError(f"observed_units must be distinct indices in 0 .. {n_units - 1}, got {idx.tolist()}")
    return idx.astype(np.int64), n_units


def fit_rate_network(inputs, activity, *, behaviour=None, observed_units=None, n_units: int | None = None,
                     activation: str = "tanh", tau: float = 1.0, dt: float = 0.1, dale_signs=None,
                     learn_initial_state: bool = False, holdout_fraction: float = 0.2, epochs: int = 500,
                     learning_rate: float = 0.01, batch_size: int | None = None, l2: float = 0.0,
                     behaviour_weight: float = 1.0, max_grad_norm: float = 10.0, init_gain: float = 0.5,
                     optimizer: str = "adam", seed: int = 0, device: str = "auto",
                     report: Report | None = None) -> CircuitFit:
    """Fit a recurrent rate network to recorded rates (and behaviour) by backpropagation through time.

    Parameters
    ----------
    inputs : array_like, shape (n_trials, n_steps, n_inputs)
        The inputs ``u_t`` of every trial.
    activity : array_like, shape (n_trials, n_steps, n_observed)
        Recorded rates ``phi(x_{t+1})`` of the observed units after each input step (as
        :func:`simulate_rate_network` returns them).
    behaviour : array_like, shape (n_trials, n_steps, n_outputs), optional
        Recorded outputs ``y``; fitted through the readout ``C`` when given.
    observed_units : sequence of int, optional
        The model units recorded in ``activity``'s last axis (default: the first
        ``n_observed``); the rest are hidden.
    n_units : int, optional
        Units of the model (default: as many as are recorded).
    activation, tau, dt
        The fixed parts of the model (see :class:`RateNetwork`).
    dale_signs : sequence of +1/-1, optional
        Impose Dale's law with these unit signs.
    learn_initial_state : bool
        Fit one initial state shared by all trials (else every trial starts at 0).
    holdout_fraction : float
        Fraction of the trials kept out for evaluation, in [0, 1).
    epochs, learning_rate, batch_size
        With Adam: passes over the training trials in minibatches of ``batch_size`` (default:
        all of them) in a fresh random order each epoch, the learning rate decaying along a
        cosine to a tenth of ``learning_rate``. With L-BFGS: full-batch steps of up to 20
        evaluations each (``learning_rate`` and ``batch_size`` unused).
    l2 : float
        Weight of the mean square of ``W`` in the loss.
    behaviour_weight : float
        Weight of the behaviour's normalised error against the activity's.
    max_grad_norm : float
        Adam's gradients are clipped to this norm (BPTT has rare, huge gradients).
    init_gain : float
        Spectral radius, roughly, of the initial random ``W``.
    optimizer : {"adam", "lbfgs"}
        Adam (stochastic, any size) or full-batch L-BFGS in float64, which on small networks
        reaches a far lower loss in the same time (see the module docstring).
    seed : int
        Seeds the split, the initial weights and the batch order.
    device : {"auto", "cpu", "cuda"}
        Where torch computes (``"auto"``: CUDA when available).
    report : callable, optional
        ``report(fraction_done, message)`` after every tenth of the epochs; raising stops the fit.

    Returns
    -------
    CircuitFit
    """
    import torch

    u = _array(inputs, "inputs", 3)
    n_trials, n_steps, n_inputs = u.shape
    a = _array(activity, "activity", 3)
    if a.shape[:2] != (n_trials, n_steps):
        raise ValueError(f"activity must have shape ({n_trials}, {n_steps}, n_observed) like inputs, got {a.shape}")
    y = None
    if behaviour is not None:
        y = _array(behaviour, "behaviour", 3)
        if y.shape[:2] != (n_trials, n_steps):
            raise ValueError(f"behaviour must have shape ({n_trials}, {n_steps}, n_outputs) like inputs, "
                             f"got {y.shape}")
    observed, n_units = _check_observed(observed_units, a.shape[2], n_units)
    activation = _activation(activation)
    tau = check_real(tau, "tau", low=0.0, low_open=True)
    dt = check_real(dt, "dt", low=0.0, low_open=True)
    if dt > tau:
        raise ValueError(f"dt ({dt}) must not exceed tau ({tau})")
    signs = _signs(dale_signs, n_units)
    holdout_fraction = check_real(holdout_fraction, "holdout_fraction", low=0.0, high=1.0)
    epochs = check_count(epochs, "epochs", 1)
    learning_rate = check_real(learning_rate, "learning_rate", low=0.0, low_open=True)
    l2 = check_real(l2, "l2", low=0.0)
    behaviour_weight = check_real(behaviour_weight, "behaviour_weight", low=0.0)
    max_grad_norm = check_real(max_grad_norm, "max_grad_norm", low=0.0, low_open=True)
    init_gain = check_real(init_gain, "init_gain", low=0.0)
    seed = check_count(seed, "seed", 0)
    if optimizer not in ("adam", "lbfgs"):
        raise ValueError(f"optimizer must be 'adam' or 'lbfgs', got {optimizer!r}")
    if not isinstance(learn_initial_state, bool):
        raise ValueError(f"learn_initial_state must be True or False, got {learn_initial_state!r}")
    n_heldout = int(round(holdout_fraction * n_trials))
    if n_trials - n_heldout < 1:
        raise ValueError(f"no training trials left: {n_trials} trials, holdout_fraction {holdout_fraction}")
    batch_size = n_trials - n_heldout if batch_size is None else check_count(batch_size, "batch_size", 1)
    dev = resolve_device(device, fitting=True)

    rng = np.random.default_rng(seed)
    order = rng.permutation(n_trials)
    heldout, train = np.sort(order[:n_heldout]), np.sort(order[n_heldout:])
    n_outputs = 0 if y is None else y.shape[2]
    # L-BFGS's line search needs the precision; Adam's noisy steps do not
    dtype = torch.float64 if optimizer == "lbfgs" else torch.float32
    as_t = lambda v: torch.as_tensor(np.ascontiguousarray(v), dtype=dtype, device=dev)  # noqa: E731
    W0 = rng.normal(0.0, init_gain / math.sqrt(n_units), (n_units, n_units))
    if signs is not None:
        W0 = np.abs(W0)
    params = {
        "W": as_t(W0), "B": as_t(rng.normal(0.0, 1.0 / math.sqrt(n_inputs), (n_units, n_inputs))),
        "b": as_t(np.zeros(n_units)), "x0": as_t(np.zeros(n_units)),
        "C": as_t(rng.normal(0.0, 1.0 / math.sqrt(n_units), (max(n_outputs, 1), n_units))),
        "d": as_t(np.zeros(max(n_outputs, 1)) if y is None else y.reshape(-1, n_outputs).mean(axis=0)),
    }
    trainable = ["W", "B", "b"] + (["C", "d"] if y is not None else []) + (["x0"] if learn_initial_state else [])
    for name in trainable:
        params[name].requires_grad_(True)
    sign_t = None if signs is None else as_t(signs)
    obs_t = torch.as_tensor(observed, device=dev)
    U, A = as_t(u), as_t(a)
    Y = None if y is None else as_t(y)
    # each error is divided by the variance of its data so activity and behaviour weigh alike
    a_var = float(np.var(a[train])) or 1.0
    y_var = 1.0 if y is None else (float(np.var(y[train])) or 1.0)
    alpha = dt / tau

    def recurrent():
        return params["W"] if sign_t is None else params["W"].abs() * sign_t

    def run(idx):
        W, B, b = recurrent(), params["B"], params["b"]
        x = params["x0"].expand(len(idx), n_units)
        drive_in = U[idx] @ B.T + b                           # (batch, steps, N)
        states = []
        for t in range(n_steps):
            x = x + alpha * (-x + _torch_phi(x, activation) @ W.T + drive_in[:, t])
            states.append(x)
        return torch.stack(states, dim=1)

    def losses(idx):
        states = run(idx)
        rates = _torch_phi(states, activation)
        loss = torch.mean((rates[..., obs_t] - A[idx]) ** 2) / a_var
        outputs = None
        if Y is not None:
            outputs = rates @ params["C"].T + params["d"]
            loss = loss + behaviour_weight * torch.mean((outputs - Y[idx]) ** 2) / y_var
        return loss, states, rates, outputs

    def objective(idx):
        loss = losses(idx)[0]
        return loss + l2 * torch.mean(recurrent() ** 2) if l2 else loss

    weights = [params[n] for n in trainable]
    heldout_t = torch.as_tensor(heldout, device=dev)
    loss_curve = np.empty(epochs)
    heldout_curve = np.full(epochs, np.nan)
    every = max(1, epochs // 10)
    if optimizer == "adam":
        optimiser = torch.optim.Adam(weights, lr=learning_rate)
        n_batches = -(-train.size // batch_size)
        # cosine decay to a tenth: large early steps, then settling into the minimum
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimiser, lambda step: 0.1 + 0.45 * (1.0 + math.cos(math.pi * min(step / (epochs * n_batches), 1.0))))
    else:
        # full batch: each epoch is one L-BFGS step of up to 20 evaluations with a Wolfe line search
        optimiser = torch.optim.LBFGS(weights, lr=1.0, max_iter=20, history_size=20, line_search_fn="strong_wolfe")
        train_all = torch.as_tensor(train, device=dev)
    batch_rng = np.random.default_rng(seed + 1)
    for epoch in range(epochs):
        if optimizer == "adam":
            perm = train[batch_rng.permutation(train.size)]
            total = 0.0
            for start in range(0, perm.size, batch_size):
                idx = torch.as_tensor(perm[start:start + batch_size], device=dev)
                optimiser.zero_grad()
                loss = objective(idx)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(weights, max_grad_norm)
                optimiser.step()
                scheduler.step()
                total += float(loss.detach()) * len(idx)
            loss_curve[epoch] = total / perm.size
        else:
            def closure():
                optimiser.zero_grad()
                value = objective(train_all)
                value.backward()
                return value

            optimiser.step(closure)
            with torch.no_grad():
                loss_curve[epoch] = float(objective(train_all))
        if not np.isfinite(loss_curve[epoch]):
            raise FloatingPointError(f"the training loss became {loss_curve[epoch]} at epoch {epoch + 1}; "
                                     f"lower learning_rate")
        if n_heldout:
            with torch.no_grad():
                heldout_curve[epoch] = float(losses(heldout_t)[0])
        if report is not None and ((epoch + 1) % every == 0 or epoch + 1 == epochs):
            report((epoch + 1) / epochs, f"epoch {epoch + 1} of {epochs}: training loss {loss_curve[epoch]:.4g}")

    with torch.no_grad():
        _, states_t, rates_t, outputs_t = losses(torch.arange(n_trials, device=dev))
        states = states_t.double().cpu().numpy()
        predicted = rates_t[..., obs_t].double().cpu().numpy()
        outputs = (np.empty((n_trials, n_steps, 0)) if outputs_t is None else outputs_t.double().cpu().numpy())
        fitted = {k: v.detach().double().cpu().numpy() for k, v in params.items()}
        fitted["W"] = recurrent().detach().double().cpu().numpy()

    def r2(target, pred, rows):
        return variance_explained(target[rows], pred[rows]) if rows.size else float("nan")

    network = RateNetwork(recurrent=fitted["W"], input_weights=fitted["B"],
                          readout=fitted["C"] if y is not None else np.zeros((0, n_units)), bias=fitted["b"],
                          readout_bias=fitted["d"] if y is not None else np.zeros(0), initial_state=fitted["x0"],
                          tau=tau, dt=dt, activation=activation)
    return CircuitFit(network=network, observed_units=observed, loss=loss_curve, heldout_loss=heldout_curve,
                      train_trials=train, heldout_trials=heldout,
                      train_activity_r2=r2(a, predicted, train), heldout_activity_r2=r2(a, predicted, heldout),
                      train_behaviour_r2=r2(y, outputs, train) if y is not None else float("nan"),
                      heldout_behaviour_r2=r2(y, outputs, heldout) if y is not None else float("nan"),
                      predicted_activity=predicted, predicted_behaviour=outputs, states=states)


# ------------------------------------------------------------------------------------------------
# fixed points and slow points


@dataclass(frozen=True)
class FixedPoints:
    """Fixed and slow points of a network under a constant input, and their linearisations.

    Attributes
    ----------
    points : ndarray, shape (k, N)
        The distinct minima of ``q`` kept (``q <= keep_tolerance``), ordered by ``q``.
    q : ndarray, shape (k,)
        ``1/2 |F(x) - x|^2`` at each.
    speed : ndarray, shape (k,)
        ``|F(x) - x| / dt``: how fast the state still moves there (state units per unit time).
    is_fixed : ndarray of bool, shape (k,)
        ``q <= fixed_tolerance``; the others are slow points.
    jacobians : ndarray, shape (k, N, N)
        Jacobian of the map ``F`` at each point.
    map_eigenvalues : ndarray of complex, shape (k, N)
        Its eigenvalues ``m``, ordered by decreasing real part of ``(m - 1) / dt``.
    eigenvalues : ndarray of complex, shape (k, N)
        The continuous-time rates ``(m - 1) / dt`` (per unit time), same order.
    eigenvectors : ndarray of complex, shape (k, N, N)
        ``eigenvectors[i, :, j]`` is the right eigenvector of ``eigenvalues[i, j]``.
    n_unstable, n_marginal, n_stable : ndarray of int, shape (k,)
        Directions with ``Re(eigenvalue) tau`` above ``marginal_tolerance``, within it of 0, and below.
    stability : ndarray of str, shape (k,)
        ``"stable"`` (all directions decay), ``"marginal"`` (none grows, some neither grow nor
        decay), ``"saddle"`` (some grow, some decay) or ``"unstable"`` (none decays).
    candidates, candidate_q : ndarray
        Every optimised state before merging, shape (n, N), and its ``q``.
    """

    points: np.ndarray
    q: np.ndarray
    speed: np.ndarray
    is_fixed: np.ndarray
    jacobians: np.ndarray
    map_eigenvalues: np.ndarray
    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    n_unstable: np.ndarray
    n_marginal: np.ndarray
    n_stable: np.ndarray
    stability: np.ndarray
    candidates: np.ndarray
    candidate_q: np.ndarray


def sample_states(states, n_states: int, *, noise_sd: float = 0.0,
                  seed: int | np.random.Generator | None = 0) -> np.ndarray:
    """``n_states`` states drawn at random (with replacement) from trajectories, plus optional noise.

    ``states`` is any array ending in the units axis, e.g. (n_trials, n_steps, N).

    Examples
    --------
    >>> sample_states(np.zeros((4, 10, 3)), 5, noise_sd=0.1).shape
    (5, 3)
    """
    s = _array(states, "states", np.ndim(states))
    n_states = check_count(n_states, "n_states", 1)
    noise_sd = check_real(noise_sd, "noise_sd", low=0.0)
    flat = s.reshape(-1, s.shape[-1])
    rng = np.random.default_rng(seed)
    picked = flat[rng.integers(0, len(flat), n_states)]
    return picked + noise_sd * rng.standard_normal(picked.shape) if noise_sd else picked.copy()


def _polish(network: RateNetwork, x: np.ndarray, drive: np.ndarray, n_iterations: int) -> np.ndarray:
    """Levenberg-Marquardt on ``h(x) = F(x) - x`` for every row of ``x`` at once."""
    alpha = network.dt / network.tau
    eye = np.eye(network.n_units)

    def residual(states):
        return alpha * (-states + _phi(states, network.activation) @ network.recurrent.T + drive)

    h = residual(x)
    cost = np.sum(h ** 2, axis=1)
    damping = np.full(len(x), 1e-3)
    for _ in range(n_iterations):
        J = network.jacobian(x) - eye                                   # dh/dx, (n, N, N)
        JTJ = np.einsum("nki,nkj->nij", J, J)
        scale = np.einsum("nii->ni", JTJ).mean(axis=1) + 1e-300          # keeps the damping scale-free
        step = np.linalg.solve(JTJ + (damping * scale)[:, None, None] * eye,
                               -np.einsum("nki,nk->ni", J, h)[..., None])[..., 0]
        trial = x + step
        h_trial = residual(trial)
        cost_trial = np.sum(h_trial ** 2, axis=1)
        better = cost_trial < cost
        x = np.where(better[:, None], trial, x)
        h = np.where(better[:, None], h_trial, h)
        cost = np.where(better, cost_trial, cost)
        damping = np.clip(np.where(better, damping / 4.0, damping * 4.0), 1e-12, 1e12)
    return x


def find_fixed_points(network: RateNetwork, initial_states, *, inputs=None, n_iterations: int = 1000,
                      learning_rate: float = 0.05, fixed_tolerance: float = 1e-12, keep_tolerance: float = 1e-6,
                      unique_tolerance: float = 1e-3, marginal_tolerance: float = 1e-3,
                      polish_iterations: int = 50, device: str = "auto", report: Report | None = None) -> FixedPoints:
    """Find fixed points and slow points by minimising ``q(x) = 1/2 |F(x, u) - x|^2`` (Sussillo & Barak 2013).

    Every initial state is optimised independently (all at once, in float64) by Adam with a
    learning rate decaying geometrically to a thousandth of ``learning_rate``, then polished by
    ``polish_iterations`` damped Gauss-Newton (Levenberg-Marquardt) steps on ``F(x) - x`` with
    the analytic Jacobian: Adam finds the basins, but near a minimum with a flat direction it
    creeps, and ``q`` is so small there (it scales with ``(dt / tau)^2``) that unconverged
    states would pass for distinct fixed points. The minima with ``q <= keep_tolerance`` are
    kept, merged greedily in order of ``q`` (a minimum closer than ``unique_tolerance``, in
    state units, to one already kept is dropped), and linearised.

    Parameters
    ----------
    network : RateNetwork
    initial_states : array_like, shape (n, N)
        Starting points, e.g. :func:`sample_states` of the network's trajectories.
    inputs : array_like, shape (n_inputs,), optional
        The constant input ``u`` (default 0).
    n_iterations, learning_rate
        Of the optimiser.
    fixed_tolerance : float
        ``q`` at or below which a minimum counts as a fixed point.
    keep_tolerance : float
        ``q`` above which a minimum is discarded (neither fixed nor slow).
    unique_tolerance : float
        Distance below which two minima are one point.
    marginal_tolerance : float
        ``|Re(eigenvalue)| tau`` at or below which a direction is marginal.
    polish_iterations : int
        Levenberg-Marquardt steps after Adam (0 for none).
    device : {"auto", "cpu", "cuda"}
    report : callable, optional
        ``report(fraction_done, message)`` every tenth of the iterations; raising stops the search.

    Returns
    -------
    FixedPoints

    Examples
    --------
    >>> # two uncoupled self-exciting units: x = 2 tanh(x) has roots 0 and +-1.915 in each
    >>> net = RateNetwork(recurrent=2 * np.eye(2), input_weights=np.zeros((2, 1)), readout=np.zeros((1, 2)),
    ...                   bias=0, readout_bias=0, initial_state=0)
    >>> grid = np.stack(np.meshgrid(np.linspace(-3, 3, 7), np.linspace(-3, 3, 7)), -1).reshape(-1, 2)
    >>> found = find_fixed_points(net, grid, device="cpu")
    >>> len(found.points), sorted(set(found.stability.tolist()))
    (9, ['saddle', 'stable', 'unstable'])
    """
    import torch

    if not isinstance(network, RateNetwork):
        raise ValueError(f"network must be a RateNetwork, got {type(network).__name__}")
    x0 = _array(initial_states, "initial_states", 2)
    if x0.shape[1] != network.n_units:
        raise ValueError(f"initial_states must have shape (n, {network.n_units}), got {x0.shape}")
    u = np.zeros(network.n_inputs) if inputs is None else _array(inputs, "inputs", 1)
    if u.shape != (network.n_inputs,):
        raise ValueError(f"inputs must have shape ({network.n_inputs},), got {u.shape}")
    n_iterations = check_count(n_iterations, "n_iterations", 1)
    learning_rate = check_real(learning_rate, "learning_rate", low=0.0, low_open=True)
    fixed_tolerance = check_real(fixed_tolerance, "fixed_tolerance", low=0.0)
    keep_tolerance = check_real(keep_tolerance, "keep_tolerance", low=0.0)
    if keep_tolerance < fixed_tolerance:
        raise ValueError(f"keep_tolerance ({keep_tolerance}) must be >= fixed_tolerance ({fixed_tolerance})")
    unique_tolerance = check_real(unique_tolerance, "unique_tolerance", low=0.0)
    marginal_tolerance = check_real(marginal_tolerance, "marginal_tolerance", low=0.0)
    polish_iterations = check_count(polish_iterations, "polish_iterations", 0)
    dev = resolve_device(device, fitting=True)

    as_t = lambda v: torch.as_tensor(np.ascontiguousarray(v), dtype=torch.float64, device=dev)  # noqa: E731
    W, drive = as_t(network.recurrent), as_t(network.input_weights @ u + network.bias)
    alpha = network.dt / network.tau
    x = as_t(x0).clone().requires_grad_(True)

    def q_of(states):
        velocity = alpha * (-states + _torch_phi(states, network.activation) @ W.T + drive)
        return 0.5 * torch.sum(velocity ** 2, dim=1)

    optimiser = torch.optim.Adam([x], lr=learning_rate)
    decay = 1e-3 ** (1.0 / n_iterations)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimiser, gamma=decay)
    every = max(1, n_iterations // 10)
    for it in range(n_iterations):
        optimiser.zero_grad()
        q = q_of(x)
        # the sum's gradient in each row is that row's own gradient: the searches are independent
        q.sum().backward()
        optimiser.step()
        scheduler.step()
        if report is not None and ((it + 1) % every == 0 or it + 1 == n_iterations):
            report((it + 1) / n_iterations, f"iteration {it + 1} of {n_iterations}: median q "
                                            f"{float(q.detach().median()):.3g}")
    candidates = _polish(network, x.detach().cpu().numpy(), network.input_weights @ u + network.bias,
                         polish_iterations)
    final_q = 0.5 * np.sum((network.step(candidates, u) - candidates) ** 2, axis=1)

    kept: list[int] = []
    for i in np.argsort(final_q, kind="stable"):
        if final_q[i] > keep_tolerance:
            break
        if all(np.linalg.norm(candidates[i] - candidates[j]) >= unique_tolerance for j in kept):
            kept.append(int(i))
    points = candidates[kept]
    q = final_q[kept]
    k, n = points.shape
    jacobians = network.jacobian(points) if k else np.empty((0, n, n))
    if k:
        m, vectors = np.linalg.eig(jacobians)
        rates = (m - 1.0) / network.dt
        order = np.argsort(-rates.real, axis=1, kind="stable")
        rows = np.arange(k)[:, None]
        m, rates = m[rows, order], rates[rows, order]
        vectors = np.take_along_axis(vectors, order[:, None, :], axis=2)
    else:
        m = rates = np.empty((0, n), dtype=complex)
        vectors = np.empty((0, n, n), dtype=complex)
    scaled = rates.real * network.tau
    n_unstable = (scaled > marginal_tolerance).sum(axis=1)
    n_stable = (scaled < -marginal_tolerance).sum(axis=1)
    n_marginal = n - n_unstable - n_stable
    stability = np.where(n_unstable == 0, np.where(n_marginal == 0, "stable", "marginal"),
                         np.where(n_stable > 0, "saddle", "unstable")).astype(str)
    return FixedPoints(points=points, q=q, speed=np.sqrt(2.0 * q) / network.dt, is_fixed=q <= fixed_tolerance,
                       jacobians=jacobians, map_eigenvalues=m, eigenvalues=rates, eigenvectors=vectors,
                       n_unstable=n_unstable, n_marginal=n_marginal, n_stable=n_stable, stability=stability,
                       candidates=candidates, candidate_q=final_q)
