from neuromesh.common.v1 import artifact_pb2 as _artifact_pb2
from neuromesh.common.v1 import progress_pb2 as _progress_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Decoder(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DECODER_UNSPECIFIED: _ClassVar[Decoder]
    DECODER_WIENER: _ClassVar[Decoder]
DECODER_UNSPECIFIED: Decoder
DECODER_WIENER: Decoder

class BinSpikesRequest(_message.Message):
    __slots__ = ("spike_times", "spike_units", "bin_width_s", "start_s", "stop_s", "n_units")
    SPIKE_TIMES_FIELD_NUMBER: _ClassVar[int]
    SPIKE_UNITS_FIELD_NUMBER: _ClassVar[int]
    BIN_WIDTH_S_FIELD_NUMBER: _ClassVar[int]
    START_S_FIELD_NUMBER: _ClassVar[int]
    STOP_S_FIELD_NUMBER: _ClassVar[int]
    N_UNITS_FIELD_NUMBER: _ClassVar[int]
    spike_times: _artifact_pb2.ArtifactRef
    spike_units: _artifact_pb2.ArtifactRef
    bin_width_s: float
    start_s: float
    stop_s: float
    n_units: int
    def __init__(self, spike_times: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., spike_units: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., bin_width_s: _Optional[float] = ..., start_s: _Optional[float] = ..., stop_s: _Optional[float] = ..., n_units: _Optional[int] = ...) -> None: ...

class BinSpikesResponse(_message.Message):
    __slots__ = ("counts", "n_bins")
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    N_BINS_FIELD_NUMBER: _ClassVar[int]
    counts: _artifact_pb2.ArtifactRef
    n_bins: int
    def __init__(self, counts: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., n_bins: _Optional[int] = ...) -> None: ...

class CrossValidateRequest(_message.Message):
    __slots__ = ("features", "targets", "decoder", "history_bins", "future_bins", "n_folds", "gap_bins", "alphas")
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    DECODER_FIELD_NUMBER: _ClassVar[int]
    HISTORY_BINS_FIELD_NUMBER: _ClassVar[int]
    FUTURE_BINS_FIELD_NUMBER: _ClassVar[int]
    N_FOLDS_FIELD_NUMBER: _ClassVar[int]
    GAP_BINS_FIELD_NUMBER: _ClassVar[int]
    ALPHAS_FIELD_NUMBER: _ClassVar[int]
    features: _artifact_pb2.ArtifactRef
    targets: _artifact_pb2.ArtifactRef
    decoder: Decoder
    history_bins: int
    future_bins: int
    n_folds: int
    gap_bins: int
    alphas: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, features: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., targets: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., decoder: _Optional[_Union[Decoder, str]] = ..., history_bins: _Optional[int] = ..., future_bins: _Optional[int] = ..., n_folds: _Optional[int] = ..., gap_bins: _Optional[int] = ..., alphas: _Optional[_Iterable[float]] = ...) -> None: ...

class CrossValidateResult(_message.Message):
    __slots__ = ("r2", "pearson_r", "rmse", "fold_alphas", "predictions")
    R2_FIELD_NUMBER: _ClassVar[int]
    PEARSON_R_FIELD_NUMBER: _ClassVar[int]
    RMSE_FIELD_NUMBER: _ClassVar[int]
    FOLD_ALPHAS_FIELD_NUMBER: _ClassVar[int]
    PREDICTIONS_FIELD_NUMBER: _ClassVar[int]
    r2: _containers.RepeatedScalarFieldContainer[float]
    pearson_r: _containers.RepeatedScalarFieldContainer[float]
    rmse: _containers.RepeatedScalarFieldContainer[float]
    fold_alphas: _containers.RepeatedScalarFieldContainer[float]
    predictions: _artifact_pb2.ArtifactRef
    def __init__(self, r2: _Optional[_Iterable[float]] = ..., pearson_r: _Optional[_Iterable[float]] = ..., rmse: _Optional[_Iterable[float]] = ..., fold_alphas: _Optional[_Iterable[float]] = ..., predictions: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ...) -> None: ...

class CrossValidateResponse(_message.Message):
    __slots__ = ("progress", "result")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    progress: _progress_pb2.Progress
    result: CrossValidateResult
    def __init__(self, progress: _Optional[_Union[_progress_pb2.Progress, _Mapping]] = ..., result: _Optional[_Union[CrossValidateResult, _Mapping]] = ...) -> None: ...
