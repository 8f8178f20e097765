"""The brain-model RPCs of the simulation service, without transport: check, compute, store.

``BayesianObserver`` and ``TrainPredictiveCoding`` each take three steps here, so the servicer
only resolves artifacts, holds a compute slot and streams progress:

1. **check** the plain fields (:func:`observer_options`, :func:`predictive_coding_options`):
   defaults resolved, every bad value a :class:`~services.common.errors.RequestError`
   (INVALID_ARGUMENT) naming the request field;
2. **compute** on the loaded arrays (:func:`run_observer`, :func:`run_predictive_coding`),
   calling the core (:mod:`.core.bayesian_observer`, :mod:`.core.predictive_coding`); a core
   ``ValueError`` about an input becomes a ``RequestError`` naming that input. The result is an
   :class:`Outcome`: the response message with its plain fields set, plus the arrays and PNGs
   to store and the fields their refs go into;
3. **store** them under the call's content-addressed prefix (:func:`store_outcome`).

Example
-------
>>> from neuromesh.simulation.v1 import simulation_pb2 as S
>>> request = S.BayesianObserverRequest(mode=S.OBSERVER_MODE_PSYCHOMETRIC, psychometric_references=[0.0, 1.0],
...                                     parameters=S.ObserverParameters(prior_sd=1.0, noise_sd=0.5))
>>> options = observer_options(request)
>>> options.mode, options.psychometric_references, options.grid
('psychometric', (0.0, 1.0), (-3.3541019662496847, 3.3541019662496847, 101))
>>> outcome = run_observer(options, {})
>>> [round(p, 3) for p in outcome.message.psychometric.points_of_subjective_equality]
[0.0, 1.25]
>>> sorted(key for _, key, _ in outcome.arrays)
['psychometric/probabilities', 'psychometric/stimuli']
>>> observer_options(S.BayesianObserverRequest(mode=S.OBSERVER_MODE_POSTERIOR))
Traceback (most recent call last):
...
services.common.errors.RequestError: parameters.prior_sd must be a finite number > 0, got 0.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from neuromesh.simulation.v1 import simulation_pb2 as S
from services.common.errors import RequestError, ResourceExhausted
# the outcome machinery is shared with the other service's brain-model RPCs; re-exported here
from services.common.outcomes import Outcome, Progress, set_ref, store_outcome  # noqa: F401

from . import brain_model_plots as plots
from .core import bayesian_observer as observer
from .core import predictive_coding as pc

__all__ = ["Outcome", "set_ref", "store_outcome", "ObserverOptions", "observer_options", "observer_inputs",
           "run_observer", "PredictiveCodingOptions", "predictive_coding_options", "run_predictive_coding"]




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


def _finite(value: float, field: str) -> float:
    if not math.isfinite(value):
        raise _fail(field, "must be a finite number", value)
    return float(value)


def _positive(value: float, field: str) -> float:
    if not (math.isfinite(value) and value > 0):
        raise _fail(field, "must be a finite number > 0", value)
    return float(value)


def _count(value: int, field: str, default: int, *, maximum: int, minimum: int = 1) -> int:
    """``value``, or ``default`` for 0; INVALID_ARGUMENT outside [minimum, maximum]."""
    if value == 0:
        return default
    if not minimum <= value <= maximum:
        raise _fail(field, f"must be an integer in [{minimum}, {maximum}] (0 for the default {default})", value)
    return int(value)


def _optional(message, name: str, default):
    return getattr(message, name) if message.HasField(name) else default


def _input_error(exc: Exception, fields: Mapping[str, str], default: str) -> RequestError:
    """A core ``ValueError`` ("<name> must ...") as a RequestError naming the request field of ``<name>``."""
    message = str(exc)
    name = message.split(" ", 1)[0].split("[", 1)[0]
    return RequestError(message, field=fields.get(name, default))


# ------------------------------------------------------------------------------------------------
# BayesianObserver: checks


_MODES = {S.OBSERVER_MODE_POSTERIOR: "posterior", S.OBSERVER_MODE_PSYCHOMETRIC: "psychometric",
          S.OBSERVER_MODE_SIMULATE: "simulate", S.OBSERVER_MODE_FIT: "fit"}
#: the array inputs of each mode: (required, optional)
_MODE_INPUTS = {"posterior": (("observations",), ()), "psychometric": ((), ()),
                "simulate": (("stimuli",), ("references", "n_samples_per_trial")),
                "fit": (("stimuli", "choices"), ("references", "n_samples_per_trial"))}
ARRAY_FIELDS = ("observations", "stimuli", "references", "choices", "n_samples_per_trial")
MAX_GRID_POINTS = 100_000
MAX_REFERENCES = 100
MAX_BOOTSTRAP = 2000
DEFAULT_GRID_POINTS = 101


@dataclass(frozen=True)
class ObserverOptions:
    """A checked ``BayesianObserverRequest`` (its artifacts aside)."""

    mode: str
    #: the observer (POSTERIOR, PSYCHOMETRIC, SIMULATE); None for FIT
    parameters: observer.ObserverParameters | None
    reference: float
    n_samples: int
    #: (start, stop, n_points) of the stimulus axis; None: from the stimuli
    grid: tuple[float, float, int] | None
    psychometric_references: tuple[float, ...]
    fit_lapse: bool
    lapse: float
    confidence: float
    n_bootstrap: int
    seed: int
    #: the request's array fields this call reads
    inputs: tuple[str, ...]


def _observer_parameters(msg: S.ObserverParameters, where: str = "parameters") -> observer.ObserverParameters:
    _finite(msg.prior_mean, f"{where}.prior_mean")
    _positive(msg.prior_sd, f"{where}.prior_sd")
    _positive(msg.noise_sd, f"{where}.noise_sd")
    if not (math.isfinite(msg.lapse) and 0.0 <= msg.lapse < 1.0):
        raise _fail(f"{where}.lapse", "must be a number in [0, 1)", msg.lapse)
    return observer.ObserverParameters(msg.prior_mean, msg.prior_sd, msg.noise_sd, lapse=msg.lapse)


def observer_inputs(request: S.BayesianObserverRequest, mode: str) -> tuple[str, ...]:
    """The array fields the mode reads: required ones must be set, ones it does not read must not be."""
    required, optional = _MODE_INPUTS[mode]
    for name in ARRAY_FIELDS:
        given = request.HasField(name) and bool(getattr(request, name).key)
        if name in required and not given:
            raise RequestError(f"{name} is required by {S.ObserverMode.Name(request.mode)}: an artifact reference "
                               f"with a key", field=f"{name}.key")
        if given and name not in required and name not in optional:
            raise RequestError(f"{name} is not read by {S.ObserverMode.Name(request.mode)}; leave it unset",
                               field=name)
    return tuple(name for name in ARRAY_FIELDS if name in required
                 or (name in optional and request.HasField(name) and getattr(request, name).key))


def observer_options(request: S.BayesianObserverRequest) -> ObserverOptions:
    """Check a ``BayesianObserverRequest``; raise :class:`RequestError` naming the first bad field."""
    if request.mode == S.OBSERVER_MODE_UNSPECIFIED:
        raise RequestError("mode is required: OBSERVER_MODE_POSTERIOR, _PSYCHOMETRIC, _SIMULATE or _FIT",
                           field="mode")
    mode = _enum(_MODES, request.mode, "mode", S.ObserverMode)
    fit_lapse = not request.fix_lapse
    lapse = 0.0
    parameters = None
    if mode == "fit":
        if request.fix_lapse:
            lapse = request.parameters.lapse
            if not (math.isfinite(lapse) and 0.0 <= lapse < 1.0):
                raise _fail("parameters.lapse", "must be a number in [0, 1)", lapse)
    else:
        parameters = _observer_parameters(request.parameters)
    reference = _finite(request.reference, "reference")
    n_samples = _count(request.n_samples, "n_samples", 1, maximum=10**6)
    grid = None
    if request.HasField("grid"):
        g = request.grid
        start, stop = _finite(g.start, "grid.start"), _finite(g.stop, "grid.stop")
        if stop <= start:
            raise _fail("grid.stop", f"must be greater than grid.start ({start})", stop)
        grid = (start, stop, _count(g.n_points, "grid.n_points", DEFAULT_GRID_POINTS, maximum=MAX_GRID_POINTS,
                                    minimum=2))
    elif mode == "psychometric":
        half = 3.0 * math.hypot(parameters.prior_sd, parameters.noise_sd)
        grid = (parameters.prior_mean - half, parameters.prior_mean + half, DEFAULT_GRID_POINTS)
    references = tuple(request.psychometric_references)
    if references and mode != "psychometric":
        raise RequestError("psychometric_references is read only by OBSERVER_MODE_PSYCHOMETRIC",
                           field="psychometric_references")
    if len(references) > MAX_REFERENCES:
        raise _fail("psychometric_references", f"must hold at most {MAX_REFERENCES} references", len(references))
    for i, r in enumerate(references):
        _finite(r, f"psychometric_references[{i}]")
    if mode == "psychometric" and not references:
        references = (reference,)
    confidence = request.confidence or 0.95
    if not (math.isfinite(confidence) and 0.0 < confidence < 1.0):
        raise _fail("confidence", "must be in (0, 1) (0 for 0.95)", request.confidence)
    if not 0 <= request.n_bootstrap <= MAX_BOOTSTRAP:
        raise _fail("n_bootstrap", f"must be in [0, {MAX_BOOTSTRAP}]", request.n_bootstrap)
    if request.n_bootstrap and mode != "fit":
        raise RequestError("n_bootstrap is read only by OBSERVER_MODE_FIT", field="n_bootstrap")
    return ObserverOptions(mode=mode, parameters=parameters, reference=reference, n_samples=n_samples, grid=grid,
                           psychometric_references=references, fit_lapse=fit_lapse, lapse=float(lapse),
                           confidence=float(confidence), n_bootstrap=int(request.n_bootstrap),
                           seed=int(request.seed), inputs=observer_inputs(request, mode))


# ------------------------------------------------------------------------------------------------
# BayesianObserver: computing


#: references drawn one curve each in the figures; more are grouped into this many quantiles
MAX_FIGURE_REFERENCES = 6
_REFERENCE_GROUPS = 4


def _trial_inputs(options: ObserverOptions, arrays: Mapping[str, np.ndarray]):
    """Stimuli, references (array or number) and measurement counts (array or number) as the core takes them."""
    stimuli = np.asarray(arrays["stimuli"])
    references = np.asarray(arrays["references"]) if "references" in arrays else options.reference
    n_samples: Any = options.n_samples
    if "n_samples_per_trial" in arrays:
        n = np.asarray(arrays["n_samples_per_trial"])
        if np.issubdtype(n.dtype, np.floating) and np.isfinite(n).all() and np.all(n == np.round(n)):
            n = n.astype(np.int64)        # integer counts uploaded as floats
        n_samples = n
    return stimuli, references, n_samples


def _core_fields(options: ObserverOptions) -> dict[str, str]:
    return {"stimuli": "stimuli", "references": "references" if "references" in options.inputs else "reference",
            "choices": "choices", "observations": "observations",
            "n_samples": "n_samples_per_trial" if "n_samples_per_trial" in options.inputs else "n_samples"}


def _reference_groups(references: np.ndarray) -> list[tuple[str, float, np.ndarray]]:
    """(label, reference drawn, trial mask) per group of trials: each reference, or quantile groups of many."""
    unique = np.unique(references)
    if unique.size <= MAX_FIGURE_REFERENCES:
        return [(f"reference {r:.3g}", float(r), references == r) for r in unique]
    edges = np.quantile(references, np.linspace(0, 1, _REFERENCE_GROUPS + 1))
    index = np.clip(np.searchsorted(edges, references, side="right") - 1, 0, _REFERENCE_GROUPS - 1)
    groups = []
    for g in np.unique(index):
        mask = index == g
        median = float(np.median(references[mask]))
        groups.append((f"references {edges[g]:.3g}..{edges[g + 1]:.3g}", median, mask))
    return groups


def _choice_figure(stimuli, references, choices, parameters, n_samples, grid, *, title: str,
                   curve_label: str) -> bytes:
    refs = np.broadcast_to(np.asarray(references, dtype=float), stimuli.shape)
    n_draw = int(np.median(n_samples)) if np.ndim(n_samples) else int(n_samples)
    x = np.linspace(*grid) if grid is not None else np.linspace(stimuli.min(), stimuli.max(), DEFAULT_GRID_POINTS)
    curves, data, drawn = [], [], []
    for label, r, mask in _reference_groups(refs):
        curves.append((f"{curve_label}, {label}", observer.psychometric_curve(x, reference=r, parameters=parameters,
                                                                              n_samples=n_draw)))
        data.append((label, *plots.binned_proportions(stimuli[mask], choices[mask])))
        drawn.append(r)
    return plots.psychometric_figure(x, curves, data=data, references=drawn, title=title)


def run_observer(options: ObserverOptions, arrays: Mapping[str, np.ndarray],
                 progress: Progress | None = None) -> Outcome:
    """Compute what ``options`` asks of the observer on ``arrays`` (by request field name).

    Returns an :class:`Outcome` whose message is a ``BayesianObserverResponse``. ``progress``
    (keywords as a ProgressReporter takes them) hears of FIT's optimiser and of each bootstrap
    replicate; an exception it raises stops the fit.
    """
    response = S.BayesianObserverResponse(mode=S.ObserverMode.Value(f"OBSERVER_MODE_{options.mode.upper()}"))
    out = Outcome(response)
    fields = _core_fields(options)
    try:
        if options.mode == "posterior":
            _posterior(options, np.asarray(arrays["observations"]), out)
        elif options.mode == "psychometric":
            _psychometric(options, out)
        elif options.mode == "simulate":
            _simulate(options, arrays, out)
        else:
            _fit(options, arrays, out, progress)
    except RequestError:
        raise
    except ValueError as exc:
        raise _input_error(exc, fields, options.inputs[0] if options.inputs else "parameters") from None
    return out


def _posterior(options: ObserverOptions, observations: np.ndarray, out: Outcome) -> None:
    p = options.parameters
    post = observer.sequential_posterior(observations, prior_mean=p.prior_mean, prior_sd=p.prior_sd,
                                         noise_sd=p.noise_sd)
    obs2 = np.asarray(observations, dtype=float).reshape(-1, observations.shape[-1])
    means2 = post.means.reshape(-1, post.means.shape[-1])
    variances2 = post.variances.reshape(means2.shape)
    single = observations.ndim == 1
    msg = out.message.posterior
    msg.n_sequences, msg.n_observations = means2.shape[0], observations.shape[-1]
    msg.final_mean = float(post.means[-1]) if single else math.nan
    msg.final_sd = float(math.sqrt(post.variances[-1])) if single else math.nan
    msg.total_log_evidence = float(np.sum(post.log_evidence))
    for name in ("means", "variances", "predictive_means", "predictive_sds", "gains"):
        out.array(f"posterior.{name}", f"posterior/{name}", getattr(post, name))
    out.array("posterior.log_evidence", "posterior/log_evidence", np.reshape(post.log_evidence, -1))
    out.figure("figure", "posterior", plots.posterior_figure(
        obs2, means2, variances2, title=f"prior N({p.prior_mean:g}, {p.prior_sd:g}^2), noise sd {p.noise_sd:g}: "
                                        f"posterior +- 2 sd"))


def _pse(parameters: observer.ObserverParameters, reference: float, n: int) -> float:
    w = parameters.prior_sd ** 2 / (parameters.prior_sd ** 2 + parameters.noise_sd ** 2 / n)
    return (reference - (1.0 - w) * parameters.prior_mean) / w


def _psychometric(options: ObserverOptions, out: Outcome) -> None:
    p, n = options.parameters, options.n_samples
    grid = np.linspace(*options.grid)
    curves = np.stack([observer.psychometric_curve(grid, reference=r, parameters=p, n_samples=n)
                       for r in options.psychometric_references])
    msg = out.message.psychometric
    msg.references[:] = list(options.psychometric_references)
    msg.points_of_subjective_equality[:] = [_pse(p, r, n) for r in options.psychometric_references]
    msg.discrimination_sd = p.noise_sd / math.sqrt(n)
    out.array("psychometric.stimuli", "psychometric/stimuli", grid)
    out.array("psychometric.probabilities", "psychometric/probabilities", curves)
    out.figure("figure", "psychometric", plots.psychometric_figure(
        grid, [(f"reference {r:g}", c) for r, c in zip(options.psychometric_references, curves)],
        references=options.psychometric_references,
        title=f"observer: prior N({p.prior_mean:g}, {p.prior_sd:g}^2), noise sd {p.noise_sd:g}, lapse {p.lapse:g}, "
              f"{n} measurement{'s' if n > 1 else ''}"))


def _simulate(options: ObserverOptions, arrays: Mapping[str, np.ndarray], out: Outcome) -> None:
    stimuli, references, n_samples = _trial_inputs(options, arrays)
    p = options.parameters
    choices = observer.simulate_choices(stimuli, references, parameters=p, n_samples=n_samples, seed=options.seed)
    msg = out.message.simulated
    msg.n_trials = int(choices.size)
    msg.fraction_greater = float(choices.mean())
    msg.log_likelihood = observer.choice_log_likelihood(stimuli, references, choices, parameters=p,
                                                        n_samples=n_samples)
    out.array("simulated.choices", "simulated/choices", choices)
    out.figure("figure", "simulated", _choice_figure(
        np.asarray(stimuli, dtype=float), references, choices, p, n_samples, options.grid,
        title=f"{choices.size} simulated choices", curve_label="observer"))


def _fit(options: ObserverOptions, arrays: Mapping[str, np.ndarray], out: Outcome,
         progress: Progress | None = None) -> None:
    stimuli, references, n_samples = _trial_inputs(options, arrays)

    def report(fraction: float, message: str) -> None:
        progress(fraction_done=fraction, stage="fit", message=message)

    fit = observer.fit_observer(stimuli, references, arrays["choices"], n_samples=n_samples,
                                fit_lapse=options.fit_lapse, lapse=options.lapse, confidence=options.confidence,
                                n_bootstrap=options.n_bootstrap, seed=options.seed,
                                report=report if progress is not None else None)
    msg = out.message.fit
    for i, name in enumerate(fit.names):
        msg.parameters.add(name=name, estimate=float(fit.estimate[i]), standard_error=float(fit.standard_error[i]),
                           ci_lower=float(fit.ci_lower[i]), ci_upper=float(fit.ci_upper[i]),
                           bootstrap_ci_lower=float(fit.bootstrap_ci_lower[i]),
                           bootstrap_ci_upper=float(fit.bootstrap_ci_upper[i]))
    msg.negative_log_likelihood = fit.negative_log_likelihood
    msg.n_trials = fit.n_trials
    msg.converged = fit.converged
    msg.hessian_positive_definite = fit.hessian_positive_definite
    msg.confidence = fit.confidence
    out.array("fit.theta_covariance", "fit/theta_covariance", fit.theta_covariance)
    if options.n_bootstrap:
        out.array("fit.bootstrap_estimates", "fit/bootstrap_estimates", fit.bootstrap_estimates)
    out.array("fit.predicted", "fit/predicted", observer.psychometric_curve(
        np.asarray(stimuli, dtype=float), reference=references, parameters=fit.parameters, n_samples=n_samples))
    choices = np.asarray(arrays["choices"]).astype(bool)
    q = fit.parameters
    out.figure("figure", "fit", _choice_figure(
        np.asarray(stimuli, dtype=float), references, choices, q, n_samples, options.grid,
        title=f"fit to {fit.n_trials} choices: prior N({q.prior_mean:.3g}, {q.prior_sd:.3g}^2), noise sd "
              f"{q.noise_sd:.3g}, lapse {q.lapse:.2g}", curve_label="fit"))


# ------------------------------------------------------------------------------------------------
# TrainPredictiveCoding: checks


_SOURCES = {S.IMAGE_SOURCE_UNSPECIFIED: "natural", S.IMAGE_SOURCE_NATURAL: "natural",
            S.IMAGE_SOURCE_PINK_NOISE: "pink_noise", S.IMAGE_SOURCE_UPLOADED: "uploaded"}
_ACTIVATIONS = {S.PREDICTION_ACTIVATION_UNSPECIFIED: "linear", S.PREDICTION_ACTIVATION_LINEAR: "linear",
                S.PREDICTION_ACTIVATION_TANH: "tanh"}
_PRIORS = {S.CAUSE_PRIOR_UNSPECIFIED: "cauchy", S.CAUSE_PRIOR_CAUCHY: "cauchy",
           S.CAUSE_PRIOR_GAUSSIAN: "gaussian"}
DEFAULT_NATURAL_IMAGES = ("camera", "astronaut", "coffee")
MAX_IMAGES = 64
MAX_LEVELS = 8
MAX_UNITS = 4096
MAX_PATCH = 64


@dataclass(frozen=True)
class PredictiveCodingOptions:
    """A checked ``TrainPredictiveCodingRequest`` (the uploaded images aside)."""

    source: str
    natural_images: tuple[str, ...]
    pink_noise: tuple[int, int, float]          # n_images, size, exponent
    n_uploaded: int
    whiten: bool
    whitening_cutoff: float
    n_regions: int
    patch_shape: tuple[int, int]
    n_modules: int
    module_offset: int
    layer_sizes: tuple[int, ...]
    activation: str
    noise_sds: tuple[float, ...]
    prior: str
    sparsity: tuple[float, ...]
    n_batches: int
    batch_size: int
    n_steps: int
    rate: float
    learning_rate: float
    weight_decay: float
    normalize: bool
    seed: int
    bar_units: tuple[int, ...] = ()
    bar_lengths: tuple[float, ...] = ()
    bar_width: float = 1.0
    bar_steps: int = 100

    @property
    def region_shape(self) -> tuple[int, int]:
        h, w = self.patch_shape
        return h, w + (self.n_modules - 1) * self.module_offset

    @property
    def regions_bytes(self) -> int:
        """Memory of the sampled regions and of their split into module patches (float64)."""
        h, w = self.patch_shape
        return 8 * self.n_regions * (math.prod(self.region_shape) + self.n_modules * h * w)


def _per_level(values: Sequence[float], field: str, default: Sequence[float], n_levels: int, *,
               positive: bool) -> tuple[float, ...]:
    values = tuple(values) or tuple(default)
    if len(values) == 1:
        values = values * n_levels
    if len(values) != n_levels:
        raise _fail(field, f"must hold one value or one per level ({n_levels})", list(values))
    for i, v in enumerate(values):
        ok = math.isfinite(v) and (v > 0 if positive else v >= 0)
        if not ok:
            raise _fail(f"{field}[{i}]", f"must be a finite number {'>' if positive else '>='} 0", v)
    return tuple(float(v) for v in values)


def predictive_coding_options(request: S.TrainPredictiveCodingRequest, *,
                              max_bytes: int | None = None) -> PredictiveCodingOptions:
    """Check a ``TrainPredictiveCodingRequest``; RequestError naming the first bad field.

    ``max_bytes`` caps the memory of the sampled regions (RESOURCE_EXHAUSTED above it).
    """
    source = _enum(_SOURCES, request.source, "source", S.ImageSource)
    names = tuple(request.natural_images) or DEFAULT_NATURAL_IMAGES
    if request.natural_images and source != "natural":
        raise RequestError("natural_images is read only by IMAGE_SOURCE_NATURAL", field="natural_images")
    for i, name in enumerate(names):
        if name not in pc.NATURAL_IMAGE_NAMES:
            raise _fail(f"natural_images[{i}]", f"must be one of {', '.join(pc.NATURAL_IMAGE_NAMES)}", name)
    if len(set(names)) != len(names):
        raise _fail("natural_images", "must not name an image twice", list(names))
    pink = request.pink_noise
    if request.HasField("pink_noise") and source != "pink_noise":
        raise RequestError("pink_noise is read only by IMAGE_SOURCE_PINK_NOISE", field="pink_noise")
    exponent = _optional(pink, "exponent", 2.0)
    if not (math.isfinite(exponent) and exponent >= 0):
        raise _fail("pink_noise.exponent", "must be a finite number >= 0", exponent)
    pink_noise = (_count(pink.n_images, "pink_noise.n_images", 3, maximum=MAX_IMAGES),
                  _count(pink.size, "pink_noise.size", 256, maximum=4096, minimum=2), float(exponent))
    if source == "uploaded":
        if not request.images:
            raise RequestError("images is required by IMAGE_SOURCE_UPLOADED: one or more 2-D arrays",
                               field="images")
        if len(request.images) > MAX_IMAGES:
            raise _fail("images", f"must hold at most {MAX_IMAGES} images", len(request.images))
    elif request.images:
        raise RequestError("images is read only by IMAGE_SOURCE_UPLOADED", field="images")
    cutoff = _positive(_optional(request, "whitening_cutoff", 0.8), "whitening_cutoff")
    layer_sizes = tuple(request.layer_sizes) or (32, 16)
    if len(layer_sizes) > MAX_LEVELS:
        raise _fail("layer_sizes", f"must name at most {MAX_LEVELS} levels", list(layer_sizes))
    for i, n in enumerate(layer_sizes):
        if not 1 <= n <= MAX_UNITS:
            raise _fail(f"layer_sizes[{i}]", f"must be an integer in [1, {MAX_UNITS}]", n)
    n_levels = len(layer_sizes)
    patch = (_count(request.patch_height, "patch_height", 8, maximum=MAX_PATCH, minimum=3),
             _count(request.patch_width, "patch_width", 8, maximum=MAX_PATCH, minimum=3))
    n_modules = _count(request.n_modules, "n_modules", 3, maximum=64)
    offset = _count(request.module_offset, "module_offset", 4, maximum=MAX_PATCH)
    n_regions = _count(request.n_regions, "n_regions", 10_000, maximum=10**7)
    batch_size = _count(request.batch_size, "batch_size", 100, maximum=10**6)
    if batch_size > n_regions:
        raise _fail("batch_size", f"must be at most n_regions ({n_regions})", batch_size)
    rate = _optional(request, "rate", 0.7)
    if not (math.isfinite(rate) and 0 < rate <= 1):
        raise _fail("rate", "must be in (0, 1]", rate)
    learning_rate = _positive(_optional(request, "learning_rate", 0.3), "learning_rate")
    if not (math.isfinite(request.weight_decay) and request.weight_decay >= 0):
        raise _fail("weight_decay", "must be a finite number >= 0", request.weight_decay)
    options = PredictiveCodingOptions(
        source=source, natural_images=names, pink_noise=pink_noise, n_uploaded=len(request.images),
        whiten=bool(_optional(request, "whiten", True)), whitening_cutoff=cutoff, n_regions=n_regions,
        patch_shape=patch, n_modules=n_modules, module_offset=offset, layer_sizes=layer_sizes,
        activation=_enum(_ACTIVATIONS, request.activation, "activation", S.PredictionActivation),
        noise_sds=_per_level(request.noise_sds, "noise_sds", (1.0,), n_levels, positive=True),
        prior=_enum(_PRIORS, request.prior, "prior", S.CausePrior),
        sparsity=_per_level(request.sparsity, "sparsity", (2.0,) + (0.5,) * (n_levels - 1), n_levels,
                            positive=False),
        n_batches=_count(request.n_batches, "n_batches", 200, maximum=10**6), batch_size=batch_size,
        n_steps=_count(request.n_steps, "n_steps", 20, maximum=10_000), rate=float(rate),
        learning_rate=learning_rate, weight_decay=float(request.weight_decay),
        normalize=bool(_optional(request, "normalize", True)), seed=int(request.seed))
    if max_bytes is not None and options.regions_bytes > max_bytes:
        raise ResourceExhausted(f"{n_regions} regions of {options.region_shape} pixels take {options.regions_bytes} "
                                f"bytes, more than this service loads (NEUROMESH_MAX_INPUT_BYTES={max_bytes}); "
                                f"sample fewer regions", field="n_regions")
    probe = request.bar_length
    units = tuple(int(u) for u in probe.units)
    for i, u in enumerate(units):
        if not 0 <= u < layer_sizes[0]:
            raise _fail(f"bar_length.units[{i}]", f"must index the {layer_sizes[0]} level-1 units", u)
    if len(set(units)) != len(units):
        raise _fail("bar_length.units", "must not name a unit twice", list(units))
    if len(units) > 64:
        raise _fail("bar_length.units", "must name at most 64 units", len(units))
    region_width = options.region_shape[1]
    lengths = tuple(float(v) for v in probe.lengths) or tuple(float(v) for v in range(region_width + 1))
    if len(lengths) > 1000:
        raise _fail("bar_length.lengths", "must hold at most 1000 lengths", len(lengths))
    for i, v in enumerate(lengths):
        if not (math.isfinite(v) and v >= 0):
            raise _fail(f"bar_length.lengths[{i}]", "must be a finite number >= 0 (pixels)", v)
    width = _positive(_optional(probe, "width", 1.0), "bar_length.width")
    steps = _count(probe.n_steps, "bar_length.n_steps", 100, maximum=10_000)
    return PredictiveCodingOptions(**{**options.__dict__, "bar_units": units, "bar_lengths": lengths,
                                      "bar_width": width, "bar_steps": steps})


# ------------------------------------------------------------------------------------------------
# TrainPredictiveCoding: computing


#: fractions of the progress given to each stage
_STAGES = {"images": (0.0, 0.05), "train": (0.05, 0.85), "fields": (0.85, 0.93), "bar_length": (0.93, 0.97)}
_TRAIN_FIELDS = {"regions": "n_regions", "batch_size": "batch_size", "rate": "rate", "learning_rate": "learning_rate",
                 "weight_decay": "weight_decay", "noise_sds": "noise_sds", "sparsity": "sparsity",
                 "layer_sizes": "layer_sizes", "n_steps": "n_steps", "n_batches": "n_batches",
                 "patch_shape": "patch_height"}


def _stage(progress: Progress | None, stage: str, fraction: float, message: str, counters=None) -> None:
    if progress is not None:
        lo, hi = _STAGES[stage]
        progress(fraction_done=lo + (hi - lo) * min(max(fraction, 0.0), 1.0), stage=stage, message=message,
                 counters=counters)


def _images(options: PredictiveCodingOptions, uploaded: Sequence[np.ndarray], rng: np.random.Generator,
            progress: Progress | None) -> list[np.ndarray]:
    """The training images, whitened if asked; uploaded ones checked one by one."""
    h, w = options.region_shape
    if options.source == "natural":
        images = pc.natural_images(options.natural_images)
        names = [f"natural_images[{i}]" for i in range(len(images))]
    elif options.source == "pink_noise":
        n, size, exponent = options.pink_noise
        images = [pc.pink_noise_image((size, size), exponent=exponent, seed=rng) for _ in range(n)]
        names = ["pink_noise.size"] * n
    else:
        images, names = [], []
        for i, image in enumerate(uploaded):
            where = f"images[{i}]"
            image = np.asarray(image)
            if image.ndim != 2 or not np.issubdtype(image.dtype, np.number) or np.iscomplexobj(image):
                raise RequestError(f"{where} must be a 2-D array of real numbers (height, width), got shape "
                                   f"{image.shape} and dtype {image.dtype}", field=where)
            if not np.isfinite(image).all():
                raise RequestError(f"{where} holds NaN or infinite values", field=where)
            images.append(image.astype(np.float64))
            names.append(where)
    for image, where in zip(images, names):
        if image.shape[0] < h or image.shape[1] < w:
            raise RequestError(f"{where} of shape {image.shape} is smaller than the regions {(h, w)} "
                               f"(patch_height x (patch_width + (n_modules - 1) module_offset))", field=where)
    if options.whiten:
        whitened = []
        for i, (image, where) in enumerate(zip(images, names)):
            try:
                whitened.append(pc.whiten_image(image, cutoff=options.whitening_cutoff))
            except ValueError as exc:
                raise RequestError(f"{where}: {exc}", field=where) from None
            _stage(progress, "images", (i + 1) / len(images), f"whitened image {i + 1} of {len(images)}")
        images = whitened
    return images


def _end_stopping(error: np.ndarray) -> float:
    peak = float(np.max(np.abs(error)))
    return 1.0 - float(abs(error[-1])) / peak if peak > 0 else 0.0


def run_predictive_coding(options: PredictiveCodingOptions, uploaded: Sequence[np.ndarray] = (),
                          progress: Progress | None = None) -> Outcome:
    """Sample regions, train, measure the fields (and bars): an Outcome of a ``TrainPredictiveCodingResult``.

    ``progress`` is a :class:`services.common.progress.ProgressReporter` (or any callable taking
    its keywords); an exception it raises stops the work at the next report.
    """
    rng = np.random.default_rng(options.seed)
    image_rng, region_rng, train_rng, control_rng = rng.spawn(4)
    _stage(progress, "images", 0.0, f"preparing {options.source} images")
    images = _images(options, uploaded, image_rng, progress)
    regions = pc.sample_regions(images, shape=options.region_shape, n_regions=options.n_regions, seed=region_rng)
    del images

    def train_report(fraction: float, message: str) -> None:
        _stage(progress, "train", fraction, message,
               counters={"batches_done": round(fraction * options.n_batches)})

    try:
        training = pc.train_predictive_coding(
            regions, patch_shape=options.patch_shape, n_modules=options.n_modules,
            module_offset=options.module_offset, layer_sizes=options.layer_sizes, activation=options.activation,
            noise_sds=options.noise_sds, prior=options.prior, sparsity=options.sparsity, n_batches=options.n_batches,
            batch_size=options.batch_size, n_steps=options.n_steps, rate=options.rate,
            learning_rate=options.learning_rate, weight_decay=options.weight_decay, normalize=options.normalize,
            seed=train_rng, report=train_report if progress is not None else None)
    except (ValueError, FloatingPointError) as exc:
        raise _input_error(exc, _TRAIN_FIELDS, "learning_rate") from None
    del regions
    net = training.network
    if not all(np.isfinite(U).all() for U in net.weights):
        raise RequestError("the weights diverged during training; lower learning_rate or rate",
                           field="learning_rate")

    _stage(progress, "fields", 0.0, "fitting Gabors to the level-1 fields")
    fields = pc.first_layer_fields(net)
    gabor = pc.fit_gabor(fields)
    tuning = pc.orientation_selectivity(fields)
    _stage(progress, "fields", 0.5, "measuring an untrained network of the same shape")
    control = pc.random_network(patch_shape=options.patch_shape, n_modules=options.n_modules,
                                module_offset=options.module_offset, layer_sizes=options.layer_sizes,
                                activation=options.activation, noise_sds=options.noise_sds, prior=options.prior,
                                sparsity=options.sparsity, seed=control_rng)
    control_fields = pc.first_layer_fields(control)
    control_r2 = pc.fit_gabor(control_fields).r2
    control_osi = pc.orientation_selectivity(control_fields).osi

    result = S.TrainPredictiveCodingResult(
        median_gabor_r2=float(np.median(gabor.r2)), median_osi=float(np.median(tuning.osi)),
        random_median_gabor_r2=float(np.median(control_r2)), random_median_osi=float(np.median(control_osi)),
        n_regions=options.n_regions, region_shape=list(options.region_shape))
    tenth = max(1, options.n_batches // 10)
    result.initial_relative_errors[:] = training.relative_errors[:tenth].mean(axis=0).tolist()
    result.final_relative_errors[:] = training.relative_errors[-tenth:].mean(axis=0).tolist()
    for unit in range(len(fields)):
        result.field_measures.add(unit=unit, gabor_r2=float(gabor.r2[unit]), osi=float(tuning.osi[unit]),
                                  orientation=float(gabor.orientation[unit]), frequency=float(gabor.frequency[unit]),
                                  sigma_across=float(gabor.sigma_across[unit]),
                                  sigma_along=float(gabor.sigma_along[unit]), center_x=float(gabor.center[unit, 0]),
                                  center_y=float(gabor.center[unit, 1]))
    out = Outcome(result)
    for level, U in enumerate(net.weights):
        out.array("weights[]", f"weights/{level}", U)
    out.array("fields", "fields", fields)
    out.array("prediction_errors", "prediction_errors", training.prediction_errors)
    out.array("relative_errors", "relative_errors", training.relative_errors)
    out.array("energy", "energy", training.energy)
    out.array("gabor_r2", "gabor_r2", gabor.r2)
    out.array("orientation_selectivity", "orientation_selectivity", tuning.osi)
    out.array("gabor_parameters", "gabor_parameters", gabor.parameters)
    source = {"natural": "natural images", "pink_noise": "pink noise", "uploaded": "uploaded images"}[options.source]
    out.figure("fields_figure", "fields", plots.fields_figure(
        fields, gabor.r2, title=f"level-1 fields after {options.n_batches} batches of {source} (median Gabor R^2 "
                                f"{result.median_gabor_r2:.2f}; untrained {result.random_median_gabor_r2:.2f})"))
    out.figure("errors_figure", "prediction_errors", plots.prediction_errors_figure(
        training.relative_errors, title=f"relative prediction errors, {source}"))

    if options.bar_units:
        lengths = np.asarray(options.bar_lengths)
        responses = np.empty((len(options.bar_units), 4, lengths.size))
        for i, unit in enumerate(options.bar_units):
            if progress is not None:
                _stage(progress, "bar_length", i / len(options.bar_units), f"bars for unit {unit}")
            probe = pc.bar_length_tuning(net, unit=unit, lengths=lengths, width=options.bar_width,
                                         whiten=options.whiten, n_steps=options.bar_steps)
            responses[i] = [probe["error"], probe["cause"], probe["error_no_feedback"], probe["cause_no_feedback"]]
            result.bar_tuning.add(unit=unit, orientation=float(probe["orientation"]),
                                  center_x=float(probe["center"][0]), center_y=float(probe["center"][1]),
                                  end_stopping=_end_stopping(probe["error"]),
                                  end_stopping_no_feedback=_end_stopping(probe["error_no_feedback"]))
        out.array("bar_lengths", "bar/lengths", lengths)
        out.array("bar_responses", "bar/responses", responses)
        out.figure("bar_figure", "bar_length", plots.bar_tuning_figure(lengths, responses, options.bar_units))
    return out

