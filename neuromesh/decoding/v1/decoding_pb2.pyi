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

class DissimilarityMetric(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DISSIMILARITY_METRIC_UNSPECIFIED: _ClassVar[DissimilarityMetric]
    DISSIMILARITY_METRIC_CORRELATION: _ClassVar[DissimilarityMetric]
    DISSIMILARITY_METRIC_EUCLIDEAN: _ClassVar[DissimilarityMetric]
    DISSIMILARITY_METRIC_CROSSNOBIS: _ClassVar[DissimilarityMetric]

class RdmComparison(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RDM_COMPARISON_UNSPECIFIED: _ClassVar[RdmComparison]
    RDM_COMPARISON_SPEARMAN: _ClassVar[RdmComparison]
    RDM_COMPARISON_KENDALL_TAU_A: _ClassVar[RdmComparison]
    RDM_COMPARISON_PEARSON: _ClassVar[RdmComparison]
DISSIMILARITY_METRIC_UNSPECIFIED: DissimilarityMetric
DISSIMILARITY_METRIC_CORRELATION: DissimilarityMetric
DISSIMILARITY_METRIC_EUCLIDEAN: DissimilarityMetric
DISSIMILARITY_METRIC_CROSSNOBIS: DissimilarityMetric
RDM_COMPARISON_UNSPECIFIED: RdmComparison
RDM_COMPARISON_SPEARMAN: RdmComparison
RDM_COMPARISON_KENDALL_TAU_A: RdmComparison
RDM_COMPARISON_PEARSON: RdmComparison

class SpikeArrays(_message.Message):
    __slots__ = ("times", "unit_ids", "n_units")
    TIMES_FIELD_NUMBER: _ClassVar[int]
    UNIT_IDS_FIELD_NUMBER: _ClassVar[int]
    N_UNITS_FIELD_NUMBER: _ClassVar[int]
    times: _artifact_pb2.ArtifactRef
    unit_ids: _artifact_pb2.ArtifactRef
    n_units: int
    def __init__(self, times: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., unit_ids: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., n_units: _Optional[int] = ...) -> None: ...

class KilosortFolder(_message.Message):
    __slots__ = ("prefix", "include_groups", "sampling_rate_hz")
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_GROUPS_FIELD_NUMBER: _ClassVar[int]
    SAMPLING_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    include_groups: _containers.RepeatedScalarFieldContainer[str]
    sampling_rate_hz: float
    def __init__(self, prefix: _Optional[str] = ..., include_groups: _Optional[_Iterable[str]] = ..., sampling_rate_hz: _Optional[float] = ...) -> None: ...

class ContinuousArray(_message.Message):
    __slots__ = ("values", "sampling_rate_hz")
    VALUES_FIELD_NUMBER: _ClassVar[int]
    SAMPLING_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    values: _artifact_pb2.ArtifactRef
    sampling_rate_hz: float
    def __init__(self, values: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., sampling_rate_hz: _Optional[float] = ...) -> None: ...

class BehaviourArrays(_message.Message):
    __slots__ = ("values", "timestamps")
    VALUES_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMPS_FIELD_NUMBER: _ClassVar[int]
    values: _artifact_pb2.ArtifactRef
    timestamps: _artifact_pb2.ArtifactRef
    def __init__(self, values: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., timestamps: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ...) -> None: ...

class BinRecordingRequest(_message.Message):
    __slots__ = ("spikes", "nwb_file", "kilosort", "continuous", "bin_width_s", "start_s", "stop_s", "behaviour", "behaviour_series", "trial_condition_column")
    SPIKES_FIELD_NUMBER: _ClassVar[int]
    NWB_FILE_FIELD_NUMBER: _ClassVar[int]
    KILOSORT_FIELD_NUMBER: _ClassVar[int]
    CONTINUOUS_FIELD_NUMBER: _ClassVar[int]
    BIN_WIDTH_S_FIELD_NUMBER: _ClassVar[int]
    START_S_FIELD_NUMBER: _ClassVar[int]
    STOP_S_FIELD_NUMBER: _ClassVar[int]
    BEHAVIOUR_FIELD_NUMBER: _ClassVar[int]
    BEHAVIOUR_SERIES_FIELD_NUMBER: _ClassVar[int]
    TRIAL_CONDITION_COLUMN_FIELD_NUMBER: _ClassVar[int]
    spikes: SpikeArrays
    nwb_file: _artifact_pb2.ArtifactRef
    kilosort: KilosortFolder
    continuous: ContinuousArray
    bin_width_s: float
    start_s: float
    stop_s: float
    behaviour: BehaviourArrays
    behaviour_series: str
    trial_condition_column: str
    def __init__(self, spikes: _Optional[_Union[SpikeArrays, _Mapping]] = ..., nwb_file: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., kilosort: _Optional[_Union[KilosortFolder, _Mapping]] = ..., continuous: _Optional[_Union[ContinuousArray, _Mapping]] = ..., bin_width_s: _Optional[float] = ..., start_s: _Optional[float] = ..., stop_s: _Optional[float] = ..., behaviour: _Optional[_Union[BehaviourArrays, _Mapping]] = ..., behaviour_series: _Optional[str] = ..., trial_condition_column: _Optional[str] = ...) -> None: ...

class BinRecordingResponse(_message.Message):
    __slots__ = ("counts", "n_bins", "n_units", "unit_names", "behaviour", "trial_index", "time_in_trial", "condition", "bin_centres")
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    N_BINS_FIELD_NUMBER: _ClassVar[int]
    N_UNITS_FIELD_NUMBER: _ClassVar[int]
    UNIT_NAMES_FIELD_NUMBER: _ClassVar[int]
    BEHAVIOUR_FIELD_NUMBER: _ClassVar[int]
    TRIAL_INDEX_FIELD_NUMBER: _ClassVar[int]
    TIME_IN_TRIAL_FIELD_NUMBER: _ClassVar[int]
    CONDITION_FIELD_NUMBER: _ClassVar[int]
    BIN_CENTRES_FIELD_NUMBER: _ClassVar[int]
    counts: _artifact_pb2.ArtifactRef
    n_bins: int
    n_units: int
    unit_names: _containers.RepeatedScalarFieldContainer[str]
    behaviour: _artifact_pb2.ArtifactRef
    trial_index: _artifact_pb2.ArtifactRef
    time_in_trial: _artifact_pb2.ArtifactRef
    condition: _artifact_pb2.ArtifactRef
    bin_centres: _artifact_pb2.ArtifactRef
    def __init__(self, counts: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., n_bins: _Optional[int] = ..., n_units: _Optional[int] = ..., unit_names: _Optional[_Iterable[str]] = ..., behaviour: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., trial_index: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., time_in_trial: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., condition: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., bin_centres: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ...) -> None: ...

class DecoderSpec(_message.Message):
    __slots__ = ("name", "params", "history_bins", "future_bins")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    HISTORY_BINS_FIELD_NUMBER: _ClassVar[int]
    FUTURE_BINS_FIELD_NUMBER: _ClassVar[int]
    name: str
    params: _struct_pb2.Struct
    history_bins: int
    future_bins: int
    def __init__(self, name: _Optional[str] = ..., params: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., history_bins: _Optional[int] = ..., future_bins: _Optional[int] = ...) -> None: ...

class TrainRequest(_message.Message):
    __slots__ = ("features", "targets", "decoder", "n_folds", "gap_bins", "trial_index", "time_in_trial", "n_shuffles", "seed")
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    DECODER_FIELD_NUMBER: _ClassVar[int]
    N_FOLDS_FIELD_NUMBER: _ClassVar[int]
    GAP_BINS_FIELD_NUMBER: _ClassVar[int]
    TRIAL_INDEX_FIELD_NUMBER: _ClassVar[int]
    TIME_IN_TRIAL_FIELD_NUMBER: _ClassVar[int]
    N_SHUFFLES_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    features: _artifact_pb2.ArtifactRef
    targets: _artifact_pb2.ArtifactRef
    decoder: DecoderSpec
    n_folds: int
    gap_bins: int
    trial_index: _artifact_pb2.ArtifactRef
    time_in_trial: _artifact_pb2.ArtifactRef
    n_shuffles: int
    seed: int
    def __init__(self, features: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., targets: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., decoder: _Optional[_Union[DecoderSpec, _Mapping]] = ..., n_folds: _Optional[int] = ..., gap_bins: _Optional[int] = ..., trial_index: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., time_in_trial: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., n_shuffles: _Optional[int] = ..., seed: _Optional[int] = ...) -> None: ...

class EvaluationScores(_message.Message):
    __slots__ = ("r2", "pearson_r", "rmse", "accuracy", "balanced_accuracy", "chance", "classes", "confusion", "fold_scores", "n_tested")
    R2_FIELD_NUMBER: _ClassVar[int]
    PEARSON_R_FIELD_NUMBER: _ClassVar[int]
    RMSE_FIELD_NUMBER: _ClassVar[int]
    ACCURACY_FIELD_NUMBER: _ClassVar[int]
    BALANCED_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    CHANCE_FIELD_NUMBER: _ClassVar[int]
    CLASSES_FIELD_NUMBER: _ClassVar[int]
    CONFUSION_FIELD_NUMBER: _ClassVar[int]
    FOLD_SCORES_FIELD_NUMBER: _ClassVar[int]
    N_TESTED_FIELD_NUMBER: _ClassVar[int]
    r2: _containers.RepeatedScalarFieldContainer[float]
    pearson_r: _containers.RepeatedScalarFieldContainer[float]
    rmse: _containers.RepeatedScalarFieldContainer[float]
    accuracy: float
    balanced_accuracy: float
    chance: float
    classes: _containers.RepeatedScalarFieldContainer[int]
    confusion: _containers.RepeatedScalarFieldContainer[int]
    fold_scores: _containers.RepeatedScalarFieldContainer[float]
    n_tested: int
    def __init__(self, r2: _Optional[_Iterable[float]] = ..., pearson_r: _Optional[_Iterable[float]] = ..., rmse: _Optional[_Iterable[float]] = ..., accuracy: _Optional[float] = ..., balanced_accuracy: _Optional[float] = ..., chance: _Optional[float] = ..., classes: _Optional[_Iterable[int]] = ..., confusion: _Optional[_Iterable[int]] = ..., fold_scores: _Optional[_Iterable[float]] = ..., n_tested: _Optional[int] = ...) -> None: ...

class TrainResult(_message.Message):
    __slots__ = ("model", "scores", "shuffled_scores", "time_resolved_times_s", "time_resolved_scores", "predictions", "report", "figure")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    SHUFFLED_SCORES_FIELD_NUMBER: _ClassVar[int]
    TIME_RESOLVED_TIMES_S_FIELD_NUMBER: _ClassVar[int]
    TIME_RESOLVED_SCORES_FIELD_NUMBER: _ClassVar[int]
    PREDICTIONS_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    FIGURE_FIELD_NUMBER: _ClassVar[int]
    model: _artifact_pb2.ArtifactRef
    scores: EvaluationScores
    shuffled_scores: _containers.RepeatedScalarFieldContainer[float]
    time_resolved_times_s: _containers.RepeatedScalarFieldContainer[float]
    time_resolved_scores: _containers.RepeatedScalarFieldContainer[float]
    predictions: _artifact_pb2.ArtifactRef
    report: _artifact_pb2.ArtifactRef
    figure: _artifact_pb2.ArtifactRef
    def __init__(self, model: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., scores: _Optional[_Union[EvaluationScores, _Mapping]] = ..., shuffled_scores: _Optional[_Iterable[float]] = ..., time_resolved_times_s: _Optional[_Iterable[float]] = ..., time_resolved_scores: _Optional[_Iterable[float]] = ..., predictions: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., report: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., figure: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ...) -> None: ...

class TrainResponse(_message.Message):
    __slots__ = ("progress", "result")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    progress: _progress_pb2.Progress
    result: TrainResult
    def __init__(self, progress: _Optional[_Union[_progress_pb2.Progress, _Mapping]] = ..., result: _Optional[_Union[TrainResult, _Mapping]] = ...) -> None: ...

class PredictRequest(_message.Message):
    __slots__ = ("model", "features")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    model: _artifact_pb2.ArtifactRef
    features: _artifact_pb2.ArtifactRef
    def __init__(self, model: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., features: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ...) -> None: ...

class PredictResponse(_message.Message):
    __slots__ = ("predictions", "probabilities")
    PREDICTIONS_FIELD_NUMBER: _ClassVar[int]
    PROBABILITIES_FIELD_NUMBER: _ClassVar[int]
    predictions: _artifact_pb2.ArtifactRef
    probabilities: _artifact_pb2.ArtifactRef
    def __init__(self, predictions: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., probabilities: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ...) -> None: ...

class EvaluateRequest(_message.Message):
    __slots__ = ("model", "features", "targets")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    model: _artifact_pb2.ArtifactRef
    features: _artifact_pb2.ArtifactRef
    targets: _artifact_pb2.ArtifactRef
    def __init__(self, model: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., features: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., targets: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ...) -> None: ...

class EvaluateResponse(_message.Message):
    __slots__ = ("scores", "predictions", "figure")
    SCORES_FIELD_NUMBER: _ClassVar[int]
    PREDICTIONS_FIELD_NUMBER: _ClassVar[int]
    FIGURE_FIELD_NUMBER: _ClassVar[int]
    scores: EvaluationScores
    predictions: _artifact_pb2.ArtifactRef
    figure: _artifact_pb2.ArtifactRef
    def __init__(self, scores: _Optional[_Union[EvaluationScores, _Mapping]] = ..., predictions: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., figure: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ...) -> None: ...

class Representation(_message.Message):
    __slots__ = ("patterns", "metric")
    PATTERNS_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    patterns: _artifact_pb2.ArtifactRef
    metric: DissimilarityMetric
    def __init__(self, patterns: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., metric: _Optional[_Union[DissimilarityMetric, str]] = ...) -> None: ...

class CompareRepresentationsRequest(_message.Message):
    __slots__ = ("first", "second", "comparison", "n_permutations", "seed")
    FIRST_FIELD_NUMBER: _ClassVar[int]
    SECOND_FIELD_NUMBER: _ClassVar[int]
    COMPARISON_FIELD_NUMBER: _ClassVar[int]
    N_PERMUTATIONS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    first: Representation
    second: Representation
    comparison: RdmComparison
    n_permutations: int
    seed: int
    def __init__(self, first: _Optional[_Union[Representation, _Mapping]] = ..., second: _Optional[_Union[Representation, _Mapping]] = ..., comparison: _Optional[_Union[RdmComparison, str]] = ..., n_permutations: _Optional[int] = ..., seed: _Optional[int] = ...) -> None: ...

class CompareRepresentationsResponse(_message.Message):
    __slots__ = ("first_rdm", "second_rdm", "statistic", "p_value", "n_permutations", "figure")
    FIRST_RDM_FIELD_NUMBER: _ClassVar[int]
    SECOND_RDM_FIELD_NUMBER: _ClassVar[int]
    STATISTIC_FIELD_NUMBER: _ClassVar[int]
    P_VALUE_FIELD_NUMBER: _ClassVar[int]
    N_PERMUTATIONS_FIELD_NUMBER: _ClassVar[int]
    FIGURE_FIELD_NUMBER: _ClassVar[int]
    first_rdm: _artifact_pb2.ArtifactRef
    second_rdm: _artifact_pb2.ArtifactRef
    statistic: float
    p_value: float
    n_permutations: int
    figure: _artifact_pb2.ArtifactRef
    def __init__(self, first_rdm: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., second_rdm: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., statistic: _Optional[float] = ..., p_value: _Optional[float] = ..., n_permutations: _Optional[int] = ..., figure: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ...) -> None: ...
