"""InferCircuit and FindFixedPoints without transport: check the request, compute, store.

Each RPC takes three steps here, so the servicer only resolves artifacts, holds a compute slot
and streams progress:

1. **check** the plain fields (:func:`circuit_options`, :func:`fixed_point_request_options`):
   defaults resolved, each bad value a :class:`~services.common.errors.RequestError`
   (INVALID_ARGUMENT) naming the request field;
2. **compute** on the loaded arrays (:func:`run_circuit`, :func:`run_fixed_points`) with the
   core (:mod:`services.reduction.core.circuit_inference`): a core ``ValueError`` about an input
   becomes a ``RequestError`` naming that input, a diverging fit one naming ``learning_rate``;
   the result is an :class:`Outcome`, the result message with its plain fields set plus the
   arrays and PNGs to store and the fields their refs go into;
3. **store** them under the call's content-addressed prefix (:func:`store_outcome`).

Example
-------
>>> from neuromesh.reduction.v1 import reduction_pb2 as R
>>> options = circuit_options(R.InferCircuitRequest(optimizer=R.CIRCUIT_OPTIMIZER_LBFGS, dale_signs=[1, 1, -1]))
>>> options.optimizer, options.epochs, options.dale_signs, options.fixed_points.n_initial_states
('lbfgs', 20, (1, 1, -1), 256)
>>> circuit_options(R.InferCircuitRequest(dale_signs=[1, 0]))
Traceback (most recent call last):
...
services.common.errors.RequestError: dale_signs[1] must be +1 (excitatory) or -1 (inhibitory), got 0
>>> circuit_options(R.InferCircuitRequest(fixed_points=R.FixedPointOptions(keep_tolerance=-1.0)))
Traceback (most recent call last):
...
services.common.errors.RequestError: fixed_points.keep_tolerance must be a finite number >= 0, got -1.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from neuromesh.reduction.v1 import reduction_pb2 as R
from services.common.errors import RequestError, ResourceExhausted
# the outcome machinery is shared with the other service's brain-model RPCs; re-exported here
from services.common.outcomes import Outcome, Progress, get_ref, set_ref, store_outcome  # noqa: F401

from . import brain_model_plots as plots
from .core import circuit_inference as ci

__all__ = ["Outcome", "set_ref", "get_ref", "store_outcome", "FixedPointSettings", "fixed_point_options",
           "CircuitOptions", "circuit_options", "run_circuit", "FixedPointRequestOptions",
           "fixed_point_request_options", "without_unused_network_parts", "run_fixed_points"]




# ------------------------------------------------------------------------------------------------
# small checks


def _fail(field: str, what: str, value: object) -> RequestError:
    return RequestError(f"{field} {what}, got {value!r}", field=field)


def _enum(table: Mapping[int, str], value: int, field: str, enum_type) -> str:
    if value not in table:
        known = ", ".join(enum_type.Name(v) for v in table if v != 0)
        shown = enum_type.Name(value) if value in enum_type.values() else value
        raise _fail(field, f"must be one of {known}", shown)
    return table[value]


def _optional(message, name: str, default):
    return getattr(message, name) if message.HasField(name) else default


def _real(value: float, field: str, *, low: float = 0.0, low_open: bool = False, high: float = math.inf,
          high_open: bool = True) -> float:
    ok = math.isfinite(value) and (value > low if low_open else value >= low) and \
        (value < high if high_open else value <= high)
    if not ok:
        if high == math.inf:
            what = f"must be a finite number {'>' if low_open else '>='} {low:g}"
        else:
            what = f"must be in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise _fail(field, what, value)
    return float(value)


def _count(value: int, field: str, default: int, *, maximum: int, minimum: int = 1) -> int:
    """``value``, or ``default`` for 0; INVALID_ARGUMENT outside [minimum, maximum]."""
    if value == 0:
        return default
    if not minimum <= value <= maximum:
        raise _fail(field, f"must be an integer in [{minimum}, {maximum}] (0 for the default {default})", value)
    return int(value)


def _input_error(exc: Exception, fields: Mapping[str, str], default: str) -> RequestError:
    """A core ``ValueError`` ("<name> must ...") as a RequestError naming the request field of ``<name>``."""
    message = str(exc)
    name = message.split(" ", 1)[0].split("[", 1)[0].rstrip(":,")
    return RequestError(message, field=fields.get(name, default))


_ACTIVATIONS = {R.RATE_ACTIVATION_UNSPECIFIED: "tanh", R.RATE_ACTIVATION_TANH: "tanh", R.RATE_ACTIVATION_RELU: "relu",
                R.RATE_ACTIVATION_SOFTPLUS: "softplus", R.RATE_ACTIVATION_LINEAR: "linear"}
_ACTIVATION_ENUMS = {name: value for value, name in _ACTIVATIONS.items() if value != 0}
_OPTIMIZERS = {R.CIRCUIT_OPTIMIZER_UNSPECIFIED: "adam", R.CIRCUIT_OPTIMIZER_ADAM: "adam",
               R.CIRCUIT_OPTIMIZER_LBFGS: "lbfgs"}
_STABILITY = {"stable": R.FIXED_POINT_STABILITY_STABLE, "marginal": R.FIXED_POINT_STABILITY_MARGINAL,
              "saddle": R.FIXED_POINT_STABILITY_SADDLE, "unstable": R.FIXED_POINT_STABILITY_UNSTABLE}
MAX_INITIAL_STATES = 10_000
MAX_EPOCHS = 100_000


# ------------------------------------------------------------------------------------------------
# fixed-point options


@dataclass(frozen=True)
class FixedPointSettings:
    """Checked ``FixedPointOptions``."""

    skip: bool = False
    n_initial_states: int = 256
    initial_noise_sd: float = 0.0
    #: the constant input; None: zeros
    input: tuple[float, ...] | None = None
    n_iterations: int = 1000
    learning_rate: float = 0.05
    fixed_tolerance: float = 1e-12
    keep_tolerance: float = 1e-6
    unique_tolerance: float = 1e-3
    marginal_tolerance: float = 1e-3
    polish_iterations: int = 50

    def search_kwargs(self) -> dict[str, Any]:
        """The keywords of :func:`~services.reduction.core.circuit_inference.find_fixed_points`."""
        return {"inputs": None if self.input is None else np.asarray(self.input), "n_iterations": self.n_iterations,
                "learning_rate": self.learning_rate, "fixed_tolerance": self.fixed_tolerance,
                "keep_tolerance": self.keep_tolerance, "unique_tolerance": self.unique_tolerance,
                "marginal_tolerance": self.marginal_tolerance, "polish_iterations": self.polish_iterations}

    def output_bytes(self, n_units: int) -> int:
        """Bound of the stored arrays: Jacobians and eigenvectors (real, imaginary) of every start."""
        return 8 * self.n_initial_states * n_units * (3 * n_units + 4)


def fixed_point_options(msg: R.FixedPointOptions, where: str = "fixed_points") -> FixedPointSettings:
    """Check a ``FixedPointOptions`` message (fields named ``<where>.<name>``)."""
    for i, v in enumerate(msg.input):
        if not math.isfinite(v):
            raise _fail(f"{where}.input[{i}]", "must be a finite number", v)
    keep = _real(_optional(msg, "keep_tolerance", 1e-6), f"{where}.keep_tolerance")
    fixed = _real(_optional(msg, "fixed_tolerance", 1e-12), f"{where}.fixed_tolerance")
    if keep < fixed:
        raise _fail(f"{where}.keep_tolerance", f"must be >= fixed_tolerance ({fixed:g})", keep)
    polish = _optional(msg, "polish_iterations", 50)
    if not 0 <= polish <= 10_000:
        raise _fail(f"{where}.polish_iterations", "must be an integer in [0, 10000]", polish)
    return FixedPointSettings(
        skip=msg.skip,
        n_initial_states=_count(msg.n_initial_states, f"{where}.n_initial_states", 256, maximum=MAX_INITIAL_STATES),
        initial_noise_sd=_real(msg.initial_noise_sd, f"{where}.initial_noise_sd"),
        input=tuple(float(v) for v in msg.input) or None,
        n_iterations=_count(msg.n_iterations, f"{where}.n_iterations", 1000, maximum=1_000_000),
        learning_rate=_real(_optional(msg, "learning_rate", 0.05), f"{where}.learning_rate", low_open=True),
        fixed_tolerance=fixed, keep_tolerance=keep,
        unique_tolerance=_real(_optional(msg, "unique_tolerance", 1e-3), f"{where}.unique_tolerance"),
        marginal_tolerance=_real(_optional(msg, "marginal_tolerance", 1e-3), f"{where}.marginal_tolerance"),
        polish_iterations=int(polish))


# ------------------------------------------------------------------------------------------------
# InferCircuit: checks


@dataclass(frozen=True)
class CircuitOptions:
    """A checked ``InferCircuitRequest`` (its artifacts aside)."""

    observed_units: tuple[int, ...] | None
    n_units: int | None
    activation: str
    tau: float
    dt: float
    dale_signs: tuple[int, ...] | None
    learn_initial_state: bool
    holdout_fraction: float
    optimizer: str
    epochs: int
    learning_rate: float
    batch_size: int | None
    l2: float
    behaviour_weight: float
    max_grad_norm: float
    init_gain: float
    seed: int
    fixed_points: FixedPointSettings
    #: the request's array fields this call reads
    inputs: tuple[str, ...] = ("inputs", "activity")


def _tau_dt(tau: float, dt: float, where: str = "") -> tuple[float, float]:
    tau = _real(tau, f"{where}tau", low_open=True)
    dt = _real(dt, f"{where}dt", low_open=True)
    if dt > tau:
        raise _fail(f"{where}dt", f"must not exceed tau ({tau:g}): Euler steps longer than the time constant "
                                  f"overshoot", dt)
    return tau, dt


def circuit_options(request: R.InferCircuitRequest) -> CircuitOptions:
    """Check an ``InferCircuitRequest``; raise :class:`RequestError` naming the first bad field."""
    observed = tuple(int(u) for u in request.observed_units) or None
    if observed is not None:
        if min(observed) < 0 or len(set(observed)) != len(observed):
            raise _fail("observed_units", "must be distinct unit indices >= 0", list(observed))
        if request.n_units == 0:
            raise RequestError("n_units is required with observed_units: the model's size", field="n_units")
        if max(observed) >= request.n_units:
            raise _fail("observed_units", f"must index the model's {request.n_units} units", list(observed))
    if request.n_units < 0 or request.n_units > 4096:
        raise _fail("n_units", "must be an integer in [1, 4096] (0: as many as are recorded)", request.n_units)
    signs = tuple(int(s) for s in request.dale_signs) or None
    for i, s in enumerate(signs or ()):
        if s not in (1, -1):
            raise _fail(f"dale_signs[{i}]", "must be +1 (excitatory) or -1 (inhibitory)", s)
    if signs is not None and request.n_units and len(signs) != request.n_units:
        raise _fail("dale_signs", f"must hold one sign per model unit ({request.n_units})", len(signs))
    tau, dt = _tau_dt(_optional(request, "tau", 1.0), _optional(request, "dt", 0.1))
    optimizer = _enum(_OPTIMIZERS, request.optimizer, "optimizer", R.CircuitOptimizer)
    if request.seed < 0:
        raise _fail("seed", "must be >= 0", request.seed)
    if request.batch_size < 0:
        raise _fail("batch_size", "must be >= 0 (0: all training trials)", request.batch_size)
    inputs = ("inputs", "activity") + tuple(name for name in ("behaviour", "true_recurrent")
                                            if request.HasField(name) and getattr(request, name).key)
    return CircuitOptions(
        observed_units=observed, n_units=int(request.n_units) or None,
        activation=_enum(_ACTIVATIONS, request.activation, "activation", R.RateActivation), tau=tau, dt=dt,
        dale_signs=signs, learn_initial_state=request.learn_initial_state,
        holdout_fraction=_real(_optional(request, "holdout_fraction", 0.2), "holdout_fraction", high=1.0),
        optimizer=optimizer,
        epochs=_count(request.epochs, "epochs", 500 if optimizer == "adam" else 20, maximum=MAX_EPOCHS),
        learning_rate=_real(_optional(request, "learning_rate", 0.01), "learning_rate", low_open=True),
        batch_size=int(request.batch_size) or None, l2=_real(request.l2, "l2"),
        behaviour_weight=_real(_optional(request, "behaviour_weight", 1.0), "behaviour_weight"),
        max_grad_norm=_real(_optional(request, "max_grad_norm", 10.0), "max_grad_norm", low_open=True),
        init_gain=_real(_optional(request, "init_gain", 0.5), "init_gain"), seed=int(request.seed),
        fixed_points=fixed_point_options(request.fixed_points), inputs=inputs)


# ------------------------------------------------------------------------------------------------
# shared computing


#: fractions of the progress given to each stage of InferCircuit
_STAGES = {"fit": (0.0, 0.8), "fixed_points": (0.8, 0.95)}
_CIRCUIT_FIELDS = {"inputs": "inputs", "activity": "activity", "behaviour": "behaviour",
                   "observed_units": "observed_units", "n_units": "n_units", "dale_signs": "dale_signs",
                   "holdout_fraction": "holdout_fraction", "no": "holdout_fraction", "batch_size": "batch_size",
                   "the": "learning_rate", "learning_rate": "learning_rate", "tau": "tau", "dt": "dt"}


def _reporter(progress: Progress | None, lo: float, hi: float, stage: str, counter: str | None = None,
              total: int = 0) -> Callable[[float, str], None] | None:
    if progress is None:
        return None

    def report(fraction: float, message: str) -> None:
        counters = {counter: round(fraction * total)} if counter else None
        progress(fraction_done=lo + (hi - lo) * min(max(fraction, 0.0), 1.0), stage=stage, message=message,
                 counters=counters)
    return report


def _activation_enum(name: str) -> int:
    return _ACTIVATION_ENUMS[name]


def _search(network: ci.RateNetwork, starts: np.ndarray, settings: FixedPointSettings, where: str,
            report) -> ci.FixedPoints:
    if settings.input is not None and len(settings.input) != network.n_inputs:
        raise _fail(f"{where}.input", f"must hold one value per input of the network ({network.n_inputs})",
                    list(settings.input))
    return ci.find_fixed_points(network, starts, device="auto", report=report, **settings.search_kwargs())


def _fixed_points_outcome(found: ci.FixedPoints, out: Outcome, path: str, key: str, trajectories: np.ndarray,
                          network: ci.RateNetwork, title: str) -> None:
    """Fill the FixedPointsResult at ``path`` of ``out.message`` and add its arrays under ``key``."""
    msg = get_ref(out.message, path)
    for i in range(len(found.points)):
        lead = found.eigenvalues[i, 0]
        msg.points.add(q=float(found.q[i]), speed=float(found.speed[i]), is_fixed=bool(found.is_fixed[i]),
                       stability=_STABILITY[str(found.stability[i])], n_unstable=int(found.n_unstable[i]),
                       n_marginal=int(found.n_marginal[i]), n_stable=int(found.n_stable[i]),
                       leading_eigenvalue_real=float(lead.real), leading_eigenvalue_imag=float(lead.imag))
    msg.n_fixed = int(found.is_fixed.sum())
    msg.n_slow = int(len(found.points) - found.is_fixed.sum())
    msg.n_candidates = int(len(found.candidates))
    arrays = {"states": found.points, "jacobians": found.jacobians,
              "eigenvalues_real": found.eigenvalues.real, "eigenvalues_imag": found.eigenvalues.imag,
              "eigenvectors_real": found.eigenvectors.real, "eigenvectors_imag": found.eigenvectors.imag,
              "candidates": found.candidates, "candidate_q": found.candidate_q}
    for name, value in arrays.items():
        out.array(f"{path}.{name}", f"{key}/{name}", np.asarray(value, dtype=np.float64))
    out.figure(f"{path}.figure", f"{key}/figure", plots.fixed_points_figure(
        trajectories, found.points, [str(s) for s in found.stability], found.eigenvalues, tau=network.tau,
        title=title))


# ------------------------------------------------------------------------------------------------
# InferCircuit: computing


def run_circuit(options: CircuitOptions, arrays: Mapping[str, np.ndarray], progress: Progress | None = None, *,
                max_bytes: int | None = None) -> Outcome:
    """Fit the network to ``arrays`` (by request field), score it, find its fixed points.

    Returns an :class:`Outcome` of an ``InferCircuitResult``. ``max_bytes`` caps what the
    fixed-point search would store (RESOURCE_EXHAUSTED above it, before any work).
    """
    activity = np.asarray(arrays["activity"])
    n_observed = activity.shape[-1] if activity.ndim == 3 else 0
    n_units = options.n_units or n_observed
    if options.dale_signs is not None and n_units and len(options.dale_signs) != n_units:
        raise _fail("dale_signs", f"must hold one sign per model unit ({n_units})", len(options.dale_signs))
    if options.n_units is not None and options.observed_units is None and options.n_units < n_observed:
        raise _fail("n_units", f"must be at least the {n_observed} recorded units", options.n_units)
    fp = options.fixed_points
    if max_bytes is not None and not fp.skip and fp.output_bytes(n_units) > max_bytes:
        raise ResourceExhausted(f"the fixed-point search of {fp.n_initial_states} states of {n_units} units would "
                                f"store up to {fp.output_bytes(n_units)} bytes, more than NEUROMESH_MAX_INPUT_BYTES="
                                f"{max_bytes}; use fewer fixed_points.n_initial_states", field="fixed_points")
    truth = None
    if "true_recurrent" in arrays:
        truth = np.asarray(arrays["true_recurrent"], dtype=np.float64)
        if truth.shape != (n_units, n_units) or not np.isfinite(truth).all():
            raise RequestError(f"true_recurrent must be a finite ({n_units}, {n_units}) matrix, got shape "
                               f"{truth.shape}", field="true_recurrent")
    try:
        fit = ci.fit_rate_network(
            arrays["inputs"], activity, behaviour=arrays.get("behaviour"),
            observed_units=None if options.observed_units is None else np.asarray(options.observed_units),
            n_units=options.n_units, activation=options.activation, tau=options.tau, dt=options.dt,
            dale_signs=options.dale_signs, learn_initial_state=options.learn_initial_state,
            holdout_fraction=options.holdout_fraction, epochs=options.epochs, learning_rate=options.learning_rate,
            batch_size=options.batch_size, l2=options.l2, behaviour_weight=options.behaviour_weight,
            max_grad_norm=options.max_grad_norm, init_gain=options.init_gain, optimizer=options.optimizer,
            seed=options.seed, device="auto",
            report=_reporter(progress, *_STAGES["fit"], "fit", "epochs_done", options.epochs))
    except FloatingPointError as exc:
        raise RequestError(str(exc), field="learning_rate") from None
    except ValueError as exc:
        raise _input_error(exc, _CIRCUIT_FIELDS, "activity") from None
    net = fit.network
    has_behaviour = "behaviour" in arrays
    result = R.InferCircuitResult(
        observed_units=fit.observed_units.tolist(), n_units=net.n_units, initial_loss=float(fit.loss[0]),
        final_loss=float(fit.loss[-1]), train_activity_r2=fit.train_activity_r2,
        heldout_activity_r2=fit.heldout_activity_r2, train_behaviour_r2=fit.train_behaviour_r2,
        heldout_behaviour_r2=fit.heldout_behaviour_r2, connectivity_correlation=math.nan,
        off_diagonal_connectivity_correlation=math.nan)
    result.network.tau, result.network.dt = net.tau, net.dt
    result.network.activation = _activation_enum(net.activation)
    if truth is not None:
        try:
            result.connectivity_correlation = ci.connectivity_correlation(truth, net.recurrent)
            if net.n_units > 2:
                result.off_diagonal_connectivity_correlation = ci.connectivity_correlation(
                    truth, net.recurrent, include_diagonal=False)
        except ValueError as exc:      # a constant matrix: the correlation is undefined
            raise RequestError(f"true_recurrent: {exc}", field="true_recurrent") from None
    out = Outcome(result)
    network_arrays = {"recurrent": net.recurrent, "input_weights": net.input_weights, "bias": net.bias,
                      "initial_state": net.initial_state}
    if has_behaviour:
        network_arrays.update(readout=net.readout, readout_bias=net.readout_bias)
    for name, value in network_arrays.items():
        out.array(f"network.{name}", f"network/{name}", value)
    out.array("train_trials", "train_trials", fit.train_trials.astype(np.int64))
    out.array("heldout_trials", "heldout_trials", fit.heldout_trials.astype(np.int64))
    out.array("loss", "loss", fit.loss)
    out.array("heldout_loss", "heldout_loss", fit.heldout_loss)
    out.array("predicted_activity", "predicted_activity", fit.predicted_activity)
    if has_behaviour:
        out.array("predicted_behaviour", "predicted_behaviour", fit.predicted_behaviour)
    out.array("states", "states", fit.states)
    out.array("effective_connectivity", "effective_connectivity", ci.effective_connectivity(net, fit.states))

    if not fp.skip:
        if progress is not None:
            progress(fraction_done=_STAGES["fixed_points"][0], stage="fixed_points",
                     message=f"searching from {fp.n_initial_states} states of the fitted trajectories")
        starts = ci.sample_states(fit.states, fp.n_initial_states, noise_sd=fp.initial_noise_sd, seed=options.seed)
        found = _search(net, starts, fp, "fixed_points",
                        _reporter(progress, *_STAGES["fixed_points"], "fixed_points"))
        _fixed_points_outcome(found, out, "fixed_points", "fixed_points", fit.states, net,
                              title=f"fitted network ({net.n_units} units, {net.activation})")

    shown = int(fit.heldout_trials[0]) if fit.heldout_trials.size else int(fit.train_trials[0])
    out.figure("loss_figure", "loss", plots.loss_figure(
        fit.loss, fit.heldout_loss, title=f"{options.optimizer} fit: held-out activity R^2 "
                                          f"{fit.heldout_activity_r2:.3f}"))
    out.figure("activity_figure", "activity", plots.activity_figure(
        activity[shown], fit.predicted_activity[shown],
        title=f"trial {shown} ({'held out' if fit.heldout_trials.size else 'training'}): recorded and predicted"))
    title = "fitted connectivity" if truth is None else \
        f"fitted against true connectivity: r = {result.connectivity_correlation:.3f}"
    out.figure("connectivity_figure", "connectivity", plots.connectivity_figure(net.recurrent, truth, title=title))
    return out


# ------------------------------------------------------------------------------------------------
# FindFixedPoints


@dataclass(frozen=True)
class FixedPointRequestOptions:
    """A checked ``FindFixedPointsRequest`` (its artifacts aside)."""

    tau: float
    dt: float
    activation: str
    #: "initial_states" or "trajectories"
    start: str
    fixed_points: FixedPointSettings
    seed: int
    #: the request's array fields this call reads (dotted paths)
    inputs: tuple[str, ...]


_NETWORK_ARRAYS = ("recurrent", "input_weights", "bias")


def fixed_point_request_options(request: R.FindFixedPointsRequest) -> FixedPointRequestOptions:
    """Check a ``FindFixedPointsRequest``; raise :class:`RequestError` naming the first bad field.

    The network's readout, readout bias and initial state play no part in the fixed points:
    they are neither read nor part of the result's key (InferCircuit's network goes in as it is).
    """
    network = request.network
    if not (network.HasField("recurrent") and network.recurrent.key):
        raise RequestError("network.recurrent is required: the (N, N) weight matrix W", field="network.recurrent.key")
    tau, dt = _tau_dt(network.tau or 1.0, network.dt or 0.1, "network.")
    start = request.WhichOneof("start")
    if start is None or not getattr(request, start).key:
        raise RequestError("a start is required: initial_states (n, N) or trajectories (..., N)", field="start")
    settings = fixed_point_options(request.options, "options")
    if settings.skip:
        raise RequestError("options.skip applies to InferCircuit only", field="options.skip")
    if settings.input is not None and not (network.HasField("input_weights") and network.input_weights.key):
        raise RequestError("options.input needs network.input_weights: the inputs act through them",
                           field="network.input_weights")
    if request.seed < 0:
        raise _fail("seed", "must be >= 0", request.seed)
    inputs = tuple(f"network.{name}" for name in _NETWORK_ARRAYS
                   if getattr(network, name).key) + (start,)
    return FixedPointRequestOptions(tau=tau, dt=dt, activation=_enum(_ACTIVATIONS, network.activation,
                                                                     "network.activation", R.RateActivation),
                                    start=start, fixed_points=settings, seed=int(request.seed), inputs=inputs)


def without_unused_network_parts(request: R.FindFixedPointsRequest) -> R.FindFixedPointsRequest:
    """A copy of ``request`` without the network's readout, readout bias and initial state."""
    copy = R.FindFixedPointsRequest()
    copy.CopyFrom(request)
    for name in ("readout", "readout_bias", "initial_state"):
        copy.network.ClearField(name)
    return copy


def _network_from_arrays(options: FixedPointRequestOptions, arrays: Mapping[str, np.ndarray]) -> ci.RateNetwork:
    W = np.asarray(arrays["network.recurrent"], dtype=np.float64)
    if W.ndim != 2 or W.shape[0] != W.shape[1] or W.shape[0] == 0:
        raise RequestError(f"network.recurrent must be a square (N, N) matrix, got shape {W.shape}",
                           field="network.recurrent")
    n = W.shape[0]
    B = np.asarray(arrays.get("network.input_weights", np.zeros((n, 0))), dtype=np.float64)
    if B.ndim != 2 or B.shape[0] != n:
        raise RequestError(f"network.input_weights must have shape ({n}, n_inputs), got {B.shape}",
                           field="network.input_weights")
    b = np.asarray(arrays.get("network.bias", np.zeros(n)), dtype=np.float64)
    if b.shape != (n,):
        raise RequestError(f"network.bias must have shape ({n},), got {b.shape}", field="network.bias")
    for name, value in (("recurrent", W), ("input_weights", B), ("bias", b)):
        if not np.isfinite(value).all():
            raise RequestError(f"network.{name} holds NaN or infinite values", field=f"network.{name}")
    return ci.RateNetwork(recurrent=W, input_weights=B, readout=np.zeros((0, n)), bias=b,
                          readout_bias=np.zeros(0), initial_state=np.zeros(n), tau=options.tau, dt=options.dt,
                          activation=options.activation)


def run_fixed_points(options: FixedPointRequestOptions, arrays: Mapping[str, np.ndarray],
                     progress: Progress | None = None, *, max_bytes: int | None = None) -> Outcome:
    """Search the given network's fixed points; an :class:`Outcome` of a ``FindFixedPointsResult``."""
    network = _network_from_arrays(options, arrays)
    n = network.n_units
    starts_in = np.asarray(arrays[options.start], dtype=np.float64)
    where = options.start
    if starts_in.ndim < 1 or starts_in.shape[-1] != n or starts_in.size == 0:
        raise RequestError(f"{where} must end in the network's {n} units, got shape {starts_in.shape}", field=where)
    if not np.isfinite(starts_in).all():
        raise RequestError(f"{where} holds NaN or infinite values", field=where)
    settings = options.fixed_points
    if options.start == "initial_states":
        if starts_in.ndim != 2:
            raise RequestError(f"initial_states must have shape (n, {n}), got {starts_in.shape}", field=where)
        if len(starts_in) > MAX_INITIAL_STATES:
            raise _fail("initial_states", f"must hold at most {MAX_INITIAL_STATES} states", len(starts_in))
        starts = starts_in
    else:
        starts = ci.sample_states(starts_in, settings.n_initial_states, noise_sd=settings.initial_noise_sd,
                                  seed=options.seed)
    needed = 8 * len(starts) * n * (3 * n + 4)
    if max_bytes is not None and needed > max_bytes:
        raise ResourceExhausted(f"the search from {len(starts)} states of {n} units would store up to {needed} bytes, "
                                f"more than NEUROMESH_MAX_INPUT_BYTES={max_bytes}; start from fewer states",
                                field=where)
    try:
        found = _search(network, starts, settings, "options", _reporter(progress, 0.0, 0.95, "fixed_points"))
    except RequestError:
        raise
    except ValueError as exc:
        raise _input_error(exc, {"inputs": "options.input", "initial_states": where}, "options") from None
    out = Outcome(R.FindFixedPointsResult())
    _fixed_points_outcome(found, out, "fixed_points", "fixed_points", starts_in if options.start == "trajectories"
                          else found.candidates, network,
                          title=f"network of {n} units ({network.activation}), {len(starts)} starts")
    return out
