"""``client.simulation``: spiking circuits simulated on the service's compiled engine.

A network is a ``neuromesh.simulation.v1.Network`` message, a dict of its fields (enum values by
short name: ``{"model": "lif_coba"}``), or one of the ready-made circuits built here
(:func:`vogels_abbott`, :func:`cortical_column`). :meth:`SimulationClient.simulate` streams
progress (simulated ms, spikes, synaptic events) and answers with spike arrays, rates, binned
counts ready for the decoding and reduction services, traces, weights and a raster figure.
Ctrl-C during a run cancels it on the service, which stops within one chunk (about 0.1 s of
wall time) and deletes what it had stored.

Example
-------
>>> network = vogels_abbott("coba", n_neurons=4000, seed=1)
>>> network.vogels_abbott.n_neurons
4000
>>> with Client.local() as client:                                          # doctest: +SKIP
...     run = client.simulation.simulate(network, duration_ms=1000.0, bin_ms=10.0)
...     times, ids = run.spikes()
...     run.populations[0].rate_hz
...     fit = client.reduction.fit(run, method="pca")        # the binned counts
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from neuromesh.simulation.v1 import simulation_pb2 as S
from neuromesh.simulation.v1 import simulation_pb2_grpc

from .errors import InvalidArgument
from .fields import enum_value, integer, non_negative, positive, strings
from .progress import ProgressCallback
from .requests import build_request
from .results import Result
from .service import ServiceClient

__all__ = ["BayesianObserverResult", "MemoryEstimate", "PredictiveCodingResult", "SimulationClient",
           "SimulationResult", "cortical_column", "network_message", "vogels_abbott"]


def _short_enums(value: Any, descriptor: Descriptor, path: str) -> Any:
    """A copy of a message dict whose enum values given by short name are numbers (ParseDict
    takes full names or numbers only)."""
    if not isinstance(value, Mapping):
        return value
    out = {}
    for name, item in value.items():
        field = descriptor.fields_by_name.get(name) or next(
            (f for f in descriptor.fields if f.json_name == name), None)
        if field is None:
            out[name] = item   # ParseDict names the unknown field
            continue
        where = f"{path}.{name}" if path else name
        if field.type == FieldDescriptor.TYPE_ENUM:
            wrapper = getattr(S, field.enum_type.name)
            convert = lambda v, w=where: enum_value(wrapper, v, field=w) if isinstance(v, str) else v  # noqa: E731
            out[name] = [convert(v) for v in item] if field.is_repeated else convert(item)
        elif field.type == FieldDescriptor.TYPE_MESSAGE and not field.message_type.GetOptions().map_entry:
            if field.is_repeated:
                out[name] = [_short_enums(v, field.message_type, f"{where}[{i}]") for i, v in enumerate(item)]
            else:
                out[name] = _short_enums(item, field.message_type, where)
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            value_field = field.message_type.fields_by_name["value"]
            if value_field.type == FieldDescriptor.TYPE_MESSAGE and isinstance(item, Mapping):
                out[name] = {k: _short_enums(v, value_field.message_type, f"{where}.{k}") for k, v in item.items()}
            else:
                out[name] = item
        else:
            out[name] = item.tolist() if isinstance(item, np.ndarray) else (
                item.item() if isinstance(item, np.generic) else item)
    return out


def network_message(network: Any) -> S.Network:
    """A ``Network`` message from a message or a dict of its fields.

    Dict keys are the proto field names (or their JSON camelCase names); enum values may be
    short names (``"lif_coba"``, ``"fixed_probability"``, ``"exc"``), full names or numbers.

    Raises
    ------
    InvalidArgument
        An unknown field or value, naming it (``field network...``).

    Examples
    --------
    >>> net = network_message({
    ...     "populations": [{"name": "exc", "size": 800, "model": "lif_cuba"},
    ...                     {"name": "inh", "size": 200, "model": "lif_cuba"}],
    ...     "projections": [{"source": "exc", "target": "inh", "weight": 0.5, "delay_ms": 1.0,
    ...                      "connectivity": {"rule": "fixed_probability", "value": 0.1}}],
    ...     "poisson_inputs": [{"target": "exc", "rate_hz": 20.0, "weight": 1.0, "n_sources": 10}],
    ...     "seed": 3})
    >>> net.projections[0].connectivity.rule == S.CONNECTIVITY_RULE_FIXED_PROBABILITY
    True
    >>> network_message({"populations": [{"name": "exc", "size": 10, "modle": "lif_cuba"}]})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    neuromesh.sdk.errors.InvalidArgument: network: ... has no field named "modle" at "Network.populations[0]"...
    """
    if isinstance(network, S.Network):
        return network
    if not isinstance(network, Mapping):
        raise InvalidArgument(f"network must be a simulation_pb2.Network or a dict of its fields, not "
                              f"{type(network).__name__}", field="network")
    try:
        return json_format.ParseDict(_short_enums(network, S.Network.DESCRIPTOR, "network"), S.Network())
    except json_format.ParseError as exc:
        raise InvalidArgument(f"network: {exc}", field="network") from None


def vogels_abbott(kind: str = "cuba", *, n_neurons: int = 0, synapses_per_neuron: int = 0, seed: int = 0,
                  **network: Any) -> S.Network:
    """The random 80/20 excitatory/inhibitory network of Vogels & Abbott (2005).

    Parameters
    ----------
    kind : {"cuba", "coba"}
        Current-based (Brian2's CUBA example) or conductance-based (benchmark 1 of Brette et
        al. 2007).
    n_neurons : int, default 0
        0 means 4000; at least 5.
    synapses_per_neuron : int, default 0
        Expected synapses per neuron; 0 means 80.
    seed : int, default 0
    **network
        Other ``Network`` fields (``dt_ms``, ``state_monitors``, ``record_spikes``, ``dtype``,
        ``poisson_inputs``, ...), as in :func:`network_message`.

    Examples
    --------
    >>> net = vogels_abbott("coba", n_neurons=1000, dt_ms=0.1)
    >>> net.vogels_abbott.kind == S.VOGELS_ABBOTT_KIND_COBA, net.dt_ms
    (True, 0.1)
    """
    message = network_message({"seed": seed, **network})
    message.vogels_abbott.CopyFrom(S.VogelsAbbott(kind=enum_value(S.VogelsAbbottKind, kind, field="kind"),
                                                  n_neurons=integer(n_neurons, field="n_neurons"),
                                                  synapses_per_neuron=integer(synapses_per_neuron,
                                                                              field="synapses_per_neuron")))
    return message


def cortical_column(scale: float = 0.0, *, seed: int = 0, stimulus_rate_hz: float | None = None,
                    stimulus_frequency_hz: float | None = None, stimulus_depth: float | None = None,
                    stimulus_start_ms: float = 0.0, stimulus_stop_ms: float | None = None,
                    background_rate_hz: float | None = None, psp_mv: float | None = None,
                    relative_inhibition: float | None = None, **network: Any) -> S.Network:
    """A six-layer cortical column after Potjans & Diesmann (2014), driven by a modulated thalamus.

    Unset (None) parameters take the service's defaults: stimulus 15 Hz modulated at 4 Hz with
    depth 1, background 8 Hz, PSP 0.15 mV, inhibition 4x.

    Parameters
    ----------
    scale : float, default 0
        Fraction of the full column's 78,000 neurons, in (0, 1]; 0 means 0.05.
    seed : int, default 0
    stimulus_rate_hz, stimulus_frequency_hz, stimulus_depth : float, optional
    stimulus_start_ms : float, default 0
    stimulus_stop_ms : float, optional
        Default: the end of the run.
    background_rate_hz, psp_mv, relative_inhibition : float, optional
    **network
        Other ``Network`` fields, as in :func:`network_message`.

    Examples
    --------
    >>> net = cortical_column(0.02, stimulus_rate_hz=20.0, seed=7)
    >>> net.cortical_column.scale, net.cortical_column.stimulus_rate_hz, net.seed
    (0.02, 20.0, 7)
    """
    message = network_message({"seed": seed, **network})
    column = S.CorticalColumn(scale=non_negative(scale, field="scale"),
                              stimulus_start_ms=non_negative(stimulus_start_ms, field="stimulus_start_ms"))
    for name, value in (("stimulus_rate_hz", stimulus_rate_hz), ("stimulus_frequency_hz", stimulus_frequency_hz),
                        ("stimulus_depth", stimulus_depth), ("stimulus_stop_ms", stimulus_stop_ms),
                        ("background_rate_hz", background_rate_hz), ("psp_mv", psp_mv),
                        ("relative_inhibition", relative_inhibition)):
        if value is not None:
            setattr(column, name, non_negative(value, field=name))
    message.cortical_column.CopyFrom(column)
    return message


class SimulationResult(Result):
    """What a simulation recorded (result of Simulate).

    Numbers: ``n_neurons``, ``n_spikes``, ``synapse_count``, ``synaptic_events``,
    ``neuron_steps``, ``build_s``, ``simulate_s``, ``synaptic_events_per_second``, ``bin_ms``,
    ``n_bins`` and ``populations`` (name, offset, size, model, spikes, rate_hz, recorded,
    count_column each). Artifacts: ``spike_times`` (ms), ``spike_ids`` (global neuron ids),
    ``population_rates`` (n_bins, n_populations) Hz, ``binned_counts`` (n_bins, n_counted),
    ``traces[i].values`` and ``.times``, ``weights[i]``, ``synapses`` (with
    ``record_connectivity``), ``figure``, ``summary``, ``report``. As an input it stands for
    ``binned_counts``.

    Examples
    --------
    >>> times, ids = run.spikes()                                             # doctest: +SKIP
    >>> run.population("exc").rate_hz                                         # doctest: +SKIP
    5.9
    """

    _figure = "figure"

    def spikes(self, population: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Spike times (ms, float64) and global neuron ids (int64) of the recorded populations, or of
        one population (its ids then count from 0 within it).

        Examples
        --------
        >>> times, ids = run.spikes("exc")                                   # doctest: +SKIP
        """
        times, ids = self.array("spike_times"), self.array("spike_ids")
        if population is None:
            return times, ids
        summary = self.population(population)
        if not summary.recorded:
            raise InvalidArgument(f"the spikes of population {population!r} were not recorded (record_spikes)",
                                  field="population")
        inside = (ids >= summary.offset) & (ids < summary.offset + summary.size)
        return times[inside], ids[inside] - summary.offset

    def population(self, name: str) -> Any:
        """The summary of one population by name.

        Examples
        --------
        >>> run.population("L4_exc").size                                    # doctest: +SKIP
        438
        """
        for summary in self.populations:
            if summary.name == name:
                return summary
        raise InvalidArgument(f"no population {name!r}; populations: "
                              f"{', '.join(p.name for p in self.populations)}", field="population")

    def rates(self) -> np.ndarray:
        """Mean rate of each population per bin, Hz, ``(n_bins, n_populations)`` in network order.

        Examples
        --------
        >>> run.rates().mean(axis=0)                                          # doctest: +SKIP
        """
        return self.array("population_rates")

    def counts(self) -> np.ndarray:
        """Spike counts per bin and counted neuron, ``(n_bins, n_counted_neurons)``.

        Examples
        --------
        >>> run.counts().sum() == run.n_spikes                                # doctest: +SKIP
        True
        """
        return self.array("binned_counts")


class MemoryEstimate(Result):
    """Memory the engine would allocate for a network (answer of EstimateMemory): ``total_bytes``,
    ``breakdown_bytes``, ``limit_bytes``, ``fits``, ``n_neurons``, ``expected_synapses``.

    Examples
    --------
    >>> estimate = client.simulation.estimate_memory(cortical_column(1.0))   # doctest: +SKIP
    >>> estimate.fits, estimate.total_bytes / 2**30                          # doctest: +SKIP
    (True, 11.2)
    """


class BayesianObserverResult(Result):
    """A Bayesian observer's answer (BayesianObserver): ``mode`` and one of ``posterior``,
    ``psychometric``, ``simulated`` or ``fit`` (with Wald and bootstrap intervals), ``figure``,
    ``report``.

    Examples
    --------
    >>> fit = client.simulation.bayesian_observer("fit", stimuli=s, references=r, choices=c)   # doctest: +SKIP
    >>> fit.fit                                                                                 # doctest: +SKIP
    """

    _figure = "figure"


class PredictiveCodingResult(Result):
    """A trained predictive-coding hierarchy (TrainPredictiveCoding): ``weights``, ``fields``,
    errors and energy, ``median_gabor_r2`` and ``median_osi`` against an untrained network's
    ``random_median_gabor_r2`` and ``random_median_osi``, bar-length tuning, figures
    (``fields_figure``, ``errors_figure``, ``bar_figure``), ``report``.

    Examples
    --------
    >>> pc = client.simulation.train_predictive_coding(n_batches=200)                  # doctest: +SKIP
    >>> pc.median_gabor_r2 > pc.random_median_gabor_r2                                  # doctest: +SKIP
    True
    """

    _figure = "fields_figure"


class SimulationClient(ServiceClient):
    """The simulation service (``neuromesh.simulation.v1.SimulationService``).

    Examples
    --------
    >>> client.simulation                                          # doctest: +SKIP
    <SimulationClient simulation at 127.0.0.1:50053>
    """

    name = "simulation"
    proto_service = "neuromesh.simulation.v1.SimulationService"
    stub_class = simulation_pb2_grpc.SimulationServiceStub

    def simulate(self, network: Any, *, duration_ms: float, bin_ms: float = 0.0,
                 count_populations: Sequence[str] | str = (), record_connectivity: bool = False,
                 progress: bool | None = None, on_progress: ProgressCallback | None = None,
                 timeout: float | None = None) -> SimulationResult:
        """Build the network, run it for ``duration_ms`` and store what it recorded.

        Streams progress (a bar, and ``on_progress`` events with counters ``simulated_ms``,
        ``spikes``, ``synaptic_events``); Ctrl-C cancels the run on the service and re-raises
        ``KeyboardInterrupt``.

        Parameters
        ----------
        network : Network message or dict
            See :func:`network_message`, :func:`vogels_abbott`, :func:`cortical_column`.
        duration_ms : float
            Biological time to simulate, > 0.
        bin_ms : float, default 0
            Bins of the population rates and binned counts, a multiple of dt and at most
            ``duration_ms``; 0 means 10 ms.
        count_populations : str or sequence of str
            Populations counted in ``binned_counts``, in this order; empty: every recorded one.
        record_connectivity : bool, default False
            Store every synapse (pre, post, weight) for the connectomics service.
        progress, on_progress, timeout
            As for :meth:`DecodingClient.train <neuromesh.sdk.decoding.DecodingClient.train>`.

        Returns
        -------
        SimulationResult

        Raises
        ------
        ResourceExhausted
            The network needs more memory than the service has (see :meth:`estimate_memory`).

        Examples
        --------
        >>> run = client.simulation.simulate(vogels_abbott("cuba", n_neurons=4000), duration_ms=1000.0)  # doctest: +SKIP
        >>> run.n_spikes, run.synaptic_events_per_second                                                # doctest: +SKIP
        (23456, 4.1e8)
        """
        duration_ms = positive(duration_ms, field="duration_ms")
        bin_ms = non_negative(bin_ms, field="bin_ms")
        if bin_ms > duration_ms:
            raise InvalidArgument(f"bin_ms ({bin_ms}) must be at most duration_ms ({duration_ms})", field="bin_ms")
        request = S.SimulateRequest(network=network_message(network), duration_ms=duration_ms, bin_ms=bin_ms,
                                    count_populations=strings(count_populations, field="count_populations"),
                                    record_connectivity=bool(record_connectivity))
        return self._stream("Simulate", request, SimulationResult, timeout=timeout, progress=progress,
                            on_progress=on_progress)

    def estimate_memory(self, network: Any, *, timeout: float | None = None) -> MemoryEstimate:
        """The memory the engine would allocate for ``network``, by component, without building it.

        Parameters
        ----------
        network : Network message or dict
        timeout : float, optional

        Returns
        -------
        MemoryEstimate

        Examples
        --------
        >>> client.simulation.estimate_memory(vogels_abbott("coba", n_neurons=100_000)).breakdown_bytes   # doctest: +SKIP
        {'neurons': 4800000, 'synapses': 96000000, ...}
        """
        request = S.EstimateMemoryRequest(network=network_message(network))
        return self._unary("EstimateMemory", request, MemoryEstimate, timeout)

    def bayesian_observer(self, mode: str, *, timeout: float | None = None, **fields: Any) -> BayesianObserverResult:
        """A Bayesian observer of a scalar stimulus: posterior, psychometric curves, simulated choices or
        a maximum-likelihood fit to choices.

        Parameters
        ----------
        mode : str
            "posterior", "psychometric", "simulate" or "fit".
        timeout : float, optional
        **fields
            The other fields of ``BayesianObserverRequest``
            (protos/neuromesh/simulation/v1/simulation.proto): ``parameters`` (a dict of
            ObserverParameters), ``observations``, ``stimuli``, ``references``, ``choices``,
            ``n_samples_per_trial`` (arrays), ``reference``, ``n_samples``, ``grid`` (dict),
            ``psychometric_references``, ``fix_lapse``, ``confidence``, ``n_bootstrap``, ``seed``;
            converted as :mod:`neuromesh.sdk.requests` describes.

        Returns
        -------
        BayesianObserverResult

        Examples
        --------
        >>> curves = client.simulation.bayesian_observer(
        ...     "psychometric", parameters={"prior_mean": 0.0, "prior_sd": 2.0, "noise_sd": 1.0},
        ...     psychometric_references=[-1.0, 0.0, 1.0])                            # doctest: +SKIP
        >>> curves.show()                                                          # doctest: +SKIP
        """
        if mode is None:
            raise InvalidArgument("mode is required: posterior, psychometric, simulate or fit", field="mode")
        request = build_request(S.BayesianObserverRequest, {"mode": mode, **fields}, artifacts=self.artifacts)
        return self._unary("BayesianObserver", request, BayesianObserverResult, timeout)

    def train_predictive_coding(self, *, progress: bool | None = None, on_progress: ProgressCallback | None = None,
                                timeout: float | None = None, **fields: Any) -> PredictiveCodingResult:
        """Train a Rao & Ballard predictive-coding hierarchy on images and measure its receptive fields.

        Streams progress; Ctrl-C cancels the training and re-raises ``KeyboardInterrupt``.

        Parameters
        ----------
        progress, on_progress, timeout
            As for :meth:`DecodingClient.train <neuromesh.sdk.decoding.DecodingClient.train>`.
        **fields
            The fields of ``TrainPredictiveCodingRequest``: ``source`` ("natural", "pink_noise",
            "uploaded"), ``natural_images``, ``pink_noise`` (dict), ``images`` (arrays or files),
            ``whiten``, ``n_regions``, ``patch_height``, ``patch_width``, ``layer_sizes``,
            ``activation``, ``prior``, ``n_batches``, ``batch_size``, ``learning_rate``, ``seed``,
            ``bar_length`` (dict), ...; converted as :mod:`neuromesh.sdk.requests` describes.

        Returns
        -------
        PredictiveCodingResult

        Examples
        --------
        >>> pc = client.simulation.train_predictive_coding(source="pink_noise", n_batches=100, seed=1)   # doctest: +SKIP
        >>> pc.median_gabor_r2, pc.random_median_gabor_r2                                              # doctest: +SKIP
        (0.89, 0.24)
        """
        request = build_request(S.TrainPredictiveCodingRequest, fields, artifacts=self.artifacts)
        return self._stream("TrainPredictiveCoding", request, PredictiveCodingResult, timeout=timeout,
                            progress=progress, on_progress=on_progress)
