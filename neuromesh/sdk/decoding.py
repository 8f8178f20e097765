"""``client.decoding``: behaviour and stimuli decoded from neural recordings.

Recordings go in as NumPy arrays (spike times and unit ids, continuous signals), NWB files, or
Kilosort/phy output folders; the service bins them onto one time base (:meth:`bin_recording`),
cross-validates and fits decoders (:meth:`~DecodingClient.train`, streamed with a progress bar),
predicts and scores with stored models, and compares representations by RSA.

Example
-------
>>> from neuromesh.client import Client
>>> from services.decoding.core import simulate_reaching_session
>>> session = simulate_reaching_session(n_units=60, duration_s=300.0, seed=0)          # doctest: +SKIP
>>> with Client.local() as client:                                          # doctest: +SKIP
...     binned = client.decoding.bin_recording(session.spike_times, session.unit_ids, n_units=60,
...                                            bin_width_s=0.05, stop_s=300.0)
...     trained = client.decoding.train(binned, session.velocity, decoder="wiener", history_bins=5,
...                                     n_shuffles=2)
...     print(trained.scores.r2, trained.shuffled_scores)
[0.96 0.96] [-0.06 -0.05]
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from neuromesh.decoding.v1 import decoding_pb2 as D
from neuromesh.decoding.v1 import decoding_pb2_grpc

from .artifacts import write_temporary
from .errors import InvalidArgument
from .fields import enum_value, finite, integer, non_negative, positive, strings, struct
from .progress import ProgressCallback
from .results import Result
from .service import ServiceClient

__all__ = ["BinnedRecording", "DecodingClient", "EvaluateResult", "KILOSORT_FILES", "PredictResult",
           "RepresentationComparison", "TrainResult"]

#: The files of a Kilosort/phy folder the service reads; other (often large) files stay local
KILOSORT_FILES = ("spike_times.npy", "spike_clusters.npy", "spike_templates.npy", "params.py", "cluster_group.tsv",
                  "cluster_KSLabel.tsv")


class BinnedRecording(Result):
    """A recording on one time base (answer of BinRecording).

    Artifacts: ``counts`` (n_bins, n_units) float32; ``bin_centres`` (s); with behaviour
    ``behaviour`` (n_bins, n_channels); with trials ``trial_index``, ``time_in_trial``,
    ``condition``. As an input of another call it stands for ``counts``.

    Examples
    --------
    >>> binned.n_bins, binned.n_units, binned.counts.shape           # doctest: +SKIP
    (6000, 60, (6000, 60))
    >>> client.reduction.fit(binned, method="pca")                    # the counts   # doctest: +SKIP
    """


class TrainResult(Result):
    """A cross-validated, fitted decoder (result of Train).

    Numbers: ``scores`` (``r2``, ``pearson_r``, ``rmse`` per output or ``accuracy``,
    ``balanced_accuracy``, ``chance``, ``confusion``; ``fold_scores``), ``shuffled_scores``,
    ``time_resolved_times_s`` and ``time_resolved_scores``. Artifacts: ``model`` (.npz),
    ``predictions`` (out of fold), ``figure`` (PNG), ``report`` (JSON). As an input it stands
    for ``model``.

    Examples
    --------
    >>> trained.scores.r2.min() > 0.8, trained.array("predictions").shape   # doctest: +SKIP
    (True, (6000, 2))
    >>> trained.show()                                                     # doctest: +SKIP
    """

    _figure = "figure"

    def confusion_matrix(self) -> np.ndarray:
        """The confusion matrix of a classifier, (n_classes, n_classes), rows the true class.

        Examples
        --------
        >>> trained.confusion_matrix()                          # doctest: +SKIP
        array([[48,  2],
               [ 5, 45]])
        """
        n = len(self.message.scores.classes)
        return np.asarray(self.message.scores.confusion, dtype=np.int64).reshape(n, n)


class PredictResult(Result):
    """Predictions of a stored model (answer of Predict): ``predictions``, and ``probabilities``
    for classifiers. As an input it stands for ``predictions``.

    Examples
    --------
    >>> client.decoding.predict(trained, new_counts).array("predictions")[:3]   # doctest: +SKIP
    """


class EvaluateResult(Result):
    """Scores of a stored model on new labelled data (answer of Evaluate): ``scores``,
    ``predictions``, ``figure``.

    Examples
    --------
    >>> client.decoding.evaluate(trained, held_out_counts, held_out_velocity).scores.r2   # doctest: +SKIP
    array([0.94, 0.95])
    """

    _figure = "figure"


class RepresentationComparison(Result):
    """An RSA comparison (answer of CompareRepresentations): ``statistic``, ``p_value``,
    ``n_permutations``, the RDMs ``first_rdm`` and ``second_rdm``, and ``figure``.

    Examples
    --------
    >>> rsa = client.decoding.compare_representations(layer, psths, n_permutations=1000)   # doctest: +SKIP
    >>> rsa.statistic, rsa.p_value                                                       # doctest: +SKIP
    (0.81, 0.001)
    """

    _figure = "figure"


def _rows(value: Any) -> int | None:
    """Length of the first axis of an in-memory array input, None for refs and paths."""
    if isinstance(value, np.ndarray):
        return int(value.shape[0]) if value.ndim else 0
    if isinstance(value, (list, tuple)):
        return len(value)
    return None


def _check_same_length(a: Any, b: Any, names: tuple[str, str]) -> None:
    na, nb = _rows(a), _rows(b)
    if na is not None and nb is not None and na != nb:
        raise InvalidArgument(f"{names[0]} has {na} rows but {names[1]} has {nb}; they must be aligned "
                              f"(same length along the first axis, time)", field=names[1], reason="SHAPE_MISMATCH")


class DecodingClient(ServiceClient):
    """The decoding service (``neuromesh.decoding.v1.DecodingService``).

    Examples
    --------
    >>> client.decoding                                           # doctest: +SKIP
    <DecodingClient decoding at 127.0.0.1:50051>
    """

    name = "decoding"
    proto_service = "neuromesh.decoding.v1.DecodingService"
    stub_class = decoding_pb2_grpc.DecodingServiceStub

    # --- BinRecording --------------------------------------------------------------------------

    def bin_recording(self, spike_times: Any = None, unit_ids: Any = None, *, bin_width_s: float, n_units: int = 0,
                      nwb: Any = None, kilosort: Any = None, include_groups: Sequence[str] | str = (),
                      continuous: Any = None, sampling_rate_hz: float = 0.0, start_s: float = 0.0,
                      stop_s: float = 0.0, behaviour: Any = None, behaviour_times: Any = None,
                      behaviour_series: str = "", trial_condition_column: str = "",
                      timeout: float | None = None) -> BinnedRecording:
        """Bin a recording onto one time base: spike counts (or mean signals) per bin and unit.

        Give exactly one source: ``spike_times`` with ``unit_ids``, ``nwb``, ``kilosort`` or
        ``continuous``.

        Parameters
        ----------
        spike_times, unit_ids : array_like, optional
            Spike times in seconds (float, ``(n_spikes,)``) and the unit id (integer >= 0) of
            each spike; arrays, ``.npy`` paths or stored arrays.
        bin_width_s : float
            Bin width in seconds, > 0.
        n_units : int, default 0
            Units 0 .. n_units-1 with spike arrays; 0 takes the largest id + 1.
        nwb : path, bytes, pynwb.NWBFile or stored file, optional
            An NWB file whose Units table is binned (a ``pynwb.NWBFile`` in memory is written to a
            temporary file and uploaded).
        kilosort : path of a folder, or str key prefix, optional
            A Kilosort/phy output folder: its ``spike_times.npy``, ``spike_clusters.npy``,
            ``params.py`` and cluster tables are uploaded under one content-addressed prefix. A
            string that is not a local folder is taken as the prefix of a folder already stored.
        include_groups : str or sequence of str
            Kilosort cluster groups kept ("good", "mua", "noise", "unsorted"); empty keeps "good".
        continuous : array_like, optional
            Regularly sampled signals ``(n_samples, n_channels)`` (calcium traces, LFP features),
            averaged into the bins; needs ``sampling_rate_hz``.
        sampling_rate_hz : float, default 0
            Samples per second of ``continuous`` (> 0), or of Kilosort's spike_times (0 reads
            params.py).
        start_s, stop_s : float, default 0
            Start of the first bin and end of the last; both 0: the span of the data.
        behaviour, behaviour_times : array_like, optional
            Behaviour values ``(n_samples[, n_channels])`` and their sample times (s), averaged
            into the bins. Both or neither.
        behaviour_series : str
            With ``nwb``: the TimeSeries to align ("" aligns none).
        trial_condition_column : str
            With ``nwb``: an integer column of the trials table reported per bin.
        timeout : float, optional
            Deadline in seconds (default: the client's unary deadline).

        Returns
        -------
        BinnedRecording

        Examples
        --------
        >>> binned = client.decoding.bin_recording(times, units, n_units=60, bin_width_s=0.05,
        ...                                        behaviour=velocity, behaviour_times=t_velocity)  # doctest: +SKIP
        >>> counts = binned.array("counts")                                                       # doctest: +SKIP
        >>> binned = client.decoding.bin_recording(nwb="sub-01_ses-01.nwb", bin_width_s=0.02,
        ...                                        behaviour_series="hand_position")              # doctest: +SKIP
        """
        sources = {"spike_times": spike_times is not None or unit_ids is not None, "nwb": nwb is not None,
                   "kilosort": kilosort is not None, "continuous": continuous is not None}
        given = [name for name, present in sources.items() if present]
        if len(given) != 1:
            raise InvalidArgument("give exactly one source: spike_times with unit_ids, nwb, kilosort or continuous"
                                  + (f" (got {', '.join(given)})" if given else ""), field="source")
        bin_width_s = positive(bin_width_s, field="bin_width_s")
        start_s, stop_s = finite(start_s, field="start_s"), finite(stop_s, field="stop_s")
        if (start_s or stop_s) and stop_s <= start_s:
            raise InvalidArgument(f"stop_s ({stop_s}) must exceed start_s ({start_s}); both 0 take the data's span",
                                  field="stop_s")
        if (behaviour is None) != (behaviour_times is None):
            raise InvalidArgument("behaviour and behaviour_times go together: the values and their sample times",
                                  field="behaviour_times" if behaviour is not None else "behaviour")
        if nwb is None and (behaviour_series or trial_condition_column):
            raise InvalidArgument("behaviour_series and trial_condition_column name parts of an NWB file; they need "
                                  "nwb", field="behaviour_series" if behaviour_series else "trial_condition_column")
        _check_same_length(behaviour, behaviour_times, ("behaviour", "behaviour_times"))
        request = D.BinRecordingRequest(bin_width_s=bin_width_s, start_s=start_s, stop_s=stop_s,
                                        behaviour_series=behaviour_series,
                                        trial_condition_column=trial_condition_column)
        artifacts = self.artifacts
        if spike_times is not None or unit_ids is not None:
            if spike_times is None or unit_ids is None:
                raise InvalidArgument("spike_times and unit_ids go together: the time and the unit of each spike",
                                      field="unit_ids" if spike_times is not None else "spike_times")
            _check_same_length(spike_times, unit_ids, ("spike_times", "unit_ids"))
            request.spikes.CopyFrom(D.SpikeArrays(times=artifacts.array_input(spike_times, field="spike_times"),
                                                  unit_ids=artifacts.array_input(unit_ids, field="unit_ids"),
                                                  n_units=integer(n_units, field="n_units")))
        elif nwb is not None:
            request.nwb_file.CopyFrom(self._nwb_ref(nwb))
        elif kilosort is not None:
            rate = non_negative(sampling_rate_hz, field="sampling_rate_hz")
            request.kilosort.CopyFrom(D.KilosortFolder(prefix=self._kilosort_prefix(kilosort),
                                                       include_groups=strings(include_groups, field="include_groups"),
                                                       sampling_rate_hz=rate))
        else:
            rate = positive(sampling_rate_hz, field="sampling_rate_hz")
            request.continuous.CopyFrom(D.ContinuousArray(
                values=artifacts.array_input(continuous, field="continuous"), sampling_rate_hz=rate))
        if behaviour is not None:
            request.behaviour.CopyFrom(D.BehaviourArrays(
                values=artifacts.array_input(behaviour, field="behaviour"),
                timestamps=artifacts.array_input(behaviour_times, field="behaviour_times")))
        return self._unary("BinRecording", request, BinnedRecording, timeout)

    def _nwb_ref(self, nwb: Any):
        if type(nwb).__name__ == "NWBFile" and hasattr(nwb, "units"):
            from pynwb import NWBHDF5IO

            def write(path: Path) -> None:
                with NWBHDF5IO(str(path), "w") as io:
                    io.write(nwb)

            path = write_temporary(".nwb", write)
            try:
                return self.artifacts.upload_file(path, media_type="application/x-nwb", field="nwb")
            finally:
                path.unlink(missing_ok=True)
        return self.artifacts.file_input(nwb, field="nwb", media_type="application/x-nwb")

    def _kilosort_prefix(self, kilosort: Any) -> str:
        if isinstance(kilosort, (str, os.PathLike)) and Path(kilosort).expanduser().is_dir():
            return self.artifacts.upload_folder(kilosort, KILOSORT_FILES, field="kilosort")
        if isinstance(kilosort, str) and kilosort.strip("/"):
            prefix = kilosort[len(f"s3://{self.artifacts.bucket}/"):] if kilosort.startswith("s3://") else kilosort
            return prefix.strip("/")
        raise InvalidArgument(f"kilosort must be a local Kilosort/phy folder or the key prefix of a stored one, not "
                              f"{kilosort!r}", field="kilosort")

    # --- Train, Predict, Evaluate --------------------------------------------------------------

    def train(self, features: Any, targets: Any, *, decoder: str = "wiener", params: Mapping[str, Any] | None = None,
              history_bins: int = 0, future_bins: int = 0, n_folds: int = 0, gap_bins: int = 0,
              trial_index: Any = None, time_in_trial: Any = None, n_shuffles: int = 0, seed: int = 0,
              progress: bool | None = None, on_progress: ProgressCallback | None = None,
              timeout: float | None = None) -> TrainResult:
        """Cross-validate a decoder (blocked folds with a gap), then fit it on all the data.

        Streams progress (a bar, and ``on_progress`` events); Ctrl-C cancels the training on
        the service and re-raises ``KeyboardInterrupt``.

        Parameters
        ----------
        features : array_like, BinnedRecording or stored array
            ``(n_samples, n_features)``, e.g. the counts of :meth:`bin_recording`.
        targets : array_like or stored array
            Aligned with ``features``: ``(n_samples[, n_outputs])`` floats for regression,
            ``(n_samples,)`` integer labels for classifiers.
        decoder : str, default "wiener"
            "wiener", "wiener_cascade", "kalman", "logistic", "mlp", "mlp_classifier", "lstm" or
            "gru" (the service lists its decoders when the name is unknown).
        params : dict, optional
            Constructor parameters of the decoder, e.g. ``{"hidden_size": 64, "epochs": 5}``.
        history_bins, future_bins : int, default 0
            Past and future bins in each sample's window (the current bin always included).
        n_folds : int, default 0
            Contiguous folds (or groups of whole trials); 0 means 5.
        gap_bins : int, default 0
            Samples dropped on each side of a test block; raised to history + future bins.
        trial_index, time_in_trial : array_like, optional
            Trial of each sample (-1 outside trials) keeps trials whole in folds and shuffles;
            with ``time_in_trial`` (s) asks for time-resolved decoding.
        n_shuffles : int, default 0
            Runs of the shuffled-label control.
        seed : int, default 0
        progress : bool, optional
            Draw a progress bar (default: the client's setting, on in terminals and notebooks).
        on_progress : callable, optional
            Called with each :class:`~neuromesh.sdk.progress.ProgressEvent`.
        timeout : float, optional
            Deadline of the whole call, seconds.

        Returns
        -------
        TrainResult

        Examples
        --------
        >>> trained = client.decoding.train(binned, velocity, decoder="wiener", history_bins=5, n_shuffles=2)  # doctest: +SKIP
        >>> trained.scores.r2, trained.shuffled_scores                                                         # doctest: +SKIP
        (array([0.96, 0.96]), array([-0.06, -0.05]))
        >>> lstm = client.decoding.train(binned, velocity, decoder="lstm", history_bins=10,
        ...                              params={"hidden_size": 32, "epochs": 20})                             # doctest: +SKIP
        """
        if not isinstance(decoder, str) or not decoder:
            raise InvalidArgument(f"decoder must be a decoder name such as 'wiener', not {decoder!r}", field="decoder")
        spec = D.DecoderSpec(name=decoder, history_bins=integer(history_bins, field="history_bins"),
                             future_bins=integer(future_bins, field="future_bins"))
        parameters = struct(params, field="params")
        if parameters is not None:
            spec.params.CopyFrom(parameters)
        n_folds = integer(n_folds, field="n_folds")
        if n_folds == 1:
            raise InvalidArgument("n_folds must be 0 (5 folds) or at least 2", field="n_folds")
        if time_in_trial is not None and trial_index is None:
            raise InvalidArgument("time-resolved decoding (time_in_trial) needs trial_index", field="trial_index")
        _check_same_length(features, targets, ("features", "targets"))
        request = D.TrainRequest(decoder=spec, n_folds=n_folds, gap_bins=integer(gap_bins, field="gap_bins"),
                                 n_shuffles=integer(n_shuffles, field="n_shuffles"),
                                 seed=integer(seed, field="seed", minimum=None))
        artifacts = self.artifacts
        request.features.CopyFrom(artifacts.array_input(features, field="features"))
        request.targets.CopyFrom(artifacts.array_input(targets, field="targets"))
        if trial_index is not None:
            request.trial_index.CopyFrom(artifacts.array_input(trial_index, field="trial_index"))
        if time_in_trial is not None:
            request.time_in_trial.CopyFrom(artifacts.array_input(time_in_trial, field="time_in_trial"))
        return self._stream("Train", request, TrainResult, timeout=timeout, progress=progress, on_progress=on_progress)

    def predict(self, model: Any, features: Any, *, timeout: float | None = None) -> PredictResult:
        """Predictions of a stored model on new features.

        Parameters
        ----------
        model : TrainResult or stored model
        features : array_like, BinnedRecording or stored array
            ``(n_samples, n_features)`` with the model's number of features.
        timeout : float, optional

        Returns
        -------
        PredictResult
            ``predictions``: NaN (labels: -1) where a window is incomplete.

        Examples
        --------
        >>> predicted = client.decoding.predict(trained, new_counts).array("predictions")   # doctest: +SKIP
        """
        request = D.PredictRequest(model=self.artifacts.file_input(model, field="model"),
                                   features=self.artifacts.array_input(features, field="features"))
        return self._unary("Predict", request, PredictResult, timeout)

    def evaluate(self, model: Any, features: Any, targets: Any, *, timeout: float | None = None) -> EvaluateResult:
        """Scores of a stored model on new, labelled data.

        Parameters
        ----------
        model : TrainResult or stored model
        features, targets : array_like or stored arrays
            Aligned along the first axis.
        timeout : float, optional

        Returns
        -------
        EvaluateResult

        Examples
        --------
        >>> client.decoding.evaluate(trained, test_counts, test_velocity).scores.r2   # doctest: +SKIP
        array([0.95, 0.94])
        """
        _check_same_length(features, targets, ("features", "targets"))
        request = D.EvaluateRequest(model=self.artifacts.file_input(model, field="model"),
                                    features=self.artifacts.array_input(features, field="features"),
                                    targets=self.artifacts.array_input(targets, field="targets"))
        return self._unary("Evaluate", request, EvaluateResult, timeout)

    # --- CompareRepresentations ----------------------------------------------------------------

    def compare_representations(self, first: Any, second: Any, *, first_metric: str = "correlation",
                                second_metric: str | None = None, comparison: str = "spearman",
                                n_permutations: int = 0, seed: int = 0,
                                timeout: float | None = None) -> RepresentationComparison:
        """Representational similarity analysis of two representations of the same conditions.

        Parameters
        ----------
        first, second : array_like or stored arrays
            Patterns ``(n_conditions, n_channels)``, or ``(n_partitions, n_conditions,
            n_channels)`` for crossnobis; conditions in the same order in both.
        first_metric, second_metric : str
            "correlation", "euclidean" or "crossnobis"; ``second_metric`` defaults to
            ``first_metric``.
        comparison : str, default "spearman"
            "spearman", "kendall_tau_a" or "pearson".
        n_permutations : int, default 0
            Condition-label permutations of the test; 0 means 10000.
        seed : int, default 0
        timeout : float, optional

        Returns
        -------
        RepresentationComparison

        Examples
        --------
        >>> rsa = client.decoding.compare_representations(model_layer, condition_means, comparison="kendall_tau_a")  # doctest: +SKIP
        >>> rsa.p_value < 0.05                                                                                     # doctest: +SKIP
        True
        """
        metric_1 = enum_value(D.DissimilarityMetric, first_metric, field="first_metric")
        metric_2 = enum_value(D.DissimilarityMetric, second_metric if second_metric is not None else first_metric,
                              field="second_metric")
        request = D.CompareRepresentationsRequest(
            comparison=enum_value(D.RdmComparison, comparison, field="comparison"),
            n_permutations=integer(n_permutations, field="n_permutations"),
            seed=integer(seed, field="seed", minimum=None))
        request.first.CopyFrom(D.Representation(patterns=self.artifacts.array_input(first, field="first"),
                                                metric=metric_1))
        request.second.CopyFrom(D.Representation(patterns=self.artifacts.array_input(second, field="second"),
                                                 metric=metric_2))
        return self._unary("CompareRepresentations", request, RepresentationComparison, timeout)
