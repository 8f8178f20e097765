"""``client.reduction``: population activity reduced to low-dimensional latents and dynamics.

Activity is ``(n_samples, n_neurons)`` (time bins first: the counts of a binned recording or of
a simulation) or ``(n_trials, n_time, n_neurons)``. Methods: PCA (in memory, randomized, or out
of core for arrays larger than the service's memory), factor analysis, a VAE, t-SNE and an
LFADS-style dynamics model.

Example
-------
>>> with Client.local() as client:                                                   # doctest: +SKIP
...     fit = client.reduction.fit(binned, method="pca", params={"n_components": 3},
...                                smooth_sigma_bins=2.0, true_latents=velocity)
...     fit.scores.explained_variance_ratio, fit.scores.latent_r2_mean
...     latents = fit.array("latents")                                                # (n_bins, 3)
...     fit.show("trajectories_figure")
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from neuromesh.reduction.v1 import reduction_pb2 as R
from neuromesh.reduction.v1 import reduction_pb2_grpc

from .errors import InvalidArgument
from .fields import finite, integer, non_negative, number_list, struct
from .progress import ProgressCallback
from .requests import build_request
from .results import Result
from .service import ServiceClient

__all__ = ["CircuitInference", "FitResult", "FixedPointSearch", "LearningRuleComparison", "ReductionClient",
           "ReductionScoreResult", "TransformResult"]


class FitResult(Result):
    """A fitted reduction (result of Fit).

    Numbers: ``scores`` (``explained_variance``, ``explained_variance_ratio``, ``latent_r2``,
    ``latent_r2_mean``, ``co_smoothing_bits_per_spike``, ``forward_prediction_r2``,
    ``log_likelihood``), ``streamed`` (out-of-core PCA). Artifacts: ``model`` (.npz), ``latents``
    (float32, the activity's shape with n_components last), ``components_figure``,
    ``trajectories_figure``, ``variance_figure``, ``report``. As an input it stands for ``model``.

    Examples
    --------
    >>> fit.latents.shape, fit.scores.explained_variance_ratio[:3]      # doctest: +SKIP
    ((6000, 3), array([0.21, 0.09, 0.04]))
    """

    _figure = "components_figure"


class TransformResult(Result):
    """Latents of new activity under a stored model (answer of Transform): ``latents``. As an
    input it stands for ``latents``.

    Examples
    --------
    >>> client.reduction.transform(fit, new_counts).array("latents").shape    # doctest: +SKIP
    (1200, 3)
    """


class ReductionScoreResult(Result):
    """Scores of a stored model on (new) activity (answer of Score): ``scores``.

    Examples
    --------
    >>> client.reduction.score(fit, new_counts).scores.explained_variance     # doctest: +SKIP
    0.31
    """


class CircuitInference(Result):
    """A recurrent rate network fitted to activity (InferCircuit): ``network`` (its arrays, which
    :meth:`ReductionClient.find_fixed_points` takes back), losses and R² on train and held-out
    trials, ``predicted_activity``, ``states``, ``effective_connectivity`` and its correlation
    with a planted one, ``fixed_points``, figures, ``report``.

    Examples
    --------
    >>> circuit = client.reduction.infer_circuit(activity, inputs=stimulus, epochs=300)   # doctest: +SKIP
    >>> circuit.heldout_activity_r2                                                        # doctest: +SKIP
    0.93
    """

    _figure = "activity_figure"


class FixedPointSearch(Result):
    """Fixed and slow points of a rate network (FindFixedPoints): ``fixed_points``, ``report``.

    Examples
    --------
    >>> client.reduction.find_fixed_points(circuit).fixed_points                          # doctest: +SKIP
    """


class LearningRuleComparison(Result):
    """Learning rules side by side (CompareLearningRules): ``rules`` (curves and update angles per
    rule), ``least_squares_loss``, ``hebbian`` (components against PCA), ``figure``, ``report``.

    Examples
    --------
    >>> rules = client.reduction.compare_learning_rules("two_layer", teacher={"n_samples": 500})   # doctest: +SKIP
    >>> [r.rule for r in rules.rules]                                                              # doctest: +SKIP
    """

    _figure = "figure"


def _ndim(value: Any) -> int | None:
    return value.ndim if isinstance(value, np.ndarray) else None


class ReductionClient(ServiceClient):
    """The reduction service (``neuromesh.reduction.v1.ReductionService``).

    Examples
    --------
    >>> client.reduction                                           # doctest: +SKIP
    <ReductionClient reduction at 127.0.0.1:50052>
    """

    name = "reduction"
    proto_service = "neuromesh.reduction.v1.ReductionService"
    stub_class = reduction_pb2_grpc.ReductionServiceStub

    def fit(self, activity: Any, *, method: str = "pca", params: Mapping[str, Any] | None = None,
            smooth_sigma_bins: float = 0.0, soft_normalize: float = 0.0, trial_average: bool = False,
            conditions: Any = None, true_latents: Any = None, heldout_neurons: Sequence[int] = (),
            test_fraction: float = 0.0, forward_bins: int = 0, seed: int = 0, progress: bool | None = None,
            on_progress: ProgressCallback | None = None, timeout: float | None = None) -> FitResult:
        """Fit a reduction method, score it, store the model, the latents and figures.

        Streams progress (a bar, and ``on_progress`` events); Ctrl-C cancels the fit on the
        service and re-raises ``KeyboardInterrupt``.

        Parameters
        ----------
        activity : array_like, BinnedRecording, SimulationResult or stored array
            ``(n_samples, n_neurons)`` or ``(n_trials, n_time, n_neurons)``.
        method : str, default "pca"
            "pca", "factor_analysis", "vae", "tsne" or "lfads" (the dynamics model).
        params : dict, optional
            Constructor parameters, e.g. ``{"n_components": 10, "solver": "randomized"}``.
        smooth_sigma_bins : float, default 0
            Gaussian smoothing along time, in bins (trials separately); 0 smooths not.
        soft_normalize : float, default 0
            Each neuron divided by (its range + this); 0 normalises not.
        trial_average : bool, default False
            Fit condition averages; needs ``conditions`` and 3-D activity.
        conditions : array_like, optional
            Integer condition per trial, ``(n_trials,)``.
        true_latents : array_like, optional
            Known latents (the activity's shape with n_latents last) for latent-recovery R².
        heldout_neurons : sequence of int
            Neurons held out for co-smoothing (3-D spike counts).
        test_fraction : float, default 0
            Fraction of trials kept for testing, in [0, 1); 0 means 0.2.
        forward_bins : int, default 0
            Bins at the end of each test trial predicted from the rest (dynamics model).
        seed : int, default 0
        progress, on_progress, timeout
            As for :meth:`DecodingClient.train <neuromesh.sdk.decoding.DecodingClient.train>`.

        Returns
        -------
        FitResult

        Examples
        --------
        >>> fit = client.reduction.fit(counts, method="pca", params={"n_components": 3})           # doctest: +SKIP
        >>> fa = client.reduction.fit(trials, method="factor_analysis", heldout_neurons=range(40, 50),
        ...                           params={"n_components": 8})                                   # doctest: +SKIP
        >>> fa.scores.co_smoothing_bits_per_spike                                                    # doctest: +SKIP
        0.17
        """
        if not isinstance(method, str) or not method:
            raise InvalidArgument(f"method must be a method name such as 'pca', not {method!r}", field="method")
        test_fraction = finite(test_fraction, field="test_fraction")
        if not 0.0 <= test_fraction < 1.0:
            raise InvalidArgument(f"test_fraction must be in [0, 1), got {test_fraction}", field="test_fraction")
        if trial_average and conditions is None:
            raise InvalidArgument("trial_average groups trials by condition: it needs conditions", field="conditions")
        ndim = _ndim(activity)
        if ndim is not None and ndim not in (2, 3):
            raise InvalidArgument(f"activity must be 2-D (samples, neurons) or 3-D (trials, time, neurons), got "
                                  f"{ndim}-D", field="activity", reason="SHAPE_MISMATCH")
        if trial_average and ndim == 2:
            raise InvalidArgument("trial_average needs 3-D activity (trials, time, neurons)", field="trial_average")
        spec = R.MethodSpec(name=method)
        parameters = struct(params, field="params")
        if parameters is not None:
            spec.params.CopyFrom(parameters)
        request = R.FitRequest(
            method=spec,
            preprocessing=R.Preprocessing(smooth_sigma_bins=non_negative(smooth_sigma_bins, field="smooth_sigma_bins"),
                                          soft_normalize=non_negative(soft_normalize, field="soft_normalize"),
                                          trial_average=bool(trial_average)),
            heldout_neurons=number_list(heldout_neurons, field="heldout_neurons", kind=int,
                                        check=lambda v, field: integer(v, field=field)),
            test_fraction=test_fraction, forward_bins=integer(forward_bins, field="forward_bins"),
            seed=integer(seed, field="seed", minimum=None))
        artifacts = self.artifacts
        request.activity.CopyFrom(artifacts.array_input(activity, field="activity"))
        if conditions is not None:
            request.conditions.CopyFrom(artifacts.array_input(conditions, field="conditions"))
        if true_latents is not None:
            request.true_latents.CopyFrom(artifacts.array_input(true_latents, field="true_latents"))
        return self._stream("Fit", request, FitResult, timeout=timeout, progress=progress, on_progress=on_progress)

    def transform(self, model: Any, activity: Any, *, timeout: float | None = None) -> TransformResult:
        """Latents of new activity under a stored model.

        Parameters
        ----------
        model : FitResult or stored model
        activity : array_like or stored array
            With the model's number of neurons.
        timeout : float, optional

        Returns
        -------
        TransformResult

        Examples
        --------
        >>> latents = client.reduction.transform(fit, new_counts).array("latents")     # doctest: +SKIP
        """
        request = R.TransformRequest(model=self.artifacts.file_input(model, field="model"),
                                     activity=self.artifacts.array_input(activity, field="activity"))
        return self._unary("Transform", request, TransformResult, timeout)

    def score(self, model: Any, activity: Any, *, true_latents: Any = None,
              timeout: float | None = None) -> ReductionScoreResult:
        """Scores of a stored model on (new) activity, optionally against known latents.

        Parameters
        ----------
        model : FitResult or stored model
        activity : array_like or stored array
        true_latents : array_like, optional
        timeout : float, optional

        Returns
        -------
        ReductionScoreResult

        Examples
        --------
        >>> client.reduction.score(fit, held_out, true_latents=held_out_velocity).scores.latent_r2_mean   # doctest: +SKIP
        0.87
        """
        request = R.ScoreRequest(model=self.artifacts.file_input(model, field="model"),
                                 activity=self.artifacts.array_input(activity, field="activity"))
        if true_latents is not None:
            request.true_latents.CopyFrom(self.artifacts.array_input(true_latents, field="true_latents"))
        return self._unary("Score", request, ReductionScoreResult, timeout)

    def infer_circuit(self, activity: Any, *, progress: bool | None = None, on_progress: ProgressCallback | None = None,
                      timeout: float | None = None, **fields: Any) -> CircuitInference:
        """Fit a recurrent rate network to (partly observed) activity by BPTT, then find its fixed points.

        Streams progress (stages "fit", "fixed_points", "store"); Ctrl-C cancels the fit at its
        next report and re-raises ``KeyboardInterrupt``.

        Parameters
        ----------
        activity : array_like or stored array
            ``(n_trials, n_time, n_observed)``.
        progress, on_progress, timeout
            As for :meth:`DecodingClient.train <neuromesh.sdk.decoding.DecodingClient.train>`.
        **fields
            The other fields of ``InferCircuitRequest`` (protos/neuromesh/reduction/v1/reduction.proto):
            ``inputs``, ``behaviour``, ``true_recurrent`` (arrays), ``observed_units``, ``n_units``,
            ``activation`` ("tanh", "relu", "softplus", "linear"), ``tau``, ``dt``, ``dale_signs``,
            ``optimizer``, ``epochs``, ``learning_rate``, ``l2``, ``seed``, ``fixed_points`` (dict),
            ...; converted as :mod:`neuromesh.sdk.requests` describes.

        Returns
        -------
        CircuitInference

        Examples
        --------
        >>> circuit = client.reduction.infer_circuit(rates, inputs=stimulus, n_units=50, epochs=400,
        ...                                          dale_signs=[1] * 40 + [-1] * 10)            # doctest: +SKIP
        """
        request = build_request(R.InferCircuitRequest, {"activity": activity, **fields}, artifacts=self.artifacts)
        return self._stream("InferCircuit", request, CircuitInference, timeout=timeout, progress=progress,
                            on_progress=on_progress)

    def find_fixed_points(self, network: Any, *, progress: bool | None = None,
                          on_progress: ProgressCallback | None = None, timeout: float | None = None,
                          **fields: Any) -> FixedPointSearch:
        """Fixed and slow points of a rate network under a constant input, with Jacobian spectra.

        Parameters
        ----------
        network : CircuitInference, dict of RateNetworkArrays fields, or RateNetworkArrays
            An InferCircuit result (its fitted network), or a network by hand: ``recurrent``,
            ``input_weights``, ``bias``, ... arrays, ``tau``, ``dt``, ``activation``.
        progress, on_progress, timeout
            As for :meth:`DecodingClient.train <neuromesh.sdk.decoding.DecodingClient.train>`.
        **fields
            The other fields of ``FindFixedPointsRequest``: ``initial_states`` or ``trajectories``
            (arrays), ``options`` (dict of FixedPointOptions), ``seed``.

        Returns
        -------
        FixedPointSearch

        Examples
        --------
        >>> points = client.reduction.find_fixed_points(circuit, options={"input": [0.5]})    # doctest: +SKIP
        """
        message = getattr(network, "message", None)
        if message is not None and message.DESCRIPTOR.full_name == R.InferCircuitResult.DESCRIPTOR.full_name:
            network = message.network
        request = build_request(R.FindFixedPointsRequest, {"network": network, **fields}, artifacts=self.artifacts)
        return self._stream("FindFixedPoints", request, FixedPointSearch, timeout=timeout, progress=progress,
                            on_progress=on_progress)

    def compare_learning_rules(self, mode: str, *, progress: bool | None = None,
                               on_progress: ProgressCallback | None = None, timeout: float | None = None,
                               **fields: Any) -> LearningRuleComparison:
        """Local learning rules beside backprop on one task, or Hebbian rules against PCA.

        Parameters
        ----------
        mode : str
            "two_layer" (backprop, feedback alignment, three-factor) or a Hebbian mode ("oja",
            "sanger", "subspace").
        progress, on_progress, timeout
            As for :meth:`DecodingClient.train <neuromesh.sdk.decoding.DecodingClient.train>`.
        **fields
            The other fields of ``CompareLearningRulesRequest``: ``teacher`` (dict) or
            ``uploaded`` (dict of arrays ``x``, ``y``, ``x_test``, ``y_test``), ``rules``,
            ``n_hidden``, ``activation``, ``epochs``, ``batch_size``, learning rates, ``seed``,
            ``hebbian`` (dict).

        Returns
        -------
        LearningRuleComparison

        Examples
        --------
        >>> rules = client.reduction.compare_learning_rules(
        ...     "two_layer", teacher={"n_samples": 1000, "n_in": 20, "n_out": 5}, epochs=50)          # doctest: +SKIP
        >>> rules.show()                                                                               # doctest: +SKIP
        """
        if mode is None:
            raise InvalidArgument("mode is required", field="mode")
        request = build_request(R.CompareLearningRulesRequest, {"mode": mode, **fields}, artifacts=self.artifacts)
        return self._stream("CompareLearningRules", request, LearningRuleComparison, timeout=timeout,
                            progress=progress, on_progress=on_progress)
