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

class ObserverMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OBSERVER_MODE_UNSPECIFIED: _ClassVar[ObserverMode]
    OBSERVER_MODE_POSTERIOR: _ClassVar[ObserverMode]
    OBSERVER_MODE_PSYCHOMETRIC: _ClassVar[ObserverMode]
    OBSERVER_MODE_SIMULATE: _ClassVar[ObserverMode]
    OBSERVER_MODE_FIT: _ClassVar[ObserverMode]

class ImageSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    IMAGE_SOURCE_UNSPECIFIED: _ClassVar[ImageSource]
    IMAGE_SOURCE_NATURAL: _ClassVar[ImageSource]
    IMAGE_SOURCE_PINK_NOISE: _ClassVar[ImageSource]
    IMAGE_SOURCE_UPLOADED: _ClassVar[ImageSource]

class PredictionActivation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PREDICTION_ACTIVATION_UNSPECIFIED: _ClassVar[PredictionActivation]
    PREDICTION_ACTIVATION_LINEAR: _ClassVar[PredictionActivation]
    PREDICTION_ACTIVATION_TANH: _ClassVar[PredictionActivation]

class CausePrior(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CAUSE_PRIOR_UNSPECIFIED: _ClassVar[CausePrior]
    CAUSE_PRIOR_CAUCHY: _ClassVar[CausePrior]
    CAUSE_PRIOR_GAUSSIAN: _ClassVar[CausePrior]
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
OBSERVER_MODE_UNSPECIFIED: ObserverMode
OBSERVER_MODE_POSTERIOR: ObserverMode
OBSERVER_MODE_PSYCHOMETRIC: ObserverMode
OBSERVER_MODE_SIMULATE: ObserverMode
OBSERVER_MODE_FIT: ObserverMode
IMAGE_SOURCE_UNSPECIFIED: ImageSource
IMAGE_SOURCE_NATURAL: ImageSource
IMAGE_SOURCE_PINK_NOISE: ImageSource
IMAGE_SOURCE_UPLOADED: ImageSource
PREDICTION_ACTIVATION_UNSPECIFIED: PredictionActivation
PREDICTION_ACTIVATION_LINEAR: PredictionActivation
PREDICTION_ACTIVATION_TANH: PredictionActivation
CAUSE_PRIOR_UNSPECIFIED: CausePrior
CAUSE_PRIOR_CAUCHY: CausePrior
CAUSE_PRIOR_GAUSSIAN: CausePrior

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

class ObserverParameters(_message.Message):
    __slots__ = ("prior_mean", "prior_sd", "noise_sd", "lapse")
    PRIOR_MEAN_FIELD_NUMBER: _ClassVar[int]
    PRIOR_SD_FIELD_NUMBER: _ClassVar[int]
    NOISE_SD_FIELD_NUMBER: _ClassVar[int]
    LAPSE_FIELD_NUMBER: _ClassVar[int]
    prior_mean: float
    prior_sd: float
    noise_sd: float
    lapse: float
    def __init__(self, prior_mean: _Optional[float] = ..., prior_sd: _Optional[float] = ..., noise_sd: _Optional[float] = ..., lapse: _Optional[float] = ...) -> None: ...

class StimulusGrid(_message.Message):
    __slots__ = ("start", "stop", "n_points")
    START_FIELD_NUMBER: _ClassVar[int]
    STOP_FIELD_NUMBER: _ClassVar[int]
    N_POINTS_FIELD_NUMBER: _ClassVar[int]
    start: float
    stop: float
    n_points: int
    def __init__(self, start: _Optional[float] = ..., stop: _Optional[float] = ..., n_points: _Optional[int] = ...) -> None: ...

class BayesianObserverRequest(_message.Message):
    __slots__ = ("mode", "parameters", "observations", "stimuli", "references", "reference", "choices", "n_samples", "n_samples_per_trial", "grid", "psychometric_references", "fix_lapse", "confidence", "n_bootstrap", "seed")
    MODE_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    OBSERVATIONS_FIELD_NUMBER: _ClassVar[int]
    STIMULI_FIELD_NUMBER: _ClassVar[int]
    REFERENCES_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    CHOICES_FIELD_NUMBER: _ClassVar[int]
    N_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    N_SAMPLES_PER_TRIAL_FIELD_NUMBER: _ClassVar[int]
    GRID_FIELD_NUMBER: _ClassVar[int]
    PSYCHOMETRIC_REFERENCES_FIELD_NUMBER: _ClassVar[int]
    FIX_LAPSE_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    N_BOOTSTRAP_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    mode: ObserverMode
    parameters: ObserverParameters
    observations: _artifact_pb2.ArtifactRef
    stimuli: _artifact_pb2.ArtifactRef
    references: _artifact_pb2.ArtifactRef
    reference: float
    choices: _artifact_pb2.ArtifactRef
    n_samples: int
    n_samples_per_trial: _artifact_pb2.ArtifactRef
    grid: StimulusGrid
    psychometric_references: _containers.RepeatedScalarFieldContainer[float]
    fix_lapse: bool
    confidence: float
    n_bootstrap: int
    seed: int
    def __init__(self, mode: _Optional[_Union[ObserverMode, str]] = ..., parameters: _Optional[_Union[ObserverParameters, _Mapping]] = ..., observations: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., stimuli: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., references: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., reference: _Optional[float] = ..., choices: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., n_samples: _Optional[int] = ..., n_samples_per_trial: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., grid: _Optional[_Union[StimulusGrid, _Mapping]] = ..., psychometric_references: _Optional[_Iterable[float]] = ..., fix_lapse: _Optional[bool] = ..., confidence: _Optional[float] = ..., n_bootstrap: _Optional[int] = ..., seed: _Optional[int] = ...) -> None: ...

class ObserverPosterior(_message.Message):
    __slots__ = ("means", "variances", "predictive_means", "predictive_sds", "gains", "log_evidence", "n_sequences", "n_observations", "final_mean", "final_sd", "total_log_evidence")
    MEANS_FIELD_NUMBER: _ClassVar[int]
    VARIANCES_FIELD_NUMBER: _ClassVar[int]
    PREDICTIVE_MEANS_FIELD_NUMBER: _ClassVar[int]
    PREDICTIVE_SDS_FIELD_NUMBER: _ClassVar[int]
    GAINS_FIELD_NUMBER: _ClassVar[int]
    LOG_EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    N_SEQUENCES_FIELD_NUMBER: _ClassVar[int]
    N_OBSERVATIONS_FIELD_NUMBER: _ClassVar[int]
    FINAL_MEAN_FIELD_NUMBER: _ClassVar[int]
    FINAL_SD_FIELD_NUMBER: _ClassVar[int]
    TOTAL_LOG_EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    means: _artifact_pb2.ArtifactRef
    variances: _artifact_pb2.ArtifactRef
    predictive_means: _artifact_pb2.ArtifactRef
    predictive_sds: _artifact_pb2.ArtifactRef
    gains: _artifact_pb2.ArtifactRef
    log_evidence: _artifact_pb2.ArtifactRef
    n_sequences: int
    n_observations: int
    final_mean: float
    final_sd: float
    total_log_evidence: float
    def __init__(self, means: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., variances: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., predictive_means: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., predictive_sds: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., gains: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., log_evidence: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., n_sequences: _Optional[int] = ..., n_observations: _Optional[int] = ..., final_mean: _Optional[float] = ..., final_sd: _Optional[float] = ..., total_log_evidence: _Optional[float] = ...) -> None: ...

class PsychometricCurves(_message.Message):
    __slots__ = ("stimuli", "probabilities", "references", "points_of_subjective_equality", "discrimination_sd")
    STIMULI_FIELD_NUMBER: _ClassVar[int]
    PROBABILITIES_FIELD_NUMBER: _ClassVar[int]
    REFERENCES_FIELD_NUMBER: _ClassVar[int]
    POINTS_OF_SUBJECTIVE_EQUALITY_FIELD_NUMBER: _ClassVar[int]
    DISCRIMINATION_SD_FIELD_NUMBER: _ClassVar[int]
    stimuli: _artifact_pb2.ArtifactRef
    probabilities: _artifact_pb2.ArtifactRef
    references: _containers.RepeatedScalarFieldContainer[float]
    points_of_subjective_equality: _containers.RepeatedScalarFieldContainer[float]
    discrimination_sd: float
    def __init__(self, stimuli: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., probabilities: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., references: _Optional[_Iterable[float]] = ..., points_of_subjective_equality: _Optional[_Iterable[float]] = ..., discrimination_sd: _Optional[float] = ...) -> None: ...

class SimulatedChoices(_message.Message):
    __slots__ = ("choices", "n_trials", "fraction_greater", "log_likelihood")
    CHOICES_FIELD_NUMBER: _ClassVar[int]
    N_TRIALS_FIELD_NUMBER: _ClassVar[int]
    FRACTION_GREATER_FIELD_NUMBER: _ClassVar[int]
    LOG_LIKELIHOOD_FIELD_NUMBER: _ClassVar[int]
    choices: _artifact_pb2.ArtifactRef
    n_trials: int
    fraction_greater: float
    log_likelihood: float
    def __init__(self, choices: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., n_trials: _Optional[int] = ..., fraction_greater: _Optional[float] = ..., log_likelihood: _Optional[float] = ...) -> None: ...

class ParameterEstimate(_message.Message):
    __slots__ = ("name", "estimate", "standard_error", "ci_lower", "ci_upper", "bootstrap_ci_lower", "bootstrap_ci_upper")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ESTIMATE_FIELD_NUMBER: _ClassVar[int]
    STANDARD_ERROR_FIELD_NUMBER: _ClassVar[int]
    CI_LOWER_FIELD_NUMBER: _ClassVar[int]
    CI_UPPER_FIELD_NUMBER: _ClassVar[int]
    BOOTSTRAP_CI_LOWER_FIELD_NUMBER: _ClassVar[int]
    BOOTSTRAP_CI_UPPER_FIELD_NUMBER: _ClassVar[int]
    name: str
    estimate: float
    standard_error: float
    ci_lower: float
    ci_upper: float
    bootstrap_ci_lower: float
    bootstrap_ci_upper: float
    def __init__(self, name: _Optional[str] = ..., estimate: _Optional[float] = ..., standard_error: _Optional[float] = ..., ci_lower: _Optional[float] = ..., ci_upper: _Optional[float] = ..., bootstrap_ci_lower: _Optional[float] = ..., bootstrap_ci_upper: _Optional[float] = ...) -> None: ...

class ObserverFit(_message.Message):
    __slots__ = ("parameters", "negative_log_likelihood", "n_trials", "converged", "hessian_positive_definite", "confidence", "theta_covariance", "bootstrap_estimates", "predicted")
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    NEGATIVE_LOG_LIKELIHOOD_FIELD_NUMBER: _ClassVar[int]
    N_TRIALS_FIELD_NUMBER: _ClassVar[int]
    CONVERGED_FIELD_NUMBER: _ClassVar[int]
    HESSIAN_POSITIVE_DEFINITE_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    THETA_COVARIANCE_FIELD_NUMBER: _ClassVar[int]
    BOOTSTRAP_ESTIMATES_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_FIELD_NUMBER: _ClassVar[int]
    parameters: _containers.RepeatedCompositeFieldContainer[ParameterEstimate]
    negative_log_likelihood: float
    n_trials: int
    converged: bool
    hessian_positive_definite: bool
    confidence: float
    theta_covariance: _artifact_pb2.ArtifactRef
    bootstrap_estimates: _artifact_pb2.ArtifactRef
    predicted: _artifact_pb2.ArtifactRef
    def __init__(self, parameters: _Optional[_Iterable[_Union[ParameterEstimate, _Mapping]]] = ..., negative_log_likelihood: _Optional[float] = ..., n_trials: _Optional[int] = ..., converged: _Optional[bool] = ..., hessian_positive_definite: _Optional[bool] = ..., confidence: _Optional[float] = ..., theta_covariance: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., bootstrap_estimates: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., predicted: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ...) -> None: ...

class BayesianObserverResponse(_message.Message):
    __slots__ = ("mode", "posterior", "psychometric", "simulated", "fit", "figure", "report")
    MODE_FIELD_NUMBER: _ClassVar[int]
    POSTERIOR_FIELD_NUMBER: _ClassVar[int]
    PSYCHOMETRIC_FIELD_NUMBER: _ClassVar[int]
    SIMULATED_FIELD_NUMBER: _ClassVar[int]
    FIT_FIELD_NUMBER: _ClassVar[int]
    FIGURE_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    mode: ObserverMode
    posterior: ObserverPosterior
    psychometric: PsychometricCurves
    simulated: SimulatedChoices
    fit: ObserverFit
    figure: _artifact_pb2.ArtifactRef
    report: _artifact_pb2.ArtifactRef
    def __init__(self, mode: _Optional[_Union[ObserverMode, str]] = ..., posterior: _Optional[_Union[ObserverPosterior, _Mapping]] = ..., psychometric: _Optional[_Union[PsychometricCurves, _Mapping]] = ..., simulated: _Optional[_Union[SimulatedChoices, _Mapping]] = ..., fit: _Optional[_Union[ObserverFit, _Mapping]] = ..., figure: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., report: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ...) -> None: ...

class PinkNoiseImages(_message.Message):
    __slots__ = ("n_images", "size", "exponent")
    N_IMAGES_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    EXPONENT_FIELD_NUMBER: _ClassVar[int]
    n_images: int
    size: int
    exponent: float
    def __init__(self, n_images: _Optional[int] = ..., size: _Optional[int] = ..., exponent: _Optional[float] = ...) -> None: ...

class BarLengthProbe(_message.Message):
    __slots__ = ("units", "lengths", "width", "n_steps")
    UNITS_FIELD_NUMBER: _ClassVar[int]
    LENGTHS_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    N_STEPS_FIELD_NUMBER: _ClassVar[int]
    units: _containers.RepeatedScalarFieldContainer[int]
    lengths: _containers.RepeatedScalarFieldContainer[float]
    width: float
    n_steps: int
    def __init__(self, units: _Optional[_Iterable[int]] = ..., lengths: _Optional[_Iterable[float]] = ..., width: _Optional[float] = ..., n_steps: _Optional[int] = ...) -> None: ...

class TrainPredictiveCodingRequest(_message.Message):
    __slots__ = ("source", "natural_images", "pink_noise", "images", "whiten", "whitening_cutoff", "n_regions", "patch_height", "patch_width", "n_modules", "module_offset", "layer_sizes", "activation", "noise_sds", "prior", "sparsity", "n_batches", "batch_size", "n_steps", "rate", "learning_rate", "weight_decay", "normalize", "seed", "bar_length")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    NATURAL_IMAGES_FIELD_NUMBER: _ClassVar[int]
    PINK_NOISE_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    WHITEN_FIELD_NUMBER: _ClassVar[int]
    WHITENING_CUTOFF_FIELD_NUMBER: _ClassVar[int]
    N_REGIONS_FIELD_NUMBER: _ClassVar[int]
    PATCH_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    PATCH_WIDTH_FIELD_NUMBER: _ClassVar[int]
    N_MODULES_FIELD_NUMBER: _ClassVar[int]
    MODULE_OFFSET_FIELD_NUMBER: _ClassVar[int]
    LAYER_SIZES_FIELD_NUMBER: _ClassVar[int]
    ACTIVATION_FIELD_NUMBER: _ClassVar[int]
    NOISE_SDS_FIELD_NUMBER: _ClassVar[int]
    PRIOR_FIELD_NUMBER: _ClassVar[int]
    SPARSITY_FIELD_NUMBER: _ClassVar[int]
    N_BATCHES_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    N_STEPS_FIELD_NUMBER: _ClassVar[int]
    RATE_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_DECAY_FIELD_NUMBER: _ClassVar[int]
    NORMALIZE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    BAR_LENGTH_FIELD_NUMBER: _ClassVar[int]
    source: ImageSource
    natural_images: _containers.RepeatedScalarFieldContainer[str]
    pink_noise: PinkNoiseImages
    images: _containers.RepeatedCompositeFieldContainer[_artifact_pb2.ArtifactRef]
    whiten: bool
    whitening_cutoff: float
    n_regions: int
    patch_height: int
    patch_width: int
    n_modules: int
    module_offset: int
    layer_sizes: _containers.RepeatedScalarFieldContainer[int]
    activation: PredictionActivation
    noise_sds: _containers.RepeatedScalarFieldContainer[float]
    prior: CausePrior
    sparsity: _containers.RepeatedScalarFieldContainer[float]
    n_batches: int
    batch_size: int
    n_steps: int
    rate: float
    learning_rate: float
    weight_decay: float
    normalize: bool
    seed: int
    bar_length: BarLengthProbe
    def __init__(self, source: _Optional[_Union[ImageSource, str]] = ..., natural_images: _Optional[_Iterable[str]] = ..., pink_noise: _Optional[_Union[PinkNoiseImages, _Mapping]] = ..., images: _Optional[_Iterable[_Union[_artifact_pb2.ArtifactRef, _Mapping]]] = ..., whiten: _Optional[bool] = ..., whitening_cutoff: _Optional[float] = ..., n_regions: _Optional[int] = ..., patch_height: _Optional[int] = ..., patch_width: _Optional[int] = ..., n_modules: _Optional[int] = ..., module_offset: _Optional[int] = ..., layer_sizes: _Optional[_Iterable[int]] = ..., activation: _Optional[_Union[PredictionActivation, str]] = ..., noise_sds: _Optional[_Iterable[float]] = ..., prior: _Optional[_Union[CausePrior, str]] = ..., sparsity: _Optional[_Iterable[float]] = ..., n_batches: _Optional[int] = ..., batch_size: _Optional[int] = ..., n_steps: _Optional[int] = ..., rate: _Optional[float] = ..., learning_rate: _Optional[float] = ..., weight_decay: _Optional[float] = ..., normalize: _Optional[bool] = ..., seed: _Optional[int] = ..., bar_length: _Optional[_Union[BarLengthProbe, _Mapping]] = ...) -> None: ...

class BarLengthTuning(_message.Message):
    __slots__ = ("unit", "orientation", "center_x", "center_y", "end_stopping", "end_stopping_no_feedback")
    UNIT_FIELD_NUMBER: _ClassVar[int]
    ORIENTATION_FIELD_NUMBER: _ClassVar[int]
    CENTER_X_FIELD_NUMBER: _ClassVar[int]
    CENTER_Y_FIELD_NUMBER: _ClassVar[int]
    END_STOPPING_FIELD_NUMBER: _ClassVar[int]
    END_STOPPING_NO_FEEDBACK_FIELD_NUMBER: _ClassVar[int]
    unit: int
    orientation: float
    center_x: float
    center_y: float
    end_stopping: float
    end_stopping_no_feedback: float
    def __init__(self, unit: _Optional[int] = ..., orientation: _Optional[float] = ..., center_x: _Optional[float] = ..., center_y: _Optional[float] = ..., end_stopping: _Optional[float] = ..., end_stopping_no_feedback: _Optional[float] = ...) -> None: ...

class FieldMeasures(_message.Message):
    __slots__ = ("unit", "gabor_r2", "osi", "orientation", "frequency", "sigma_across", "sigma_along", "center_x", "center_y")
    UNIT_FIELD_NUMBER: _ClassVar[int]
    GABOR_R2_FIELD_NUMBER: _ClassVar[int]
    OSI_FIELD_NUMBER: _ClassVar[int]
    ORIENTATION_FIELD_NUMBER: _ClassVar[int]
    FREQUENCY_FIELD_NUMBER: _ClassVar[int]
    SIGMA_ACROSS_FIELD_NUMBER: _ClassVar[int]
    SIGMA_ALONG_FIELD_NUMBER: _ClassVar[int]
    CENTER_X_FIELD_NUMBER: _ClassVar[int]
    CENTER_Y_FIELD_NUMBER: _ClassVar[int]
    unit: int
    gabor_r2: float
    osi: float
    orientation: float
    frequency: float
    sigma_across: float
    sigma_along: float
    center_x: float
    center_y: float
    def __init__(self, unit: _Optional[int] = ..., gabor_r2: _Optional[float] = ..., osi: _Optional[float] = ..., orientation: _Optional[float] = ..., frequency: _Optional[float] = ..., sigma_across: _Optional[float] = ..., sigma_along: _Optional[float] = ..., center_x: _Optional[float] = ..., center_y: _Optional[float] = ...) -> None: ...

class TrainPredictiveCodingResult(_message.Message):
    __slots__ = ("weights", "fields", "prediction_errors", "relative_errors", "energy", "initial_relative_errors", "final_relative_errors", "field_measures", "gabor_r2", "orientation_selectivity", "gabor_parameters", "median_gabor_r2", "median_osi", "random_median_gabor_r2", "random_median_osi", "fields_figure", "errors_figure", "bar_tuning", "bar_lengths", "bar_responses", "bar_figure", "n_regions", "region_shape", "report")
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    PREDICTION_ERRORS_FIELD_NUMBER: _ClassVar[int]
    RELATIVE_ERRORS_FIELD_NUMBER: _ClassVar[int]
    ENERGY_FIELD_NUMBER: _ClassVar[int]
    INITIAL_RELATIVE_ERRORS_FIELD_NUMBER: _ClassVar[int]
    FINAL_RELATIVE_ERRORS_FIELD_NUMBER: _ClassVar[int]
    FIELD_MEASURES_FIELD_NUMBER: _ClassVar[int]
    GABOR_R2_FIELD_NUMBER: _ClassVar[int]
    ORIENTATION_SELECTIVITY_FIELD_NUMBER: _ClassVar[int]
    GABOR_PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    MEDIAN_GABOR_R2_FIELD_NUMBER: _ClassVar[int]
    MEDIAN_OSI_FIELD_NUMBER: _ClassVar[int]
    RANDOM_MEDIAN_GABOR_R2_FIELD_NUMBER: _ClassVar[int]
    RANDOM_MEDIAN_OSI_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIGURE_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIGURE_FIELD_NUMBER: _ClassVar[int]
    BAR_TUNING_FIELD_NUMBER: _ClassVar[int]
    BAR_LENGTHS_FIELD_NUMBER: _ClassVar[int]
    BAR_RESPONSES_FIELD_NUMBER: _ClassVar[int]
    BAR_FIGURE_FIELD_NUMBER: _ClassVar[int]
    N_REGIONS_FIELD_NUMBER: _ClassVar[int]
    REGION_SHAPE_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    weights: _containers.RepeatedCompositeFieldContainer[_artifact_pb2.ArtifactRef]
    fields: _artifact_pb2.ArtifactRef
    prediction_errors: _artifact_pb2.ArtifactRef
    relative_errors: _artifact_pb2.ArtifactRef
    energy: _artifact_pb2.ArtifactRef
    initial_relative_errors: _containers.RepeatedScalarFieldContainer[float]
    final_relative_errors: _containers.RepeatedScalarFieldContainer[float]
    field_measures: _containers.RepeatedCompositeFieldContainer[FieldMeasures]
    gabor_r2: _artifact_pb2.ArtifactRef
    orientation_selectivity: _artifact_pb2.ArtifactRef
    gabor_parameters: _artifact_pb2.ArtifactRef
    median_gabor_r2: float
    median_osi: float
    random_median_gabor_r2: float
    random_median_osi: float
    fields_figure: _artifact_pb2.ArtifactRef
    errors_figure: _artifact_pb2.ArtifactRef
    bar_tuning: _containers.RepeatedCompositeFieldContainer[BarLengthTuning]
    bar_lengths: _artifact_pb2.ArtifactRef
    bar_responses: _artifact_pb2.ArtifactRef
    bar_figure: _artifact_pb2.ArtifactRef
    n_regions: int
    region_shape: _containers.RepeatedScalarFieldContainer[int]
    report: _artifact_pb2.ArtifactRef
    def __init__(self, weights: _Optional[_Iterable[_Union[_artifact_pb2.ArtifactRef, _Mapping]]] = ..., fields: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., prediction_errors: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., relative_errors: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., energy: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., initial_relative_errors: _Optional[_Iterable[float]] = ..., final_relative_errors: _Optional[_Iterable[float]] = ..., field_measures: _Optional[_Iterable[_Union[FieldMeasures, _Mapping]]] = ..., gabor_r2: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., orientation_selectivity: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., gabor_parameters: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., median_gabor_r2: _Optional[float] = ..., median_osi: _Optional[float] = ..., random_median_gabor_r2: _Optional[float] = ..., random_median_osi: _Optional[float] = ..., fields_figure: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., errors_figure: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., bar_tuning: _Optional[_Iterable[_Union[BarLengthTuning, _Mapping]]] = ..., bar_lengths: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., bar_responses: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., bar_figure: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., n_regions: _Optional[int] = ..., region_shape: _Optional[_Iterable[int]] = ..., report: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ...) -> None: ...

class TrainPredictiveCodingResponse(_message.Message):
    __slots__ = ("progress", "result")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    progress: _progress_pb2.Progress
    result: TrainPredictiveCodingResult
    def __init__(self, progress: _Optional[_Union[_progress_pb2.Progress, _Mapping]] = ..., result: _Optional[_Union[TrainPredictiveCodingResult, _Mapping]] = ...) -> None: ...
