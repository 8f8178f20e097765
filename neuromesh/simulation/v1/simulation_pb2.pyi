from neuromesh.common.v1 import artifact_pb2 as _artifact_pb2
from neuromesh.common.v1 import progress_pb2 as _progress_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class NeuronModel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NEURON_MODEL_UNSPECIFIED: _ClassVar[NeuronModel]
    NEURON_MODEL_LIF_CUBA: _ClassVar[NeuronModel]
    NEURON_MODEL_LIF_COBA: _ClassVar[NeuronModel]
    NEURON_MODEL_IZHIKEVICH: _ClassVar[NeuronModel]
    NEURON_MODEL_POISSON: _ClassVar[NeuronModel]

class Distribution(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DISTRIBUTION_UNSPECIFIED: _ClassVar[Distribution]
    DISTRIBUTION_CONSTANT: _ClassVar[Distribution]
    DISTRIBUTION_UNIFORM: _ClassVar[Distribution]
    DISTRIBUTION_NORMAL: _ClassVar[Distribution]

class SynapseChannel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SYNAPSE_CHANNEL_UNSPECIFIED: _ClassVar[SynapseChannel]
    SYNAPSE_CHANNEL_EXC: _ClassVar[SynapseChannel]
    SYNAPSE_CHANNEL_INH: _ClassVar[SynapseChannel]

class ConnectivityRule(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONNECTIVITY_RULE_UNSPECIFIED: _ClassVar[ConnectivityRule]
    CONNECTIVITY_RULE_FIXED_PROBABILITY: _ClassVar[ConnectivityRule]
    CONNECTIVITY_RULE_FIXED_INDEGREE: _ClassVar[ConnectivityRule]
    CONNECTIVITY_RULE_ONE_TO_ONE: _ClassVar[ConnectivityRule]
    CONNECTIVITY_RULE_ALL_TO_ALL: _ClassVar[ConnectivityRule]

class PlasticityRule(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PLASTICITY_RULE_UNSPECIFIED: _ClassVar[PlasticityRule]
    PLASTICITY_RULE_STDP: _ClassVar[PlasticityRule]
    PLASTICITY_RULE_REWARD_MODULATED_STDP: _ClassVar[PlasticityRule]

class Dtype(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DTYPE_UNSPECIFIED: _ClassVar[Dtype]
    DTYPE_FLOAT32: _ClassVar[Dtype]
    DTYPE_FLOAT64: _ClassVar[Dtype]

class VogelsAbbottKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VOGELS_ABBOTT_KIND_UNSPECIFIED: _ClassVar[VogelsAbbottKind]
    VOGELS_ABBOTT_KIND_CUBA: _ClassVar[VogelsAbbottKind]
    VOGELS_ABBOTT_KIND_COBA: _ClassVar[VogelsAbbottKind]
NEURON_MODEL_UNSPECIFIED: NeuronModel
NEURON_MODEL_LIF_CUBA: NeuronModel
NEURON_MODEL_LIF_COBA: NeuronModel
NEURON_MODEL_IZHIKEVICH: NeuronModel
NEURON_MODEL_POISSON: NeuronModel
DISTRIBUTION_UNSPECIFIED: Distribution
DISTRIBUTION_CONSTANT: Distribution
DISTRIBUTION_UNIFORM: Distribution
DISTRIBUTION_NORMAL: Distribution
SYNAPSE_CHANNEL_UNSPECIFIED: SynapseChannel
SYNAPSE_CHANNEL_EXC: SynapseChannel
SYNAPSE_CHANNEL_INH: SynapseChannel
CONNECTIVITY_RULE_UNSPECIFIED: ConnectivityRule
CONNECTIVITY_RULE_FIXED_PROBABILITY: ConnectivityRule
CONNECTIVITY_RULE_FIXED_INDEGREE: ConnectivityRule
CONNECTIVITY_RULE_ONE_TO_ONE: ConnectivityRule
CONNECTIVITY_RULE_ALL_TO_ALL: ConnectivityRule
PLASTICITY_RULE_UNSPECIFIED: PlasticityRule
PLASTICITY_RULE_STDP: PlasticityRule
PLASTICITY_RULE_REWARD_MODULATED_STDP: PlasticityRule
DTYPE_UNSPECIFIED: Dtype
DTYPE_FLOAT32: Dtype
DTYPE_FLOAT64: Dtype
VOGELS_ABBOTT_KIND_UNSPECIFIED: VogelsAbbottKind
VOGELS_ABBOTT_KIND_CUBA: VogelsAbbottKind
VOGELS_ABBOTT_KIND_COBA: VogelsAbbottKind

class InitialValue(_message.Message):
    __slots__ = ("distribution", "a", "b")
    DISTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    A_FIELD_NUMBER: _ClassVar[int]
    B_FIELD_NUMBER: _ClassVar[int]
    distribution: Distribution
    a: float
    b: float
    def __init__(self, distribution: _Optional[_Union[Distribution, str]] = ..., a: _Optional[float] = ..., b: _Optional[float] = ...) -> None: ...

class Population(_message.Message):
    __slots__ = ("name", "size", "model", "params", "initial", "izhikevich_regime")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class InitialEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: InitialValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[InitialValue, _Mapping]] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    INITIAL_FIELD_NUMBER: _ClassVar[int]
    IZHIKEVICH_REGIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    size: int
    model: NeuronModel
    params: _containers.ScalarMap[str, float]
    initial: _containers.MessageMap[str, InitialValue]
    izhikevich_regime: str
    def __init__(self, name: _Optional[str] = ..., size: _Optional[int] = ..., model: _Optional[_Union[NeuronModel, str]] = ..., params: _Optional[_Mapping[str, float]] = ..., initial: _Optional[_Mapping[str, InitialValue]] = ..., izhikevich_regime: _Optional[str] = ...) -> None: ...

class Connectivity(_message.Message):
    __slots__ = ("rule", "value", "allow_autapses")
    RULE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    ALLOW_AUTAPSES_FIELD_NUMBER: _ClassVar[int]
    rule: ConnectivityRule
    value: float
    allow_autapses: bool
    def __init__(self, rule: _Optional[_Union[ConnectivityRule, str]] = ..., value: _Optional[float] = ..., allow_autapses: _Optional[bool] = ...) -> None: ...

class Plasticity(_message.Message):
    __slots__ = ("rule", "a_plus", "a_minus", "tau_plus", "tau_minus", "w_max", "tau_eligibility", "tau_dopamine", "learning_rate", "update_interval_ms")
    RULE_FIELD_NUMBER: _ClassVar[int]
    A_PLUS_FIELD_NUMBER: _ClassVar[int]
    A_MINUS_FIELD_NUMBER: _ClassVar[int]
    TAU_PLUS_FIELD_NUMBER: _ClassVar[int]
    TAU_MINUS_FIELD_NUMBER: _ClassVar[int]
    W_MAX_FIELD_NUMBER: _ClassVar[int]
    TAU_ELIGIBILITY_FIELD_NUMBER: _ClassVar[int]
    TAU_DOPAMINE_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    rule: PlasticityRule
    a_plus: float
    a_minus: float
    tau_plus: float
    tau_minus: float
    w_max: float
    tau_eligibility: float
    tau_dopamine: float
    learning_rate: float
    update_interval_ms: float
    def __init__(self, rule: _Optional[_Union[PlasticityRule, str]] = ..., a_plus: _Optional[float] = ..., a_minus: _Optional[float] = ..., tau_plus: _Optional[float] = ..., tau_minus: _Optional[float] = ..., w_max: _Optional[float] = ..., tau_eligibility: _Optional[float] = ..., tau_dopamine: _Optional[float] = ..., learning_rate: _Optional[float] = ..., update_interval_ms: _Optional[float] = ...) -> None: ...

class Projection(_message.Message):
    __slots__ = ("source", "target", "synapse", "weight", "delay_ms", "connectivity", "plasticity")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    SYNAPSE_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    DELAY_MS_FIELD_NUMBER: _ClassVar[int]
    CONNECTIVITY_FIELD_NUMBER: _ClassVar[int]
    PLASTICITY_FIELD_NUMBER: _ClassVar[int]
    source: str
    target: str
    synapse: SynapseChannel
    weight: float
    delay_ms: float
    connectivity: Connectivity
    plasticity: Plasticity
    def __init__(self, source: _Optional[str] = ..., target: _Optional[str] = ..., synapse: _Optional[_Union[SynapseChannel, str]] = ..., weight: _Optional[float] = ..., delay_ms: _Optional[float] = ..., connectivity: _Optional[_Union[Connectivity, _Mapping]] = ..., plasticity: _Optional[_Union[Plasticity, _Mapping]] = ...) -> None: ...

class PoissonInput(_message.Message):
    __slots__ = ("target", "rate_hz", "weight", "n_sources", "synapse", "start_ms", "stop_ms")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    N_SOURCES_FIELD_NUMBER: _ClassVar[int]
    SYNAPSE_FIELD_NUMBER: _ClassVar[int]
    START_MS_FIELD_NUMBER: _ClassVar[int]
    STOP_MS_FIELD_NUMBER: _ClassVar[int]
    target: str
    rate_hz: float
    weight: float
    n_sources: int
    synapse: SynapseChannel
    start_ms: float
    stop_ms: float
    def __init__(self, target: _Optional[str] = ..., rate_hz: _Optional[float] = ..., weight: _Optional[float] = ..., n_sources: _Optional[int] = ..., synapse: _Optional[_Union[SynapseChannel, str]] = ..., start_ms: _Optional[float] = ..., stop_ms: _Optional[float] = ...) -> None: ...

class CurrentInput(_message.Message):
    __slots__ = ("target", "amplitude", "start_ms", "stop_ms", "neurons")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    AMPLITUDE_FIELD_NUMBER: _ClassVar[int]
    START_MS_FIELD_NUMBER: _ClassVar[int]
    STOP_MS_FIELD_NUMBER: _ClassVar[int]
    NEURONS_FIELD_NUMBER: _ClassVar[int]
    target: str
    amplitude: float
    start_ms: float
    stop_ms: float
    neurons: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, target: _Optional[str] = ..., amplitude: _Optional[float] = ..., start_ms: _Optional[float] = ..., stop_ms: _Optional[float] = ..., neurons: _Optional[_Iterable[int]] = ...) -> None: ...

class Reward(_message.Message):
    __slots__ = ("time_ms", "amount")
    TIME_MS_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    time_ms: float
    amount: float
    def __init__(self, time_ms: _Optional[float] = ..., amount: _Optional[float] = ...) -> None: ...

class StateMonitor(_message.Message):
    __slots__ = ("population", "neurons", "variables", "every_ms")
    POPULATION_FIELD_NUMBER: _ClassVar[int]
    NEURONS_FIELD_NUMBER: _ClassVar[int]
    VARIABLES_FIELD_NUMBER: _ClassVar[int]
    EVERY_MS_FIELD_NUMBER: _ClassVar[int]
    population: str
    neurons: _containers.RepeatedScalarFieldContainer[int]
    variables: _containers.RepeatedScalarFieldContainer[str]
    every_ms: float
    def __init__(self, population: _Optional[str] = ..., neurons: _Optional[_Iterable[int]] = ..., variables: _Optional[_Iterable[str]] = ..., every_ms: _Optional[float] = ...) -> None: ...

class SpikeRecording(_message.Message):
    __slots__ = ("populations",)
    POPULATIONS_FIELD_NUMBER: _ClassVar[int]
    populations: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, populations: _Optional[_Iterable[str]] = ...) -> None: ...

class VogelsAbbott(_message.Message):
    __slots__ = ("kind", "n_neurons", "synapses_per_neuron")
    KIND_FIELD_NUMBER: _ClassVar[int]
    N_NEURONS_FIELD_NUMBER: _ClassVar[int]
    SYNAPSES_PER_NEURON_FIELD_NUMBER: _ClassVar[int]
    kind: VogelsAbbottKind
    n_neurons: int
    synapses_per_neuron: int
    def __init__(self, kind: _Optional[_Union[VogelsAbbottKind, str]] = ..., n_neurons: _Optional[int] = ..., synapses_per_neuron: _Optional[int] = ...) -> None: ...

class CorticalColumn(_message.Message):
    __slots__ = ("scale", "stimulus_rate_hz", "stimulus_frequency_hz", "stimulus_depth", "stimulus_start_ms", "stimulus_stop_ms", "background_rate_hz", "psp_mv", "relative_inhibition")
    SCALE_FIELD_NUMBER: _ClassVar[int]
    STIMULUS_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    STIMULUS_FREQUENCY_HZ_FIELD_NUMBER: _ClassVar[int]
    STIMULUS_DEPTH_FIELD_NUMBER: _ClassVar[int]
    STIMULUS_START_MS_FIELD_NUMBER: _ClassVar[int]
    STIMULUS_STOP_MS_FIELD_NUMBER: _ClassVar[int]
    BACKGROUND_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    PSP_MV_FIELD_NUMBER: _ClassVar[int]
    RELATIVE_INHIBITION_FIELD_NUMBER: _ClassVar[int]
    scale: float
    stimulus_rate_hz: float
    stimulus_frequency_hz: float
    stimulus_depth: float
    stimulus_start_ms: float
    stimulus_stop_ms: float
    background_rate_hz: float
    psp_mv: float
    relative_inhibition: float
    def __init__(self, scale: _Optional[float] = ..., stimulus_rate_hz: _Optional[float] = ..., stimulus_frequency_hz: _Optional[float] = ..., stimulus_depth: _Optional[float] = ..., stimulus_start_ms: _Optional[float] = ..., stimulus_stop_ms: _Optional[float] = ..., background_rate_hz: _Optional[float] = ..., psp_mv: _Optional[float] = ..., relative_inhibition: _Optional[float] = ...) -> None: ...

class Network(_message.Message):
    __slots__ = ("populations", "projections", "poisson_inputs", "current_inputs", "rewards", "state_monitors", "record_spikes", "dt_ms", "seed", "dtype", "vogels_abbott", "cortical_column")
    POPULATIONS_FIELD_NUMBER: _ClassVar[int]
    PROJECTIONS_FIELD_NUMBER: _ClassVar[int]
    POISSON_INPUTS_FIELD_NUMBER: _ClassVar[int]
    CURRENT_INPUTS_FIELD_NUMBER: _ClassVar[int]
    REWARDS_FIELD_NUMBER: _ClassVar[int]
    STATE_MONITORS_FIELD_NUMBER: _ClassVar[int]
    RECORD_SPIKES_FIELD_NUMBER: _ClassVar[int]
    DT_MS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    VOGELS_ABBOTT_FIELD_NUMBER: _ClassVar[int]
    CORTICAL_COLUMN_FIELD_NUMBER: _ClassVar[int]
    populations: _containers.RepeatedCompositeFieldContainer[Population]
    projections: _containers.RepeatedCompositeFieldContainer[Projection]
    poisson_inputs: _containers.RepeatedCompositeFieldContainer[PoissonInput]
    current_inputs: _containers.RepeatedCompositeFieldContainer[CurrentInput]
    rewards: _containers.RepeatedCompositeFieldContainer[Reward]
    state_monitors: _containers.RepeatedCompositeFieldContainer[StateMonitor]
    record_spikes: SpikeRecording
    dt_ms: float
    seed: int
    dtype: Dtype
    vogels_abbott: VogelsAbbott
    cortical_column: CorticalColumn
    def __init__(self, populations: _Optional[_Iterable[_Union[Population, _Mapping]]] = ..., projections: _Optional[_Iterable[_Union[Projection, _Mapping]]] = ..., poisson_inputs: _Optional[_Iterable[_Union[PoissonInput, _Mapping]]] = ..., current_inputs: _Optional[_Iterable[_Union[CurrentInput, _Mapping]]] = ..., rewards: _Optional[_Iterable[_Union[Reward, _Mapping]]] = ..., state_monitors: _Optional[_Iterable[_Union[StateMonitor, _Mapping]]] = ..., record_spikes: _Optional[_Union[SpikeRecording, _Mapping]] = ..., dt_ms: _Optional[float] = ..., seed: _Optional[int] = ..., dtype: _Optional[_Union[Dtype, str]] = ..., vogels_abbott: _Optional[_Union[VogelsAbbott, _Mapping]] = ..., cortical_column: _Optional[_Union[CorticalColumn, _Mapping]] = ...) -> None: ...

class SimulateRequest(_message.Message):
    __slots__ = ("network", "duration_ms", "bin_ms", "count_populations", "record_connectivity")
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    BIN_MS_FIELD_NUMBER: _ClassVar[int]
    COUNT_POPULATIONS_FIELD_NUMBER: _ClassVar[int]
    RECORD_CONNECTIVITY_FIELD_NUMBER: _ClassVar[int]
    network: Network
    duration_ms: float
    bin_ms: float
    count_populations: _containers.RepeatedScalarFieldContainer[str]
    record_connectivity: bool
    def __init__(self, network: _Optional[_Union[Network, _Mapping]] = ..., duration_ms: _Optional[float] = ..., bin_ms: _Optional[float] = ..., count_populations: _Optional[_Iterable[str]] = ..., record_connectivity: _Optional[bool] = ...) -> None: ...

class PopulationSummary(_message.Message):
    __slots__ = ("name", "offset", "size", "model", "spikes", "rate_hz", "recorded", "count_column")
    NAME_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SPIKES_FIELD_NUMBER: _ClassVar[int]
    RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    RECORDED_FIELD_NUMBER: _ClassVar[int]
    COUNT_COLUMN_FIELD_NUMBER: _ClassVar[int]
    name: str
    offset: int
    size: int
    model: str
    spikes: int
    rate_hz: float
    recorded: bool
    count_column: int
    def __init__(self, name: _Optional[str] = ..., offset: _Optional[int] = ..., size: _Optional[int] = ..., model: _Optional[str] = ..., spikes: _Optional[int] = ..., rate_hz: _Optional[float] = ..., recorded: _Optional[bool] = ..., count_column: _Optional[int] = ...) -> None: ...

class StateTrace(_message.Message):
    __slots__ = ("population", "variables", "neurons", "values", "times")
    POPULATION_FIELD_NUMBER: _ClassVar[int]
    VARIABLES_FIELD_NUMBER: _ClassVar[int]
    NEURONS_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    TIMES_FIELD_NUMBER: _ClassVar[int]
    population: str
    variables: _containers.RepeatedScalarFieldContainer[str]
    neurons: _containers.RepeatedScalarFieldContainer[int]
    values: _artifact_pb2.ArtifactRef
    times: _artifact_pb2.ArtifactRef
    def __init__(self, population: _Optional[str] = ..., variables: _Optional[_Iterable[str]] = ..., neurons: _Optional[_Iterable[int]] = ..., values: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., times: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ...) -> None: ...

class PlasticWeights(_message.Message):
    __slots__ = ("projection", "source", "target", "weights_before", "weights_after", "pre_indices", "post_indices")
    PROJECTION_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_BEFORE_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_AFTER_FIELD_NUMBER: _ClassVar[int]
    PRE_INDICES_FIELD_NUMBER: _ClassVar[int]
    POST_INDICES_FIELD_NUMBER: _ClassVar[int]
    projection: int
    source: str
    target: str
    weights_before: _artifact_pb2.ArtifactRef
    weights_after: _artifact_pb2.ArtifactRef
    pre_indices: _artifact_pb2.ArtifactRef
    post_indices: _artifact_pb2.ArtifactRef
    def __init__(self, projection: _Optional[int] = ..., source: _Optional[str] = ..., target: _Optional[str] = ..., weights_before: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., weights_after: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., pre_indices: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., post_indices: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ...) -> None: ...

class SynapseTable(_message.Message):
    __slots__ = ("pre_ids", "post_ids", "weights", "n_synapses", "projection_starts")
    PRE_IDS_FIELD_NUMBER: _ClassVar[int]
    POST_IDS_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    N_SYNAPSES_FIELD_NUMBER: _ClassVar[int]
    PROJECTION_STARTS_FIELD_NUMBER: _ClassVar[int]
    pre_ids: _artifact_pb2.ArtifactRef
    post_ids: _artifact_pb2.ArtifactRef
    weights: _artifact_pb2.ArtifactRef
    n_synapses: int
    projection_starts: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, pre_ids: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., post_ids: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., weights: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., n_synapses: _Optional[int] = ..., projection_starts: _Optional[_Iterable[int]] = ...) -> None: ...

class SimulateResult(_message.Message):
    __slots__ = ("spike_times", "spike_ids", "population_table", "population_rates", "binned_counts", "bin_ms", "n_bins", "traces", "weights", "figure", "summary", "populations", "duration_ms", "n_neurons", "n_spikes", "synapse_count", "synaptic_events", "neuron_steps", "build_s", "simulate_s", "synaptic_events_per_second", "report", "synapses")
    SPIKE_TIMES_FIELD_NUMBER: _ClassVar[int]
    SPIKE_IDS_FIELD_NUMBER: _ClassVar[int]
    POPULATION_TABLE_FIELD_NUMBER: _ClassVar[int]
    POPULATION_RATES_FIELD_NUMBER: _ClassVar[int]
    BINNED_COUNTS_FIELD_NUMBER: _ClassVar[int]
    BIN_MS_FIELD_NUMBER: _ClassVar[int]
    N_BINS_FIELD_NUMBER: _ClassVar[int]
    TRACES_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    FIGURE_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    POPULATIONS_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    N_NEURONS_FIELD_NUMBER: _ClassVar[int]
    N_SPIKES_FIELD_NUMBER: _ClassVar[int]
    SYNAPSE_COUNT_FIELD_NUMBER: _ClassVar[int]
    SYNAPTIC_EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEURON_STEPS_FIELD_NUMBER: _ClassVar[int]
    BUILD_S_FIELD_NUMBER: _ClassVar[int]
    SIMULATE_S_FIELD_NUMBER: _ClassVar[int]
    SYNAPTIC_EVENTS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    SYNAPSES_FIELD_NUMBER: _ClassVar[int]
    spike_times: _artifact_pb2.ArtifactRef
    spike_ids: _artifact_pb2.ArtifactRef
    population_table: _artifact_pb2.ArtifactRef
    population_rates: _artifact_pb2.ArtifactRef
    binned_counts: _artifact_pb2.ArtifactRef
    bin_ms: float
    n_bins: int
    traces: _containers.RepeatedCompositeFieldContainer[StateTrace]
    weights: _containers.RepeatedCompositeFieldContainer[PlasticWeights]
    figure: _artifact_pb2.ArtifactRef
    summary: _artifact_pb2.ArtifactRef
    populations: _containers.RepeatedCompositeFieldContainer[PopulationSummary]
    duration_ms: float
    n_neurons: int
    n_spikes: int
    synapse_count: int
    synaptic_events: int
    neuron_steps: int
    build_s: float
    simulate_s: float
    synaptic_events_per_second: float
    report: _artifact_pb2.ArtifactRef
    synapses: SynapseTable
    def __init__(self, spike_times: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., spike_ids: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., population_table: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., population_rates: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., binned_counts: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., bin_ms: _Optional[float] = ..., n_bins: _Optional[int] = ..., traces: _Optional[_Iterable[_Union[StateTrace, _Mapping]]] = ..., weights: _Optional[_Iterable[_Union[PlasticWeights, _Mapping]]] = ..., figure: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., summary: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., populations: _Optional[_Iterable[_Union[PopulationSummary, _Mapping]]] = ..., duration_ms: _Optional[float] = ..., n_neurons: _Optional[int] = ..., n_spikes: _Optional[int] = ..., synapse_count: _Optional[int] = ..., synaptic_events: _Optional[int] = ..., neuron_steps: _Optional[int] = ..., build_s: _Optional[float] = ..., simulate_s: _Optional[float] = ..., synaptic_events_per_second: _Optional[float] = ..., report: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., synapses: _Optional[_Union[SynapseTable, _Mapping]] = ...) -> None: ...

class SimulateResponse(_message.Message):
    __slots__ = ("progress", "result")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    progress: _progress_pb2.Progress
    result: SimulateResult
    def __init__(self, progress: _Optional[_Union[_progress_pb2.Progress, _Mapping]] = ..., result: _Optional[_Union[SimulateResult, _Mapping]] = ...) -> None: ...

class EstimateMemoryRequest(_message.Message):
    __slots__ = ("network",)
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    network: Network
    def __init__(self, network: _Optional[_Union[Network, _Mapping]] = ...) -> None: ...

class EstimateMemoryResponse(_message.Message):
    __slots__ = ("total_bytes", "breakdown_bytes", "limit_bytes", "fits", "n_neurons", "expected_synapses")
    class BreakdownBytesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    BREAKDOWN_BYTES_FIELD_NUMBER: _ClassVar[int]
    LIMIT_BYTES_FIELD_NUMBER: _ClassVar[int]
    FITS_FIELD_NUMBER: _ClassVar[int]
    N_NEURONS_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_SYNAPSES_FIELD_NUMBER: _ClassVar[int]
    total_bytes: int
    breakdown_bytes: _containers.ScalarMap[str, int]
    limit_bytes: int
    fits: bool
    n_neurons: int
    expected_synapses: int
    def __init__(self, total_bytes: _Optional[int] = ..., breakdown_bytes: _Optional[_Mapping[str, int]] = ..., limit_bytes: _Optional[int] = ..., fits: _Optional[bool] = ..., n_neurons: _Optional[int] = ..., expected_synapses: _Optional[int] = ...) -> None: ...
