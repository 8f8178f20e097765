"""BayesianObserver and TrainPredictiveCoding requests: checked field by field, computed, stored.

Every bad value is a RequestError (INVALID_ARGUMENT) naming the request field at fault, also
when the core finds the problem in an uploaded array; the outcome of a good request carries
the core's numbers and lands under the call's prefix.
"""

from __future__ import annotations

import doctest
import importlib
import math

import numpy as np
import pytest

from neuromesh.common.v1.artifact_pb2 import ArtifactRef
from neuromesh.simulation.v1 import simulation_pb2 as S
from services.common.errors import InvalidArgument, RequestError, ResourceExhausted
from services.simulation import brain_models as bm
from services.simulation.core import bayesian_observer as bo
from services.simulation.core import predictive_coding as pc


class MemoryStore:
    """The part of ArtifactStore that store_outcome uses, in memory."""

    def __init__(self):
        self.objects = {}

    def put_array(self, key, value, *, if_exists="error"):
        self.objects[key] = np.asarray(value)
        return ArtifactRef(key=key, shape=list(np.shape(value)), dtype=str(np.asarray(value).dtype))

    def put_bytes(self, key, data, *, media_type="", if_exists="error"):
        self.objects[key] = data
        return ArtifactRef(key=key, media_type=media_type, size_bytes=len(data))


def ref(key: str) -> ArtifactRef:
    return ArtifactRef(key=key)


OBSERVER = S.ObserverParameters(prior_mean=0.5, prior_sd=1.0, noise_sd=0.8)


# --- BayesianObserver: checks ----------------------------------------------------------------


def test_observer_defaults_and_inputs_per_mode():
    fit = bm.observer_options(S.BayesianObserverRequest(mode=S.OBSERVER_MODE_FIT, stimuli=ref("x"),
                                                        choices=ref("c"), n_bootstrap=5))
    assert (fit.mode, fit.parameters, fit.fit_lapse, fit.confidence, fit.n_samples, fit.n_bootstrap) == \
        ("fit", None, True, 0.95, 1, 5)
    assert fit.inputs == ("stimuli", "choices") and fit.grid is None
    fixed = bm.observer_options(S.BayesianObserverRequest(mode=S.OBSERVER_MODE_FIT, stimuli=ref("x"),
                                                          choices=ref("c"), references=ref("r"), fix_lapse=True,
                                                          parameters=S.ObserverParameters(lapse=0.02)))
    assert (fixed.fit_lapse, fixed.lapse, fixed.inputs) == (False, 0.02, ("stimuli", "references", "choices"))
    simulate = bm.observer_options(S.BayesianObserverRequest(mode=S.OBSERVER_MODE_SIMULATE, parameters=OBSERVER,
                                                             stimuli=ref("x"), n_samples_per_trial=ref("n"), seed=3))
    assert simulate.parameters == bo.ObserverParameters(0.5, 1.0, 0.8) and simulate.seed == 3
    assert simulate.inputs == ("stimuli", "n_samples_per_trial")
    curves = bm.observer_options(S.BayesianObserverRequest(mode=S.OBSERVER_MODE_PSYCHOMETRIC, parameters=OBSERVER,
                                                           reference=0.25))
    half = 3 * math.hypot(1.0, 0.8)
    assert curves.psychometric_references == (0.25,) and curves.grid == (0.5 - half, 0.5 + half, 101)
    assert curves.inputs == ()


@pytest.mark.parametrize("request_, field", [
    (S.BayesianObserverRequest(), "mode"),
    (S.BayesianObserverRequest(mode=42, parameters=OBSERVER), "mode"),
    (S.BayesianObserverRequest(mode=S.OBSERVER_MODE_PSYCHOMETRIC), "parameters.prior_sd"),
    (S.BayesianObserverRequest(mode=S.OBSERVER_MODE_PSYCHOMETRIC, parameters=S.ObserverParameters(
        prior_sd=1.0, noise_sd=math.nan)), "parameters.noise_sd"),
    (S.BayesianObserverRequest(mode=S.OBSERVER_MODE_PSYCHOMETRIC, parameters=S.ObserverParameters(
        prior_mean=math.inf, prior_sd=1.0, noise_sd=1.0)), "parameters.prior_mean"),
    (S.BayesianObserverRequest(mode=S.OBSERVER_MODE_PSYCHOMETRIC, parameters=S.ObserverParameters(
        prior_sd=1.0, noise_sd=1.0, lapse=1.0)), "parameters.lapse"),
    (S.BayesianObserverRequest(mode=S.OBSERVER_MODE_FIT, stimuli=ref("x"), choices=ref("c"), fix_lapse=True,
                               parameters=S.ObserverParameters(lapse=-0.1)), "parameters.lapse"),
    (S.BayesianObserverRequest(mode=S.OBSERVER_MODE_PSYCHOMETRIC, parameters=OBSERVER, reference=math.nan),
     "reference"),
    (S.BayesianObserverRequest(mode=S.OBSERVER_MODE_PSYCHOMETRIC, parameters=OBSERVER, n_samples=-2), "n_samples"),
    (S.BayesianObserverRequest(mode=S.OBSERVER_MODE_PSYCHOMETRIC, parameters=OBSERVER,
                               grid=S.StimulusGrid(start=1.0, stop=1.0)), "grid.stop"),
    (S.BayesianObserverRequest(mode=S.OBSERVER_MODE_PSYCHOMETRIC, parameters=OBSERVER,
                               grid=S.StimulusGrid(start=0.0, stop=1.0, n_points=1)), "grid.n_points"),
    (S.BayesianObserverRequest(mode=S.OBSERVER_MODE_PSYCHOMETRIC, parameters=OBSERVER,
                               psychometric_references=[0.0, math.inf]), "psychometric_references[1]"),
    (S.BayesianObserverRequest(mode=S.OBSERVER_MODE_SIMULATE, parameters=OBSERVER, stimuli=ref("x"),
                               psychometric_references=[0.0]), "psychometric_references"),
    (S.BayesianObserverRequest(mode=S.OBSERVER_MODE_FIT, stimuli=ref("x"), choices=ref("c"), confidence=1.5),
     "confidence"),
    (S.BayesianObserverRequest(mode=S.OBSERVER_MODE_FIT, stimuli=ref("x"), choices=ref("c"), n_bootstrap=5000),
     "n_bootstrap"),
    (S.BayesianObserverRequest(mode=S.OBSERVER_MODE_SIMULATE, parameters=OBSERVER, stimuli=ref("x"),
                               n_bootstrap=10), "n_bootstrap"),
    (S.BayesianObserverRequest(mode=S.OBSERVER_MODE_FIT, stimuli=ref("x")), "choices.key"),
    (S.BayesianObserverRequest(mode=S.OBSERVER_MODE_POSTERIOR, parameters=OBSERVER), "observations.key"),
    (S.BayesianObserverRequest(mode=S.OBSERVER_MODE_FIT, stimuli=ref("x"), choices=ref("c"),
                               observations=ref("o")), "observations"),
    (S.BayesianObserverRequest(mode=S.OBSERVER_MODE_PSYCHOMETRIC, parameters=OBSERVER, stimuli=ref("x")),
     "stimuli"),
])
def test_bad_observer_requests_name_the_field(request_, field):
    with pytest.raises(RequestError) as info:
        bm.observer_options(request_)
    assert info.value.field == field and str(info.value).startswith(field.removesuffix(".key"))
    assert isinstance(info.value, InvalidArgument)


# --- BayesianObserver: computing -------------------------------------------------------------


def test_posterior_outcome_is_the_conjugate_update_and_is_stored_at_its_fields():
    options = bm.observer_options(S.BayesianObserverRequest(mode=S.OBSERVER_MODE_POSTERIOR, parameters=OBSERVER,
                                                            observations=ref("o")))
    observations = np.array([1.0, 2.0, 0.5, 1.5])
    outcome = bm.run_observer(options, {"observations": observations})
    store = MemoryStore()
    response = bm.store_outcome(store, "calls/1", outcome)
    precision = 1 / 1.0 ** 2 + 4 / 0.8 ** 2
    expected = (0.5 / 1.0 + observations.sum() / 0.8 ** 2) / precision
    assert response.mode == S.OBSERVER_MODE_POSTERIOR and response.WhichOneof("result") == "posterior"
    assert response.posterior.final_mean == pytest.approx(expected, rel=1e-12)
    assert response.posterior.final_sd == pytest.approx(precision ** -0.5, rel=1e-12)
    assert response.posterior.means.key == "calls/1/posterior/means"
    assert store.objects["calls/1/posterior/means"][-1] == pytest.approx(expected, rel=1e-12)
    assert store.objects["calls/1/posterior/log_evidence"].shape == (1,)
    assert response.figure.key == "calls/1/posterior.png" and store.objects[response.figure.key][:4] == b"\x89PNG"
    several = bm.run_observer(options, {"observations": np.tile(observations, (3, 1))}).message.posterior
    assert several.n_sequences == 3 and math.isnan(several.final_mean)


def test_simulated_choices_fit_back_to_their_observer_with_the_core_numbers():
    rng = np.random.default_rng(1)
    stimuli, references = rng.normal(0.5, 1.5, 2000), rng.choice([-0.5, 0.5, 1.5], 2000)
    arrays = {"stimuli": stimuli, "references": references}
    simulate = bm.observer_options(S.BayesianObserverRequest(mode=S.OBSERVER_MODE_SIMULATE, parameters=OBSERVER,
                                                             stimuli=ref("x"), references=ref("r"), seed=4))
    store = MemoryStore()
    simulated = bm.store_outcome(store, "sim", bm.run_observer(simulate, arrays)).simulated
    choices = store.objects[simulated.choices.key]
    np.testing.assert_array_equal(choices, bo.simulate_choices(stimuli, references,
                                                               parameters=bo.ObserverParameters(0.5, 1.0, 0.8),
                                                               seed=4))
    fit_options = bm.observer_options(S.BayesianObserverRequest(mode=S.OBSERVER_MODE_FIT, stimuli=ref("x"),
                                                                references=ref("r"), choices=ref("c"),
                                                                fix_lapse=True))
    fit = bm.run_observer(fit_options, {**arrays, "choices": choices.astype(np.float32)}).message.fit
    assert [p.name for p in fit.parameters] == ["prior_mean", "prior_sd", "noise_sd"]
    for p, truth in zip(fit.parameters, (0.5, 1.0, 0.8)):
        assert abs(p.estimate - truth) < 4 * p.standard_error and p.ci_lower < p.estimate < p.ci_upper
        assert math.isnan(p.bootstrap_ci_lower)
    core = bo.fit_observer(stimuli, references, choices, fit_lapse=False)
    np.testing.assert_allclose([p.estimate for p in fit.parameters], core.estimate)


def test_a_raising_progress_stops_a_long_bootstrap():
    rng = np.random.default_rng(2)
    stimuli, references = rng.normal(0, 1.5, 500), rng.choice([-1.0, 1.0], 500)
    choices = bo.simulate_choices(stimuli, references, parameters=bo.ObserverParameters(0.0, 1.0, 0.5))
    options = bm.observer_options(S.BayesianObserverRequest(mode=S.OBSERVER_MODE_FIT, stimuli=ref("x"),
                                                            references=ref("r"), choices=ref("c"),
                                                            n_bootstrap=2000, fix_lapse=True))
    messages = []

    def progress(**event):
        messages.append(event["message"])
        if event["message"].startswith("bootstrap"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        bm.run_observer(options, {"stimuli": stimuli, "references": references, "choices": choices}, progress)
    assert messages[-1] == "bootstrap replicate 1 of 2000"


def test_integer_valued_float_counts_are_taken_as_measurement_counts():
    options = bm.observer_options(S.BayesianObserverRequest(mode=S.OBSERVER_MODE_SIMULATE, parameters=OBSERVER,
                                                            stimuli=ref("x"), n_samples_per_trial=ref("n")))
    out = bm.run_observer(options, {"stimuli": np.linspace(-1, 1, 10), "n_samples_per_trial": np.full(10, 3.0)})
    assert out.message.simulated.n_trials == 10
    with pytest.raises(RequestError) as info:
        bm.run_observer(options, {"stimuli": np.linspace(-1, 1, 10), "n_samples_per_trial": np.full(10, 2.5)})
    assert info.value.field == "n_samples_per_trial"


@pytest.mark.parametrize("arrays, field", [
    ({"stimuli": np.array([0.0, np.nan, 1.0]), "choices": np.array([0, 1, 1])}, "stimuli"),
    ({"stimuli": np.zeros((3, 2)), "choices": np.array([0, 1, 1])}, "stimuli"),
    ({"stimuli": np.array([0.0, 0.5, 1.0]), "choices": np.array([0, 2, 1])}, "choices"),
    ({"stimuli": np.array([0.0, 0.5, 1.0]), "choices": np.array([0, 1])}, "choices"),
    ({"stimuli": np.array([0.0, 0.5, 1.0]), "choices": np.array([0, 1, 1]), "references": np.zeros(4)},
     "references"),
    ({"stimuli": np.ones(3), "choices": np.array([0, 1, 1])}, "stimuli"),
])
def test_bad_arrays_are_refused_naming_their_field(arrays, field):
    request = S.BayesianObserverRequest(mode=S.OBSERVER_MODE_FIT, stimuli=ref("x"), choices=ref("c"),
                                        references=ref("r") if "references" in arrays else None)
    with pytest.raises(RequestError) as info:
        bm.run_observer(bm.observer_options(request), arrays)
    assert info.value.field == field, str(info.value)


def test_observations_of_the_wrong_rank_name_observations():
    options = bm.observer_options(S.BayesianObserverRequest(mode=S.OBSERVER_MODE_POSTERIOR, parameters=OBSERVER,
                                                            observations=ref("o")))
    with pytest.raises(RequestError) as info:
        bm.run_observer(options, {"observations": np.zeros((2, 2, 2))})
    assert info.value.field == "observations"


# --- TrainPredictiveCoding: checks -----------------------------------------------------------


def test_predictive_coding_defaults_are_the_cores_measured_configuration():
    options = bm.predictive_coding_options(S.TrainPredictiveCodingRequest())
    assert (options.source, options.natural_images, options.whiten, options.whitening_cutoff) == \
        ("natural", ("camera", "astronaut", "coffee"), True, 0.8)
    assert (options.patch_shape, options.n_modules, options.module_offset, options.layer_sizes) == \
        ((8, 8), 3, 4, (32, 16))
    assert (options.noise_sds, options.sparsity, options.prior, options.activation) == \
        ((1.0, 1.0), (2.0, 0.5), "cauchy", "linear")
    assert (options.n_batches, options.batch_size, options.n_steps, options.rate, options.learning_rate) == \
        (200, 100, 20, 0.7, 0.3)
    assert options.region_shape == (8, 16) and options.bar_units == () and options.bar_lengths == tuple(
        float(v) for v in range(17))
    three = bm.predictive_coding_options(S.TrainPredictiveCodingRequest(layer_sizes=[16, 8, 4], noise_sds=[0.5]))
    assert three.sparsity == (2.0, 0.5, 0.5) and three.noise_sds == (0.5, 0.5, 0.5)
    pink = bm.predictive_coding_options(S.TrainPredictiveCodingRequest(
        source=S.IMAGE_SOURCE_PINK_NOISE, pink_noise=S.PinkNoiseImages(n_images=2, exponent=0.0), whiten=False))
    assert pink.pink_noise == (2, 256, 0.0) and not pink.whiten


@pytest.mark.parametrize("request_, field", [
    (S.TrainPredictiveCodingRequest(source=9), "source"),
    (S.TrainPredictiveCodingRequest(natural_images=["lena"]), "natural_images[0]"),
    (S.TrainPredictiveCodingRequest(natural_images=["camera", "camera"]), "natural_images"),
    (S.TrainPredictiveCodingRequest(source=S.IMAGE_SOURCE_PINK_NOISE, natural_images=["camera"]), "natural_images"),
    (S.TrainPredictiveCodingRequest(pink_noise=S.PinkNoiseImages(n_images=2)), "pink_noise"),
    (S.TrainPredictiveCodingRequest(source=S.IMAGE_SOURCE_PINK_NOISE, pink_noise=S.PinkNoiseImages(exponent=-1)),
     "pink_noise.exponent"),
    (S.TrainPredictiveCodingRequest(source=S.IMAGE_SOURCE_PINK_NOISE, pink_noise=S.PinkNoiseImages(size=1)),
     "pink_noise.size"),
    (S.TrainPredictiveCodingRequest(source=S.IMAGE_SOURCE_UPLOADED), "images"),
    (S.TrainPredictiveCodingRequest(images=[ref("i")]), "images"),
    (S.TrainPredictiveCodingRequest(whitening_cutoff=0.0), "whitening_cutoff"),
    (S.TrainPredictiveCodingRequest(layer_sizes=[0]), "layer_sizes[0]"),
    (S.TrainPredictiveCodingRequest(layer_sizes=[2] * 9), "layer_sizes"),
    (S.TrainPredictiveCodingRequest(noise_sds=[1.0, 1.0, 1.0]), "noise_sds"),
    (S.TrainPredictiveCodingRequest(noise_sds=[1.0, 0.0]), "noise_sds[1]"),
    (S.TrainPredictiveCodingRequest(sparsity=[-1.0]), "sparsity[0]"),
    (S.TrainPredictiveCodingRequest(patch_height=2), "patch_height"),
    (S.TrainPredictiveCodingRequest(n_modules=-1), "n_modules"),
    (S.TrainPredictiveCodingRequest(rate=1.5), "rate"),
    (S.TrainPredictiveCodingRequest(learning_rate=0.0), "learning_rate"),
    (S.TrainPredictiveCodingRequest(weight_decay=-0.1), "weight_decay"),
    (S.TrainPredictiveCodingRequest(n_regions=50), "batch_size"),
    (S.TrainPredictiveCodingRequest(activation=5), "activation"),
    (S.TrainPredictiveCodingRequest(prior=3), "prior"),
    (S.TrainPredictiveCodingRequest(bar_length=S.BarLengthProbe(units=[32])), "bar_length.units[0]"),
    (S.TrainPredictiveCodingRequest(bar_length=S.BarLengthProbe(units=[1, 1])), "bar_length.units"),
    (S.TrainPredictiveCodingRequest(bar_length=S.BarLengthProbe(units=[1], lengths=[2, -1])),
     "bar_length.lengths[1]"),
    (S.TrainPredictiveCodingRequest(bar_length=S.BarLengthProbe(units=[1], width=0.0)), "bar_length.width"),
])
def test_bad_predictive_coding_requests_name_the_field(request_, field):
    with pytest.raises(RequestError) as info:
        bm.predictive_coding_options(request_)
    assert info.value.field == field, str(info.value)


def test_regions_larger_than_the_service_loads_are_refused_before_any_work():
    with pytest.raises(ResourceExhausted) as info:
        bm.predictive_coding_options(S.TrainPredictiveCodingRequest(n_regions=100_000), max_bytes=2**20)
    assert info.value.field == "n_regions"


# --- TrainPredictiveCoding: computing --------------------------------------------------------


def small_request(**fields) -> S.TrainPredictiveCodingRequest:
    return S.TrainPredictiveCodingRequest(**{"n_regions": 300, "batch_size": 30, "n_batches": 10,
                                             "layer_sizes": [8, 4], **fields})


def test_a_short_training_stores_weights_curves_fields_and_bar_tuning():
    options = bm.predictive_coding_options(small_request(bar_length=S.BarLengthProbe(units=[2], lengths=[0, 4, 8])))
    events = []
    outcome = bm.run_predictive_coding(options, progress=lambda **k: events.append(k))
    store = MemoryStore()
    result = bm.store_outcome(store, "pc", outcome, lambda **k: events.append(k))
    stages = [e["stage"] for e in events]
    assert stages[0] == "images" and {"train", "fields", "bar_length", "store"} <= set(stages)
    assert [e["fraction_done"] for e in events] == sorted(e["fraction_done"] for e in events)
    assert [tuple(w.shape) for w in result.weights] == [(64, 8), (24, 4)]
    assert [w.key for w in result.weights] == ["pc/weights/0", "pc/weights/1"]
    fields = store.objects["pc/fields"]
    np.testing.assert_allclose(store.objects["pc/gabor_r2"], pc.fit_gabor(fields).r2)
    assert result.median_gabor_r2 == pytest.approx(np.median(store.objects["pc/gabor_r2"]))
    assert 0 <= result.random_median_gabor_r2 <= 1 and len(result.field_measures) == 8
    assert store.objects["pc/relative_errors"].shape == (10, 2) and len(result.final_relative_errors) == 2
    assert [t.unit for t in result.bar_tuning] == [2] and store.objects["pc/bar/responses"].shape == (1, 4, 3)
    for key in ("pc/fields.png", "pc/prediction_errors.png", "pc/bar_length.png"):
        assert store.objects[key][:4] == b"\x89PNG"
    # the same seed trains the same network
    again = bm.run_predictive_coding(options)
    np.testing.assert_array_equal(dict((k, v) for _, k, v in again.arrays)["weights/0"], store.objects["pc/weights/0"])


@pytest.mark.parametrize("image, text", [
    (np.zeros(100), "2-D"), (np.zeros((6, 40)), "smaller than the regions"),
    (np.full((32, 32), np.nan), "NaN"), (np.ones((32, 32)), "constant"),
])
def test_bad_uploaded_images_name_their_index(image, text):
    options = bm.predictive_coding_options(small_request(source=S.IMAGE_SOURCE_UPLOADED,
                                                         images=[ref("a"), ref("b")]))
    with pytest.raises(RequestError, match=text) as info:
        bm.run_predictive_coding(options, [pc.pink_noise_image((32, 32)), image])
    assert info.value.field == "images[1]"


def test_a_raising_progress_stops_the_training():
    options = bm.predictive_coding_options(small_request(n_batches=1000))
    seen = []

    def progress(**event):
        seen.append(event["stage"])
        if event["stage"] == "train":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        bm.run_predictive_coding(options, progress=progress)
    assert seen[-1] == "train" and seen.count("train") == 1


@pytest.mark.parametrize("name", ["services.simulation.brain_models", "services.simulation.brain_model_plots"])
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, extraglobs={"np": np}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
