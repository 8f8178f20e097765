from google.protobuf import struct_pb2 as _struct_pb2
from neuromesh.common.v1 import artifact_pb2 as _artifact_pb2
from neuromesh.common.v1 import progress_pb2 as _progress_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RateActivation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RATE_ACTIVATION_UNSPECIFIED: _ClassVar[RateActivation]
    RATE_ACTIVATION_TANH: _ClassVar[RateActivation]
    RATE_ACTIVATION_RELU: _ClassVar[RateActivation]
    RATE_ACTIVATION_SOFTPLUS: _ClassVar[RateActivation]
    RATE_ACTIVATION_LINEAR: _ClassVar[RateActivation]

class CircuitOptimizer(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CIRCUIT_OPTIMIZER_UNSPECIFIED: _ClassVar[CircuitOptimizer]
    CIRCUIT_OPTIMIZER_ADAM: _ClassVar[CircuitOptimizer]
    CIRCUIT_OPTIMIZER_LBFGS: _ClassVar[CircuitOptimizer]

class FixedPointStability(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FIXED_POINT_STABILITY_UNSPECIFIED: _ClassVar[FixedPointStability]
    FIXED_POINT_STABILITY_STABLE: _ClassVar[FixedPointStability]
    FIXED_POINT_STABILITY_MARGINAL: _ClassVar[FixedPointStability]
    FIXED_POINT_STABILITY_SADDLE: _ClassVar[FixedPointStability]
    FIXED_POINT_STABILITY_UNSTABLE: _ClassVar[FixedPointStability]

class LearningRulesMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LEARNING_RULES_MODE_UNSPECIFIED: _ClassVar[LearningRulesMode]
    LEARNING_RULES_MODE_TWO_LAYER: _ClassVar[LearningRulesMode]
    LEARNING_RULES_MODE_OJA: _ClassVar[LearningRulesMode]
    LEARNING_RULES_MODE_SANGER: _ClassVar[LearningRulesMode]
    LEARNING_RULES_MODE_SUBSPACE: _ClassVar[LearningRulesMode]

class LearningRule(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LEARNING_RULE_UNSPECIFIED: _ClassVar[LearningRule]
    LEARNING_RULE_BACKPROP: _ClassVar[LearningRule]
    LEARNING_RULE_FEEDBACK_ALIGNMENT: _ClassVar[LearningRule]
    LEARNING_RULE_THREE_FACTOR: _ClassVar[LearningRule]

class HiddenActivation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HIDDEN_ACTIVATION_UNSPECIFIED: _ClassVar[HiddenActivation]
    HIDDEN_ACTIVATION_LINEAR: _ClassVar[HiddenActivation]
    HIDDEN_ACTIVATION_TANH: _ClassVar[HiddenActivation]
    HIDDEN_ACTIVATION_RELU: _ClassVar[HiddenActivation]
RATE_ACTIVATION_UNSPECIFIED: RateActivation
RATE_ACTIVATION_TANH: RateActivation
RATE_ACTIVATION_RELU: RateActivation
RATE_ACTIVATION_SOFTPLUS: RateActivation
RATE_ACTIVATION_LINEAR: RateActivation
CIRCUIT_OPTIMIZER_UNSPECIFIED: CircuitOptimizer
CIRCUIT_OPTIMIZER_ADAM: CircuitOptimizer
CIRCUIT_OPTIMIZER_LBFGS: CircuitOptimizer
FIXED_POINT_STABILITY_UNSPECIFIED: FixedPointStability
FIXED_POINT_STABILITY_STABLE: FixedPointStability
FIXED_POINT_STABILITY_MARGINAL: FixedPointStability
FIXED_POINT_STABILITY_SADDLE: FixedPointStability
FIXED_POINT_STABILITY_UNSTABLE: FixedPointStability
LEARNING_RULES_MODE_UNSPECIFIED: LearningRulesMode
LEARNING_RULES_MODE_TWO_LAYER: LearningRulesMode
LEARNING_RULES_MODE_OJA: LearningRulesMode
LEARNING_RULES_MODE_SANGER: LearningRulesMode
LEARNING_RULES_MODE_SUBSPACE: LearningRulesMode
LEARNING_RULE_UNSPECIFIED: LearningRule
LEARNING_RULE_BACKPROP: LearningRule
LEARNING_RULE_FEEDBACK_ALIGNMENT: LearningRule
LEARNING_RULE_THREE_FACTOR: LearningRule
HIDDEN_ACTIVATION_UNSPECIFIED: HiddenActivation
HIDDEN_ACTIVATION_LINEAR: HiddenActivation
HIDDEN_ACTIVATION_TANH: HiddenActivation
HIDDEN_ACTIVATION_RELU: HiddenActivation

class MethodSpec(_message.Message):
    __slots__ = ("name", "params")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    name: str
    params: _struct_pb2.Struct
    def __init__(self, name: _Optional[str] = ..., params: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class Preprocessing(_message.Message):
    __slots__ = ("smooth_sigma_bins", "soft_normalize", "trial_average")
    SMOOTH_SIGMA_BINS_FIELD_NUMBER: _ClassVar[int]
    SOFT_NORMALIZE_FIELD_NUMBER: _ClassVar[int]
    TRIAL_AVERAGE_FIELD_NUMBER: _ClassVar[int]
    smooth_sigma_bins: float
    soft_normalize: float
    trial_average: bool
    def __init__(self, smooth_sigma_bins: _Optional[float] = ..., soft_normalize: _Optional[float] = ..., trial_average: _Optional[bool] = ...) -> None: ...

class FitRequest(_message.Message):
    __slots__ = ("activity", "method", "preprocessing", "conditions", "true_latents", "heldout_neurons", "test_fraction", "forward_bins", "seed")
    ACTIVITY_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    PREPROCESSING_FIELD_NUMBER: _ClassVar[int]
    CONDITIONS_FIELD_NUMBER: _ClassVar[int]
    TRUE_LATENTS_FIELD_NUMBER: _ClassVar[int]
    HELDOUT_NEURONS_FIELD_NUMBER: _ClassVar[int]
    TEST_FRACTION_FIELD_NUMBER: _ClassVar[int]
    FORWARD_BINS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    activity: _artifact_pb2.ArtifactRef
    method: MethodSpec
    preprocessing: Preprocessing
    conditions: _artifact_pb2.ArtifactRef
    true_latents: _artifact_pb2.ArtifactRef
    heldout_neurons: _containers.RepeatedScalarFieldContainer[int]
    test_fraction: float
    forward_bins: int
    seed: int
    def __init__(self, activity: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., method: _Optional[_Union[MethodSpec, _Mapping]] = ..., preprocessing: _Optional[_Union[Preprocessing, _Mapping]] = ..., conditions: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., true_latents: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., heldout_neurons: _Optional[_Iterable[int]] = ..., test_fraction: _Optional[float] = ..., forward_bins: _Optional[int] = ..., seed: _Optional[int] = ...) -> None: ...

class ReductionScores(_message.Message):
    __slots__ = ("explained_variance", "explained_variance_ratio", "latent_r2", "latent_r2_mean", "co_smoothing_bits_per_spike", "forward_prediction_r2", "log_likelihood")
    EXPLAINED_VARIANCE_FIELD_NUMBER: _ClassVar[int]
    EXPLAINED_VARIANCE_RATIO_FIELD_NUMBER: _ClassVar[int]
    LATENT_R2_FIELD_NUMBER: _ClassVar[int]
    LATENT_R2_MEAN_FIELD_NUMBER: _ClassVar[int]
    CO_SMOOTHING_BITS_PER_SPIKE_FIELD_NUMBER: _ClassVar[int]
    FORWARD_PREDICTION_R2_FIELD_NUMBER: _ClassVar[int]
    LOG_LIKELIHOOD_FIELD_NUMBER: _ClassVar[int]
    explained_variance: float
    explained_variance_ratio: _containers.RepeatedScalarFieldContainer[float]
    latent_r2: _containers.RepeatedScalarFieldContainer[float]
    latent_r2_mean: float
    co_smoothing_bits_per_spike: float
    forward_prediction_r2: float
    log_likelihood: float
    def __init__(self, explained_variance: _Optional[float] = ..., explained_variance_ratio: _Optional[_Iterable[float]] = ..., latent_r2: _Optional[_Iterable[float]] = ..., latent_r2_mean: _Optional[float] = ..., co_smoothing_bits_per_spike: _Optional[float] = ..., forward_prediction_r2: _Optional[float] = ..., log_likelihood: _Optional[float] = ...) -> None: ...

class FitResult(_message.Message):
    __slots__ = ("model", "latents", "scores", "components_figure", "trajectories_figure", "variance_figure", "report", "streamed")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    LATENTS_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    COMPONENTS_FIGURE_FIELD_NUMBER: _ClassVar[int]
    TRAJECTORIES_FIGURE_FIELD_NUMBER: _ClassVar[int]
    VARIANCE_FIGURE_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    STREAMED_FIELD_NUMBER: _ClassVar[int]
    model: _artifact_pb2.ArtifactRef
    latents: _artifact_pb2.ArtifactRef
    scores: ReductionScores
    components_figure: _artifact_pb2.ArtifactRef
    trajectories_figure: _artifact_pb2.ArtifactRef
    variance_figure: _artifact_pb2.ArtifactRef
    report: _artifact_pb2.ArtifactRef
    streamed: bool
    def __init__(self, model: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., latents: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., scores: _Optional[_Union[ReductionScores, _Mapping]] = ..., components_figure: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., trajectories_figure: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., variance_figure: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., report: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., streamed: _Optional[bool] = ...) -> None: ...

class FitResponse(_message.Message):
    __slots__ = ("progress", "result")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    progress: _progress_pb2.Progress
    result: FitResult
    def __init__(self, progress: _Optional[_Union[_progress_pb2.Progress, _Mapping]] = ..., result: _Optional[_Union[FitResult, _Mapping]] = ...) -> None: ...

class TransformRequest(_message.Message):
    __slots__ = ("model", "activity")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ACTIVITY_FIELD_NUMBER: _ClassVar[int]
    model: _artifact_pb2.ArtifactRef
    activity: _artifact_pb2.ArtifactRef
    def __init__(self, model: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., activity: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ...) -> None: ...

class TransformResponse(_message.Message):
    __slots__ = ("latents",)
    LATENTS_FIELD_NUMBER: _ClassVar[int]
    latents: _artifact_pb2.ArtifactRef
    def __init__(self, latents: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ...) -> None: ...

class ScoreRequest(_message.Message):
    __slots__ = ("model", "activity", "true_latents")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ACTIVITY_FIELD_NUMBER: _ClassVar[int]
    TRUE_LATENTS_FIELD_NUMBER: _ClassVar[int]
    model: _artifact_pb2.ArtifactRef
    activity: _artifact_pb2.ArtifactRef
    true_latents: _artifact_pb2.ArtifactRef
    def __init__(self, model: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., activity: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., true_latents: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ...) -> None: ...

class ScoreResponse(_message.Message):
    __slots__ = ("scores",)
    SCORES_FIELD_NUMBER: _ClassVar[int]
    scores: ReductionScores
    def __init__(self, scores: _Optional[_Union[ReductionScores, _Mapping]] = ...) -> None: ...

class RateNetworkArrays(_message.Message):
    __slots__ = ("recurrent", "input_weights", "bias", "readout", "readout_bias", "initial_state", "tau", "dt", "activation")
    RECURRENT_FIELD_NUMBER: _ClassVar[int]
    INPUT_WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    BIAS_FIELD_NUMBER: _ClassVar[int]
    READOUT_FIELD_NUMBER: _ClassVar[int]
    READOUT_BIAS_FIELD_NUMBER: _ClassVar[int]
    INITIAL_STATE_FIELD_NUMBER: _ClassVar[int]
    TAU_FIELD_NUMBER: _ClassVar[int]
    DT_FIELD_NUMBER: _ClassVar[int]
    ACTIVATION_FIELD_NUMBER: _ClassVar[int]
    recurrent: _artifact_pb2.ArtifactRef
    input_weights: _artifact_pb2.ArtifactRef
    bias: _artifact_pb2.ArtifactRef
    readout: _artifact_pb2.ArtifactRef
    readout_bias: _artifact_pb2.ArtifactRef
    initial_state: _artifact_pb2.ArtifactRef
    tau: float
    dt: float
    activation: RateActivation
    def __init__(self, recurrent: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., input_weights: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., bias: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., readout: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., readout_bias: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., initial_state: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., tau: _Optional[float] = ..., dt: _Optional[float] = ..., activation: _Optional[_Union[RateActivation, str]] = ...) -> None: ...

class FixedPointOptions(_message.Message):
    __slots__ = ("skip", "n_initial_states", "initial_noise_sd", "input", "n_iterations", "learning_rate", "fixed_tolerance", "keep_tolerance", "unique_tolerance", "marginal_tolerance", "polish_iterations")
    SKIP_FIELD_NUMBER: _ClassVar[int]
    N_INITIAL_STATES_FIELD_NUMBER: _ClassVar[int]
    INITIAL_NOISE_SD_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    N_ITERATIONS_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    FIXED_TOLERANCE_FIELD_NUMBER: _ClassVar[int]
    KEEP_TOLERANCE_FIELD_NUMBER: _ClassVar[int]
    UNIQUE_TOLERANCE_FIELD_NUMBER: _ClassVar[int]
    MARGINAL_TOLERANCE_FIELD_NUMBER: _ClassVar[int]
    POLISH_ITERATIONS_FIELD_NUMBER: _ClassVar[int]
    skip: bool
    n_initial_states: int
    initial_noise_sd: float
    input: _containers.RepeatedScalarFieldContainer[float]
    n_iterations: int
    learning_rate: float
    fixed_tolerance: float
    keep_tolerance: float
    unique_tolerance: float
    marginal_tolerance: float
    polish_iterations: int
    def __init__(self, skip: _Optional[bool] = ..., n_initial_states: _Optional[int] = ..., initial_noise_sd: _Optional[float] = ..., input: _Optional[_Iterable[float]] = ..., n_iterations: _Optional[int] = ..., learning_rate: _Optional[float] = ..., fixed_tolerance: _Optional[float] = ..., keep_tolerance: _Optional[float] = ..., unique_tolerance: _Optional[float] = ..., marginal_tolerance: _Optional[float] = ..., polish_iterations: _Optional[int] = ...) -> None: ...

class FixedPoint(_message.Message):
    __slots__ = ("q", "speed", "is_fixed", "stability", "n_unstable", "n_marginal", "n_stable", "leading_eigenvalue_real", "leading_eigenvalue_imag")
    Q_FIELD_NUMBER: _ClassVar[int]
    SPEED_FIELD_NUMBER: _ClassVar[int]
    IS_FIXED_FIELD_NUMBER: _ClassVar[int]
    STABILITY_FIELD_NUMBER: _ClassVar[int]
    N_UNSTABLE_FIELD_NUMBER: _ClassVar[int]
    N_MARGINAL_FIELD_NUMBER: _ClassVar[int]
    N_STABLE_FIELD_NUMBER: _ClassVar[int]
    LEADING_EIGENVALUE_REAL_FIELD_NUMBER: _ClassVar[int]
    LEADING_EIGENVALUE_IMAG_FIELD_NUMBER: _ClassVar[int]
    q: float
    speed: float
    is_fixed: bool
    stability: FixedPointStability
    n_unstable: int
    n_marginal: int
    n_stable: int
    leading_eigenvalue_real: float
    leading_eigenvalue_imag: float
    def __init__(self, q: _Optional[float] = ..., speed: _Optional[float] = ..., is_fixed: _Optional[bool] = ..., stability: _Optional[_Union[FixedPointStability, str]] = ..., n_unstable: _Optional[int] = ..., n_marginal: _Optional[int] = ..., n_stable: _Optional[int] = ..., leading_eigenvalue_real: _Optional[float] = ..., leading_eigenvalue_imag: _Optional[float] = ...) -> None: ...

class FixedPointsResult(_message.Message):
    __slots__ = ("points", "n_fixed", "n_slow", "n_candidates", "states", "jacobians", "eigenvalues_real", "eigenvalues_imag", "eigenvectors_real", "eigenvectors_imag", "candidates", "candidate_q", "figure")
    POINTS_FIELD_NUMBER: _ClassVar[int]
    N_FIXED_FIELD_NUMBER: _ClassVar[int]
    N_SLOW_FIELD_NUMBER: _ClassVar[int]
    N_CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    STATES_FIELD_NUMBER: _ClassVar[int]
    JACOBIANS_FIELD_NUMBER: _ClassVar[int]
    EIGENVALUES_REAL_FIELD_NUMBER: _ClassVar[int]
    EIGENVALUES_IMAG_FIELD_NUMBER: _ClassVar[int]
    EIGENVECTORS_REAL_FIELD_NUMBER: _ClassVar[int]
    EIGENVECTORS_IMAG_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_Q_FIELD_NUMBER: _ClassVar[int]
    FIGURE_FIELD_NUMBER: _ClassVar[int]
    points: _containers.RepeatedCompositeFieldContainer[FixedPoint]
    n_fixed: int
    n_slow: int
    n_candidates: int
    states: _artifact_pb2.ArtifactRef
    jacobians: _artifact_pb2.ArtifactRef
    eigenvalues_real: _artifact_pb2.ArtifactRef
    eigenvalues_imag: _artifact_pb2.ArtifactRef
    eigenvectors_real: _artifact_pb2.ArtifactRef
    eigenvectors_imag: _artifact_pb2.ArtifactRef
    candidates: _artifact_pb2.ArtifactRef
    candidate_q: _artifact_pb2.ArtifactRef
    figure: _artifact_pb2.ArtifactRef
    def __init__(self, points: _Optional[_Iterable[_Union[FixedPoint, _Mapping]]] = ..., n_fixed: _Optional[int] = ..., n_slow: _Optional[int] = ..., n_candidates: _Optional[int] = ..., states: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., jacobians: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., eigenvalues_real: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., eigenvalues_imag: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., eigenvectors_real: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., eigenvectors_imag: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., candidates: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., candidate_q: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., figure: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ...) -> None: ...

class InferCircuitRequest(_message.Message):
    __slots__ = ("inputs", "activity", "behaviour", "observed_units", "n_units", "activation", "tau", "dt", "dale_signs", "learn_initial_state", "holdout_fraction", "optimizer", "epochs", "learning_rate", "batch_size", "l2", "behaviour_weight", "max_grad_norm", "init_gain", "seed", "fixed_points", "true_recurrent")
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    ACTIVITY_FIELD_NUMBER: _ClassVar[int]
    BEHAVIOUR_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_UNITS_FIELD_NUMBER: _ClassVar[int]
    N_UNITS_FIELD_NUMBER: _ClassVar[int]
    ACTIVATION_FIELD_NUMBER: _ClassVar[int]
    TAU_FIELD_NUMBER: _ClassVar[int]
    DT_FIELD_NUMBER: _ClassVar[int]
    DALE_SIGNS_FIELD_NUMBER: _ClassVar[int]
    LEARN_INITIAL_STATE_FIELD_NUMBER: _ClassVar[int]
    HOLDOUT_FRACTION_FIELD_NUMBER: _ClassVar[int]
    OPTIMIZER_FIELD_NUMBER: _ClassVar[int]
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    L2_FIELD_NUMBER: _ClassVar[int]
    BEHAVIOUR_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    MAX_GRAD_NORM_FIELD_NUMBER: _ClassVar[int]
    INIT_GAIN_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    FIXED_POINTS_FIELD_NUMBER: _ClassVar[int]
    TRUE_RECURRENT_FIELD_NUMBER: _ClassVar[int]
    inputs: _artifact_pb2.ArtifactRef
    activity: _artifact_pb2.ArtifactRef
    behaviour: _artifact_pb2.ArtifactRef
    observed_units: _containers.RepeatedScalarFieldContainer[int]
    n_units: int
    activation: RateActivation
    tau: float
    dt: float
    dale_signs: _containers.RepeatedScalarFieldContainer[int]
    learn_initial_state: bool
    holdout_fraction: float
    optimizer: CircuitOptimizer
    epochs: int
    learning_rate: float
    batch_size: int
    l2: float
    behaviour_weight: float
    max_grad_norm: float
    init_gain: float
    seed: int
    fixed_points: FixedPointOptions
    true_recurrent: _artifact_pb2.ArtifactRef
    def __init__(self, inputs: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., activity: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., behaviour: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., observed_units: _Optional[_Iterable[int]] = ..., n_units: _Optional[int] = ..., activation: _Optional[_Union[RateActivation, str]] = ..., tau: _Optional[float] = ..., dt: _Optional[float] = ..., dale_signs: _Optional[_Iterable[int]] = ..., learn_initial_state: _Optional[bool] = ..., holdout_fraction: _Optional[float] = ..., optimizer: _Optional[_Union[CircuitOptimizer, str]] = ..., epochs: _Optional[int] = ..., learning_rate: _Optional[float] = ..., batch_size: _Optional[int] = ..., l2: _Optional[float] = ..., behaviour_weight: _Optional[float] = ..., max_grad_norm: _Optional[float] = ..., init_gain: _Optional[float] = ..., seed: _Optional[int] = ..., fixed_points: _Optional[_Union[FixedPointOptions, _Mapping]] = ..., true_recurrent: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ...) -> None: ...

class InferCircuitResult(_message.Message):
    __slots__ = ("network", "observed_units", "n_units", "train_trials", "heldout_trials", "loss", "heldout_loss", "initial_loss", "final_loss", "train_activity_r2", "heldout_activity_r2", "train_behaviour_r2", "heldout_behaviour_r2", "predicted_activity", "predicted_behaviour", "states", "effective_connectivity", "connectivity_correlation", "off_diagonal_connectivity_correlation", "fixed_points", "loss_figure", "activity_figure", "connectivity_figure", "report")
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_UNITS_FIELD_NUMBER: _ClassVar[int]
    N_UNITS_FIELD_NUMBER: _ClassVar[int]
    TRAIN_TRIALS_FIELD_NUMBER: _ClassVar[int]
    HELDOUT_TRIALS_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    HELDOUT_LOSS_FIELD_NUMBER: _ClassVar[int]
    INITIAL_LOSS_FIELD_NUMBER: _ClassVar[int]
    FINAL_LOSS_FIELD_NUMBER: _ClassVar[int]
    TRAIN_ACTIVITY_R2_FIELD_NUMBER: _ClassVar[int]
    HELDOUT_ACTIVITY_R2_FIELD_NUMBER: _ClassVar[int]
    TRAIN_BEHAVIOUR_R2_FIELD_NUMBER: _ClassVar[int]
    HELDOUT_BEHAVIOUR_R2_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_ACTIVITY_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_BEHAVIOUR_FIELD_NUMBER: _ClassVar[int]
    STATES_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_CONNECTIVITY_FIELD_NUMBER: _ClassVar[int]
    CONNECTIVITY_CORRELATION_FIELD_NUMBER: _ClassVar[int]
    OFF_DIAGONAL_CONNECTIVITY_CORRELATION_FIELD_NUMBER: _ClassVar[int]
    FIXED_POINTS_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIGURE_FIELD_NUMBER: _ClassVar[int]
    ACTIVITY_FIGURE_FIELD_NUMBER: _ClassVar[int]
    CONNECTIVITY_FIGURE_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    network: RateNetworkArrays
    observed_units: _containers.RepeatedScalarFieldContainer[int]
    n_units: int
    train_trials: _artifact_pb2.ArtifactRef
    heldout_trials: _artifact_pb2.ArtifactRef
    loss: _artifact_pb2.ArtifactRef
    heldout_loss: _artifact_pb2.ArtifactRef
    initial_loss: float
    final_loss: float
    train_activity_r2: float
    heldout_activity_r2: float
    train_behaviour_r2: float
    heldout_behaviour_r2: float
    predicted_activity: _artifact_pb2.ArtifactRef
    predicted_behaviour: _artifact_pb2.ArtifactRef
    states: _artifact_pb2.ArtifactRef
    effective_connectivity: _artifact_pb2.ArtifactRef
    connectivity_correlation: float
    off_diagonal_connectivity_correlation: float
    fixed_points: FixedPointsResult
    loss_figure: _artifact_pb2.ArtifactRef
    activity_figure: _artifact_pb2.ArtifactRef
    connectivity_figure: _artifact_pb2.ArtifactRef
    report: _artifact_pb2.ArtifactRef
    def __init__(self, network: _Optional[_Union[RateNetworkArrays, _Mapping]] = ..., observed_units: _Optional[_Iterable[int]] = ..., n_units: _Optional[int] = ..., train_trials: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., heldout_trials: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., loss: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., heldout_loss: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., initial_loss: _Optional[float] = ..., final_loss: _Optional[float] = ..., train_activity_r2: _Optional[float] = ..., heldout_activity_r2: _Optional[float] = ..., train_behaviour_r2: _Optional[float] = ..., heldout_behaviour_r2: _Optional[float] = ..., predicted_activity: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., predicted_behaviour: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., states: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., effective_connectivity: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., connectivity_correlation: _Optional[float] = ..., off_diagonal_connectivity_correlation: _Optional[float] = ..., fixed_points: _Optional[_Union[FixedPointsResult, _Mapping]] = ..., loss_figure: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., activity_figure: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., connectivity_figure: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., report: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ...) -> None: ...

class InferCircuitResponse(_message.Message):
    __slots__ = ("progress", "result")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    progress: _progress_pb2.Progress
    result: InferCircuitResult
    def __init__(self, progress: _Optional[_Union[_progress_pb2.Progress, _Mapping]] = ..., result: _Optional[_Union[InferCircuitResult, _Mapping]] = ...) -> None: ...

class FindFixedPointsRequest(_message.Message):
    __slots__ = ("network", "initial_states", "trajectories", "options", "seed")
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    INITIAL_STATES_FIELD_NUMBER: _ClassVar[int]
    TRAJECTORIES_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    network: RateNetworkArrays
    initial_states: _artifact_pb2.ArtifactRef
    trajectories: _artifact_pb2.ArtifactRef
    options: FixedPointOptions
    seed: int
    def __init__(self, network: _Optional[_Union[RateNetworkArrays, _Mapping]] = ..., initial_states: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., trajectories: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., options: _Optional[_Union[FixedPointOptions, _Mapping]] = ..., seed: _Optional[int] = ...) -> None: ...

class FindFixedPointsResult(_message.Message):
    __slots__ = ("fixed_points", "report")
    FIXED_POINTS_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    fixed_points: FixedPointsResult
    report: _artifact_pb2.ArtifactRef
    def __init__(self, fixed_points: _Optional[_Union[FixedPointsResult, _Mapping]] = ..., report: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ...) -> None: ...

class FindFixedPointsResponse(_message.Message):
    __slots__ = ("progress", "result")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    progress: _progress_pb2.Progress
    result: FindFixedPointsResult
    def __init__(self, progress: _Optional[_Union[_progress_pb2.Progress, _Mapping]] = ..., result: _Optional[_Union[FindFixedPointsResult, _Mapping]] = ...) -> None: ...

class LinearTeacherTask(_message.Message):
    __slots__ = ("n_samples", "n_in", "n_out", "noise_sd", "n_test_samples", "seed")
    N_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    N_IN_FIELD_NUMBER: _ClassVar[int]
    N_OUT_FIELD_NUMBER: _ClassVar[int]
    NOISE_SD_FIELD_NUMBER: _ClassVar[int]
    N_TEST_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    n_samples: int
    n_in: int
    n_out: int
    noise_sd: float
    n_test_samples: int
    seed: int
    def __init__(self, n_samples: _Optional[int] = ..., n_in: _Optional[int] = ..., n_out: _Optional[int] = ..., noise_sd: _Optional[float] = ..., n_test_samples: _Optional[int] = ..., seed: _Optional[int] = ...) -> None: ...

class UploadedTask(_message.Message):
    __slots__ = ("x", "y", "x_test", "y_test")
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    X_TEST_FIELD_NUMBER: _ClassVar[int]
    Y_TEST_FIELD_NUMBER: _ClassVar[int]
    x: _artifact_pb2.ArtifactRef
    y: _artifact_pb2.ArtifactRef
    x_test: _artifact_pb2.ArtifactRef
    y_test: _artifact_pb2.ArtifactRef
    def __init__(self, x: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., y: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., x_test: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., y_test: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ...) -> None: ...

class HebbianOptions(_message.Message):
    __slots__ = ("n_components", "learning_rate", "epochs", "batch_size", "center")
    N_COMPONENTS_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    CENTER_FIELD_NUMBER: _ClassVar[int]
    n_components: int
    learning_rate: float
    epochs: int
    batch_size: int
    center: bool
    def __init__(self, n_components: _Optional[int] = ..., learning_rate: _Optional[float] = ..., epochs: _Optional[int] = ..., batch_size: _Optional[int] = ..., center: _Optional[bool] = ...) -> None: ...

class CompareLearningRulesRequest(_message.Message):
    __slots__ = ("mode", "teacher", "uploaded", "rules", "n_hidden", "activation", "epochs", "batch_size", "backprop_learning_rate", "feedback_alignment_learning_rate", "three_factor_learning_rate", "perturbation_sd", "init_scale", "seed", "hebbian")
    MODE_FIELD_NUMBER: _ClassVar[int]
    TEACHER_FIELD_NUMBER: _ClassVar[int]
    UPLOADED_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    N_HIDDEN_FIELD_NUMBER: _ClassVar[int]
    ACTIVATION_FIELD_NUMBER: _ClassVar[int]
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    BACKPROP_LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    FEEDBACK_ALIGNMENT_LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    THREE_FACTOR_LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    PERTURBATION_SD_FIELD_NUMBER: _ClassVar[int]
    INIT_SCALE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    HEBBIAN_FIELD_NUMBER: _ClassVar[int]
    mode: LearningRulesMode
    teacher: LinearTeacherTask
    uploaded: UploadedTask
    rules: _containers.RepeatedScalarFieldContainer[LearningRule]
    n_hidden: int
    activation: HiddenActivation
    epochs: int
    batch_size: int
    backprop_learning_rate: float
    feedback_alignment_learning_rate: float
    three_factor_learning_rate: float
    perturbation_sd: float
    init_scale: float
    seed: int
    hebbian: HebbianOptions
    def __init__(self, mode: _Optional[_Union[LearningRulesMode, str]] = ..., teacher: _Optional[_Union[LinearTeacherTask, _Mapping]] = ..., uploaded: _Optional[_Union[UploadedTask, _Mapping]] = ..., rules: _Optional[_Iterable[_Union[LearningRule, str]]] = ..., n_hidden: _Optional[int] = ..., activation: _Optional[_Union[HiddenActivation, str]] = ..., epochs: _Optional[int] = ..., batch_size: _Optional[int] = ..., backprop_learning_rate: _Optional[float] = ..., feedback_alignment_learning_rate: _Optional[float] = ..., three_factor_learning_rate: _Optional[float] = ..., perturbation_sd: _Optional[float] = ..., init_scale: _Optional[float] = ..., seed: _Optional[int] = ..., hebbian: _Optional[_Union[HebbianOptions, _Mapping]] = ...) -> None: ...

class RuleCurves(_message.Message):
    __slots__ = ("rule", "learning_rate", "train_loss", "test_loss", "update_angle", "feedback_angle", "initial_train_loss", "final_train_loss", "final_test_loss", "final_update_angle", "final_feedback_angle", "w1", "b1", "w2", "b2", "feedback")
    RULE_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    TRAIN_LOSS_FIELD_NUMBER: _ClassVar[int]
    TEST_LOSS_FIELD_NUMBER: _ClassVar[int]
    UPDATE_ANGLE_FIELD_NUMBER: _ClassVar[int]
    FEEDBACK_ANGLE_FIELD_NUMBER: _ClassVar[int]
    INITIAL_TRAIN_LOSS_FIELD_NUMBER: _ClassVar[int]
    FINAL_TRAIN_LOSS_FIELD_NUMBER: _ClassVar[int]
    FINAL_TEST_LOSS_FIELD_NUMBER: _ClassVar[int]
    FINAL_UPDATE_ANGLE_FIELD_NUMBER: _ClassVar[int]
    FINAL_FEEDBACK_ANGLE_FIELD_NUMBER: _ClassVar[int]
    W1_FIELD_NUMBER: _ClassVar[int]
    B1_FIELD_NUMBER: _ClassVar[int]
    W2_FIELD_NUMBER: _ClassVar[int]
    B2_FIELD_NUMBER: _ClassVar[int]
    FEEDBACK_FIELD_NUMBER: _ClassVar[int]
    rule: LearningRule
    learning_rate: float
    train_loss: _artifact_pb2.ArtifactRef
    test_loss: _artifact_pb2.ArtifactRef
    update_angle: _artifact_pb2.ArtifactRef
    feedback_angle: _artifact_pb2.ArtifactRef
    initial_train_loss: float
    final_train_loss: float
    final_test_loss: float
    final_update_angle: float
    final_feedback_angle: float
    w1: _artifact_pb2.ArtifactRef
    b1: _artifact_pb2.ArtifactRef
    w2: _artifact_pb2.ArtifactRef
    b2: _artifact_pb2.ArtifactRef
    feedback: _artifact_pb2.ArtifactRef
    def __init__(self, rule: _Optional[_Union[LearningRule, str]] = ..., learning_rate: _Optional[float] = ..., train_loss: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., test_loss: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., update_angle: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., feedback_angle: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., initial_train_loss: _Optional[float] = ..., final_train_loss: _Optional[float] = ..., final_test_loss: _Optional[float] = ..., final_update_angle: _Optional[float] = ..., final_feedback_angle: _Optional[float] = ..., w1: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., b1: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., w2: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., b2: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., feedback: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ...) -> None: ...

class HebbianComponents(_message.Message):
    __slots__ = ("weights", "components", "eigenvalues", "alignment", "norms", "mean", "final_alignment", "final_norms", "explained_variance_ratio")
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    COMPONENTS_FIELD_NUMBER: _ClassVar[int]
    EIGENVALUES_FIELD_NUMBER: _ClassVar[int]
    ALIGNMENT_FIELD_NUMBER: _ClassVar[int]
    NORMS_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    FINAL_ALIGNMENT_FIELD_NUMBER: _ClassVar[int]
    FINAL_NORMS_FIELD_NUMBER: _ClassVar[int]
    EXPLAINED_VARIANCE_RATIO_FIELD_NUMBER: _ClassVar[int]
    weights: _artifact_pb2.ArtifactRef
    components: _artifact_pb2.ArtifactRef
    eigenvalues: _artifact_pb2.ArtifactRef
    alignment: _artifact_pb2.ArtifactRef
    norms: _artifact_pb2.ArtifactRef
    mean: _artifact_pb2.ArtifactRef
    final_alignment: _containers.RepeatedScalarFieldContainer[float]
    final_norms: _containers.RepeatedScalarFieldContainer[float]
    explained_variance_ratio: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, weights: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., components: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., eigenvalues: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., alignment: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., norms: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., mean: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., final_alignment: _Optional[_Iterable[float]] = ..., final_norms: _Optional[_Iterable[float]] = ..., explained_variance_ratio: _Optional[_Iterable[float]] = ...) -> None: ...

class CompareLearningRulesResult(_message.Message):
    __slots__ = ("mode", "rules", "least_squares_loss", "hebbian", "n_samples", "n_in", "n_out", "n_test_samples", "teacher", "figure", "report")
    MODE_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    LEAST_SQUARES_LOSS_FIELD_NUMBER: _ClassVar[int]
    HEBBIAN_FIELD_NUMBER: _ClassVar[int]
    N_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    N_IN_FIELD_NUMBER: _ClassVar[int]
    N_OUT_FIELD_NUMBER: _ClassVar[int]
    N_TEST_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    TEACHER_FIELD_NUMBER: _ClassVar[int]
    FIGURE_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    mode: LearningRulesMode
    rules: _containers.RepeatedCompositeFieldContainer[RuleCurves]
    least_squares_loss: float
    hebbian: HebbianComponents
    n_samples: int
    n_in: int
    n_out: int
    n_test_samples: int
    teacher: _artifact_pb2.ArtifactRef
    figure: _artifact_pb2.ArtifactRef
    report: _artifact_pb2.ArtifactRef
    def __init__(self, mode: _Optional[_Union[LearningRulesMode, str]] = ..., rules: _Optional[_Iterable[_Union[RuleCurves, _Mapping]]] = ..., least_squares_loss: _Optional[float] = ..., hebbian: _Optional[_Union[HebbianComponents, _Mapping]] = ..., n_samples: _Optional[int] = ..., n_in: _Optional[int] = ..., n_out: _Optional[int] = ..., n_test_samples: _Optional[int] = ..., teacher: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., figure: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., report: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ...) -> None: ...

class CompareLearningRulesResponse(_message.Message):
    __slots__ = ("progress", "result")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    progress: _progress_pb2.Progress
    result: CompareLearningRulesResult
    def __init__(self, progress: _Optional[_Union[_progress_pb2.Progress, _Mapping]] = ..., result: _Optional[_Union[CompareLearningRulesResult, _Mapping]] = ...) -> None: ...
