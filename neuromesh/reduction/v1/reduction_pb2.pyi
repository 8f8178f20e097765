from google.protobuf import struct_pb2 as _struct_pb2
from neuromesh.common.v1 import artifact_pb2 as _artifact_pb2
from neuromesh.common.v1 import progress_pb2 as _progress_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

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
