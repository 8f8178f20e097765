from neuromesh.common.v1 import artifact_pb2 as _artifact_pb2
from neuromesh.common.v1 import progress_pb2 as _progress_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BoundaryTarget(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BOUNDARY_TARGET_UNSPECIFIED: _ClassVar[BoundaryTarget]
    BOUNDARY_TARGET_AFFINITIES: _ClassVar[BoundaryTarget]
    BOUNDARY_TARGET_BOUNDARIES: _ClassVar[BoundaryTarget]

class Normalization(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NORMALIZATION_UNSPECIFIED: _ClassVar[Normalization]
    NORMALIZATION_GROUP: _ClassVar[Normalization]
    NORMALIZATION_INSTANCE: _ClassVar[Normalization]

class Upsampling(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    UPSAMPLING_UNSPECIFIED: _ClassVar[Upsampling]
    UPSAMPLING_TRANSPOSED: _ClassVar[Upsampling]
    UPSAMPLING_TRILINEAR: _ClassVar[Upsampling]

class AffinityReduction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AFFINITY_REDUCTION_UNSPECIFIED: _ClassVar[AffinityReduction]
    AFFINITY_REDUCTION_MIN: _ClassVar[AffinityReduction]
    AFFINITY_REDUCTION_MEAN: _ClassVar[AffinityReduction]

class SegmentBlocksStage(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SEGMENT_BLOCKS_STAGE_UNSPECIFIED: _ClassVar[SegmentBlocksStage]
    SEGMENT_BLOCKS_STAGE_BOUNDARIES: _ClassVar[SegmentBlocksStage]
    SEGMENT_BLOCKS_STAGE_FRAGMENTS: _ClassVar[SegmentBlocksStage]
BOUNDARY_TARGET_UNSPECIFIED: BoundaryTarget
BOUNDARY_TARGET_AFFINITIES: BoundaryTarget
BOUNDARY_TARGET_BOUNDARIES: BoundaryTarget
NORMALIZATION_UNSPECIFIED: Normalization
NORMALIZATION_GROUP: Normalization
NORMALIZATION_INSTANCE: Normalization
UPSAMPLING_UNSPECIFIED: Upsampling
UPSAMPLING_TRANSPOSED: Upsampling
UPSAMPLING_TRILINEAR: Upsampling
AFFINITY_REDUCTION_UNSPECIFIED: AffinityReduction
AFFINITY_REDUCTION_MIN: AffinityReduction
AFFINITY_REDUCTION_MEAN: AffinityReduction
SEGMENT_BLOCKS_STAGE_UNSPECIFIED: SegmentBlocksStage
SEGMENT_BLOCKS_STAGE_BOUNDARIES: SegmentBlocksStage
SEGMENT_BLOCKS_STAGE_FRAGMENTS: SegmentBlocksStage

class Volume(_message.Message):
    __slots__ = ("ref", "dataset")
    REF_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    ref: _artifact_pb2.ArtifactRef
    dataset: str
    def __init__(self, ref: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., dataset: _Optional[str] = ...) -> None: ...

class Box(_message.Message):
    __slots__ = ("z_start", "z_stop", "y_start", "y_stop", "x_start", "x_stop")
    Z_START_FIELD_NUMBER: _ClassVar[int]
    Z_STOP_FIELD_NUMBER: _ClassVar[int]
    Y_START_FIELD_NUMBER: _ClassVar[int]
    Y_STOP_FIELD_NUMBER: _ClassVar[int]
    X_START_FIELD_NUMBER: _ClassVar[int]
    X_STOP_FIELD_NUMBER: _ClassVar[int]
    z_start: int
    z_stop: int
    y_start: int
    y_stop: int
    x_start: int
    x_stop: int
    def __init__(self, z_start: _Optional[int] = ..., z_stop: _Optional[int] = ..., y_start: _Optional[int] = ..., y_stop: _Optional[int] = ..., x_start: _Optional[int] = ..., x_stop: _Optional[int] = ...) -> None: ...

class UNetConfig(_message.Message):
    __slots__ = ("levels", "base_channels", "channel_multiplier", "anisotropic", "anisotropic_levels", "target", "norm", "upsampling")
    LEVELS_FIELD_NUMBER: _ClassVar[int]
    BASE_CHANNELS_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_MULTIPLIER_FIELD_NUMBER: _ClassVar[int]
    ANISOTROPIC_FIELD_NUMBER: _ClassVar[int]
    ANISOTROPIC_LEVELS_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    NORM_FIELD_NUMBER: _ClassVar[int]
    UPSAMPLING_FIELD_NUMBER: _ClassVar[int]
    levels: int
    base_channels: int
    channel_multiplier: float
    anisotropic: bool
    anisotropic_levels: int
    target: BoundaryTarget
    norm: Normalization
    upsampling: Upsampling
    def __init__(self, levels: _Optional[int] = ..., base_channels: _Optional[int] = ..., channel_multiplier: _Optional[float] = ..., anisotropic: _Optional[bool] = ..., anisotropic_levels: _Optional[int] = ..., target: _Optional[_Union[BoundaryTarget, str]] = ..., norm: _Optional[_Union[Normalization, str]] = ..., upsampling: _Optional[_Union[Upsampling, str]] = ...) -> None: ...

class TrainBoundaryModelRequest(_message.Message):
    __slots__ = ("raw", "labels", "train_region", "validation_region", "network", "iterations", "batch_size", "patch_shape", "learning_rate", "seed", "checkpoint_every", "no_augmentation")
    RAW_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    TRAIN_REGION_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_REGION_FIELD_NUMBER: _ClassVar[int]
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    ITERATIONS_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    PATCH_SHAPE_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_EVERY_FIELD_NUMBER: _ClassVar[int]
    NO_AUGMENTATION_FIELD_NUMBER: _ClassVar[int]
    raw: Volume
    labels: Volume
    train_region: Box
    validation_region: Box
    network: UNetConfig
    iterations: int
    batch_size: int
    patch_shape: _containers.RepeatedScalarFieldContainer[int]
    learning_rate: float
    seed: int
    checkpoint_every: int
    no_augmentation: bool
    def __init__(self, raw: _Optional[_Union[Volume, _Mapping]] = ..., labels: _Optional[_Union[Volume, _Mapping]] = ..., train_region: _Optional[_Union[Box, _Mapping]] = ..., validation_region: _Optional[_Union[Box, _Mapping]] = ..., network: _Optional[_Union[UNetConfig, _Mapping]] = ..., iterations: _Optional[int] = ..., batch_size: _Optional[int] = ..., patch_shape: _Optional[_Iterable[int]] = ..., learning_rate: _Optional[float] = ..., seed: _Optional[int] = ..., checkpoint_every: _Optional[int] = ..., no_augmentation: _Optional[bool] = ...) -> None: ...

class Checkpoint(_message.Message):
    __slots__ = ("iteration", "loss", "ref")
    ITERATION_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    REF_FIELD_NUMBER: _ClassVar[int]
    iteration: int
    loss: float
    ref: _artifact_pb2.ArtifactRef
    def __init__(self, iteration: _Optional[int] = ..., loss: _Optional[float] = ..., ref: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ...) -> None: ...

class TrainBoundaryModelResult(_message.Message):
    __slots__ = ("model", "checkpoints", "best_iteration", "final_loss", "validation_iterations", "validation_losses", "loss_curve", "patch_shape", "network", "device", "figure", "report")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINTS_FIELD_NUMBER: _ClassVar[int]
    BEST_ITERATION_FIELD_NUMBER: _ClassVar[int]
    FINAL_LOSS_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_ITERATIONS_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_LOSSES_FIELD_NUMBER: _ClassVar[int]
    LOSS_CURVE_FIELD_NUMBER: _ClassVar[int]
    PATCH_SHAPE_FIELD_NUMBER: _ClassVar[int]
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    FIGURE_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    model: _artifact_pb2.ArtifactRef
    checkpoints: _containers.RepeatedCompositeFieldContainer[Checkpoint]
    best_iteration: int
    final_loss: float
    validation_iterations: _containers.RepeatedScalarFieldContainer[int]
    validation_losses: _containers.RepeatedScalarFieldContainer[float]
    loss_curve: _artifact_pb2.ArtifactRef
    patch_shape: _containers.RepeatedScalarFieldContainer[int]
    network: UNetConfig
    device: str
    figure: _artifact_pb2.ArtifactRef
    report: _artifact_pb2.ArtifactRef
    def __init__(self, model: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., checkpoints: _Optional[_Iterable[_Union[Checkpoint, _Mapping]]] = ..., best_iteration: _Optional[int] = ..., final_loss: _Optional[float] = ..., validation_iterations: _Optional[_Iterable[int]] = ..., validation_losses: _Optional[_Iterable[float]] = ..., loss_curve: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., patch_shape: _Optional[_Iterable[int]] = ..., network: _Optional[_Union[UNetConfig, _Mapping]] = ..., device: _Optional[str] = ..., figure: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., report: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ...) -> None: ...

class TrainBoundaryModelResponse(_message.Message):
    __slots__ = ("progress", "result")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    progress: _progress_pb2.Progress
    result: TrainBoundaryModelResult
    def __init__(self, progress: _Optional[_Union[_progress_pb2.Progress, _Mapping]] = ..., result: _Optional[_Union[TrainBoundaryModelResult, _Mapping]] = ...) -> None: ...

class ClassicalBoundaries(_message.Message):
    __slots__ = ("sigma_nm", "bright_membranes")
    SIGMA_NM_FIELD_NUMBER: _ClassVar[int]
    BRIGHT_MEMBRANES_FIELD_NUMBER: _ClassVar[int]
    sigma_nm: float
    bright_membranes: bool
    def __init__(self, sigma_nm: _Optional[float] = ..., bright_membranes: _Optional[bool] = ...) -> None: ...

class WatershedOptions(_message.Message):
    __slots__ = ("boundary_threshold", "min_seed_distance", "per_section", "affinity_reduction", "max_seed_depth")
    BOUNDARY_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    MIN_SEED_DISTANCE_FIELD_NUMBER: _ClassVar[int]
    PER_SECTION_FIELD_NUMBER: _ClassVar[int]
    AFFINITY_REDUCTION_FIELD_NUMBER: _ClassVar[int]
    MAX_SEED_DEPTH_FIELD_NUMBER: _ClassVar[int]
    boundary_threshold: float
    min_seed_distance: int
    per_section: bool
    affinity_reduction: AffinityReduction
    max_seed_depth: float
    def __init__(self, boundary_threshold: _Optional[float] = ..., min_seed_distance: _Optional[int] = ..., per_section: _Optional[bool] = ..., affinity_reduction: _Optional[_Union[AffinityReduction, str]] = ..., max_seed_depth: _Optional[float] = ...) -> None: ...

class SegmentRequest(_message.Message):
    __slots__ = ("raw", "model", "classical", "voxel_size_nm", "block_shape", "halo", "thresholds", "min_segment_size", "ground_truth", "watershed", "patch_shape", "no_stitching")
    RAW_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    CLASSICAL_FIELD_NUMBER: _ClassVar[int]
    VOXEL_SIZE_NM_FIELD_NUMBER: _ClassVar[int]
    BLOCK_SHAPE_FIELD_NUMBER: _ClassVar[int]
    HALO_FIELD_NUMBER: _ClassVar[int]
    THRESHOLDS_FIELD_NUMBER: _ClassVar[int]
    MIN_SEGMENT_SIZE_FIELD_NUMBER: _ClassVar[int]
    GROUND_TRUTH_FIELD_NUMBER: _ClassVar[int]
    WATERSHED_FIELD_NUMBER: _ClassVar[int]
    PATCH_SHAPE_FIELD_NUMBER: _ClassVar[int]
    NO_STITCHING_FIELD_NUMBER: _ClassVar[int]
    raw: Volume
    model: _artifact_pb2.ArtifactRef
    classical: ClassicalBoundaries
    voxel_size_nm: _containers.RepeatedScalarFieldContainer[float]
    block_shape: _containers.RepeatedScalarFieldContainer[int]
    halo: _containers.RepeatedScalarFieldContainer[int]
    thresholds: _containers.RepeatedScalarFieldContainer[float]
    min_segment_size: int
    ground_truth: Volume
    watershed: WatershedOptions
    patch_shape: _containers.RepeatedScalarFieldContainer[int]
    no_stitching: bool
    def __init__(self, raw: _Optional[_Union[Volume, _Mapping]] = ..., model: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., classical: _Optional[_Union[ClassicalBoundaries, _Mapping]] = ..., voxel_size_nm: _Optional[_Iterable[float]] = ..., block_shape: _Optional[_Iterable[int]] = ..., halo: _Optional[_Iterable[int]] = ..., thresholds: _Optional[_Iterable[float]] = ..., min_segment_size: _Optional[int] = ..., ground_truth: _Optional[_Union[Volume, _Mapping]] = ..., watershed: _Optional[_Union[WatershedOptions, _Mapping]] = ..., patch_shape: _Optional[_Iterable[int]] = ..., no_stitching: _Optional[bool] = ...) -> None: ...

class SegmentationScores(_message.Message):
    __slots__ = ("voi_split", "voi_merge", "voi", "adapted_rand_error", "rand_precision", "rand_recall", "cremi_score", "n_voxels")
    VOI_SPLIT_FIELD_NUMBER: _ClassVar[int]
    VOI_MERGE_FIELD_NUMBER: _ClassVar[int]
    VOI_FIELD_NUMBER: _ClassVar[int]
    ADAPTED_RAND_ERROR_FIELD_NUMBER: _ClassVar[int]
    RAND_PRECISION_FIELD_NUMBER: _ClassVar[int]
    RAND_RECALL_FIELD_NUMBER: _ClassVar[int]
    CREMI_SCORE_FIELD_NUMBER: _ClassVar[int]
    N_VOXELS_FIELD_NUMBER: _ClassVar[int]
    voi_split: float
    voi_merge: float
    voi: float
    adapted_rand_error: float
    rand_precision: float
    rand_recall: float
    cremi_score: float
    n_voxels: int
    def __init__(self, voi_split: _Optional[float] = ..., voi_merge: _Optional[float] = ..., voi: _Optional[float] = ..., adapted_rand_error: _Optional[float] = ..., rand_precision: _Optional[float] = ..., rand_recall: _Optional[float] = ..., cremi_score: _Optional[float] = ..., n_voxels: _Optional[int] = ...) -> None: ...

class ThresholdSegmentation(_message.Message):
    __slots__ = ("threshold", "labels", "n_segments", "segment_table", "scores")
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    N_SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_TABLE_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    threshold: float
    labels: _artifact_pb2.ArtifactRef
    n_segments: int
    segment_table: _artifact_pb2.ArtifactRef
    scores: SegmentationScores
    def __init__(self, threshold: _Optional[float] = ..., labels: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., n_segments: _Optional[int] = ..., segment_table: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., scores: _Optional[_Union[SegmentationScores, _Mapping]] = ...) -> None: ...

class SegmentResult(_message.Message):
    __slots__ = ("fragments", "n_fragments", "affinities", "boundaries", "segmentations", "figure", "block_shape", "halo", "n_blocks", "device", "report")
    FRAGMENTS_FIELD_NUMBER: _ClassVar[int]
    N_FRAGMENTS_FIELD_NUMBER: _ClassVar[int]
    AFFINITIES_FIELD_NUMBER: _ClassVar[int]
    BOUNDARIES_FIELD_NUMBER: _ClassVar[int]
    SEGMENTATIONS_FIELD_NUMBER: _ClassVar[int]
    FIGURE_FIELD_NUMBER: _ClassVar[int]
    BLOCK_SHAPE_FIELD_NUMBER: _ClassVar[int]
    HALO_FIELD_NUMBER: _ClassVar[int]
    N_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    fragments: _artifact_pb2.ArtifactRef
    n_fragments: int
    affinities: _artifact_pb2.ArtifactRef
    boundaries: _artifact_pb2.ArtifactRef
    segmentations: _containers.RepeatedCompositeFieldContainer[ThresholdSegmentation]
    figure: _artifact_pb2.ArtifactRef
    block_shape: _containers.RepeatedScalarFieldContainer[int]
    halo: _containers.RepeatedScalarFieldContainer[int]
    n_blocks: int
    device: str
    report: _artifact_pb2.ArtifactRef
    def __init__(self, fragments: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., n_fragments: _Optional[int] = ..., affinities: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., boundaries: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., segmentations: _Optional[_Iterable[_Union[ThresholdSegmentation, _Mapping]]] = ..., figure: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., block_shape: _Optional[_Iterable[int]] = ..., halo: _Optional[_Iterable[int]] = ..., n_blocks: _Optional[int] = ..., device: _Optional[str] = ..., report: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ...) -> None: ...

class SegmentResponse(_message.Message):
    __slots__ = ("progress", "result")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    progress: _progress_pb2.Progress
    result: SegmentResult
    def __init__(self, progress: _Optional[_Union[_progress_pb2.Progress, _Mapping]] = ..., result: _Optional[_Union[SegmentResult, _Mapping]] = ...) -> None: ...

class SegmentBlocksRequest(_message.Message):
    __slots__ = ("segment", "stage", "block_indices", "block_boundaries")
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    BLOCK_INDICES_FIELD_NUMBER: _ClassVar[int]
    BLOCK_BOUNDARIES_FIELD_NUMBER: _ClassVar[int]
    segment: SegmentRequest
    stage: SegmentBlocksStage
    block_indices: _containers.RepeatedScalarFieldContainer[int]
    block_boundaries: _containers.RepeatedCompositeFieldContainer[_artifact_pb2.ArtifactRef]
    def __init__(self, segment: _Optional[_Union[SegmentRequest, _Mapping]] = ..., stage: _Optional[_Union[SegmentBlocksStage, str]] = ..., block_indices: _Optional[_Iterable[int]] = ..., block_boundaries: _Optional[_Iterable[_Union[_artifact_pb2.ArtifactRef, _Mapping]]] = ...) -> None: ...

class SegmentBlocksResult(_message.Message):
    __slots__ = ("stage", "block_indices", "boundaries", "fragments", "n_blocks", "block_shape", "halo", "stitching")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    BLOCK_INDICES_FIELD_NUMBER: _ClassVar[int]
    BOUNDARIES_FIELD_NUMBER: _ClassVar[int]
    FRAGMENTS_FIELD_NUMBER: _ClassVar[int]
    N_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    BLOCK_SHAPE_FIELD_NUMBER: _ClassVar[int]
    HALO_FIELD_NUMBER: _ClassVar[int]
    STITCHING_FIELD_NUMBER: _ClassVar[int]
    stage: SegmentBlocksStage
    block_indices: _containers.RepeatedScalarFieldContainer[int]
    boundaries: _containers.RepeatedCompositeFieldContainer[_artifact_pb2.ArtifactRef]
    fragments: _containers.RepeatedCompositeFieldContainer[_artifact_pb2.ArtifactRef]
    n_blocks: int
    block_shape: _containers.RepeatedScalarFieldContainer[int]
    halo: _containers.RepeatedScalarFieldContainer[int]
    stitching: _containers.RepeatedCompositeFieldContainer[_artifact_pb2.ArtifactRef]
    def __init__(self, stage: _Optional[_Union[SegmentBlocksStage, str]] = ..., block_indices: _Optional[_Iterable[int]] = ..., boundaries: _Optional[_Iterable[_Union[_artifact_pb2.ArtifactRef, _Mapping]]] = ..., fragments: _Optional[_Iterable[_Union[_artifact_pb2.ArtifactRef, _Mapping]]] = ..., n_blocks: _Optional[int] = ..., block_shape: _Optional[_Iterable[int]] = ..., halo: _Optional[_Iterable[int]] = ..., stitching: _Optional[_Iterable[_Union[_artifact_pb2.ArtifactRef, _Mapping]]] = ...) -> None: ...

class SegmentBlocksResponse(_message.Message):
    __slots__ = ("progress", "result")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    progress: _progress_pb2.Progress
    result: SegmentBlocksResult
    def __init__(self, progress: _Optional[_Union[_progress_pb2.Progress, _Mapping]] = ..., result: _Optional[_Union[SegmentBlocksResult, _Mapping]] = ...) -> None: ...

class MergeSegmentBlocksRequest(_message.Message):
    __slots__ = ("segment", "block_boundaries", "block_fragments", "block_stitching")
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    BLOCK_BOUNDARIES_FIELD_NUMBER: _ClassVar[int]
    BLOCK_FRAGMENTS_FIELD_NUMBER: _ClassVar[int]
    BLOCK_STITCHING_FIELD_NUMBER: _ClassVar[int]
    segment: SegmentRequest
    block_boundaries: _containers.RepeatedCompositeFieldContainer[_artifact_pb2.ArtifactRef]
    block_fragments: _containers.RepeatedCompositeFieldContainer[_artifact_pb2.ArtifactRef]
    block_stitching: _containers.RepeatedCompositeFieldContainer[_artifact_pb2.ArtifactRef]
    def __init__(self, segment: _Optional[_Union[SegmentRequest, _Mapping]] = ..., block_boundaries: _Optional[_Iterable[_Union[_artifact_pb2.ArtifactRef, _Mapping]]] = ..., block_fragments: _Optional[_Iterable[_Union[_artifact_pb2.ArtifactRef, _Mapping]]] = ..., block_stitching: _Optional[_Iterable[_Union[_artifact_pb2.ArtifactRef, _Mapping]]] = ...) -> None: ...

class MergeSegmentBlocksResponse(_message.Message):
    __slots__ = ("progress", "result")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    progress: _progress_pb2.Progress
    result: SegmentResult
    def __init__(self, progress: _Optional[_Union[_progress_pb2.Progress, _Mapping]] = ..., result: _Optional[_Union[SegmentResult, _Mapping]] = ...) -> None: ...

class ScoreRequest(_message.Message):
    __slots__ = ("segmentation", "ground_truth")
    SEGMENTATION_FIELD_NUMBER: _ClassVar[int]
    GROUND_TRUTH_FIELD_NUMBER: _ClassVar[int]
    segmentation: Volume
    ground_truth: Volume
    def __init__(self, segmentation: _Optional[_Union[Volume, _Mapping]] = ..., ground_truth: _Optional[_Union[Volume, _Mapping]] = ...) -> None: ...

class ScoreResponse(_message.Message):
    __slots__ = ("scores",)
    SCORES_FIELD_NUMBER: _ClassVar[int]
    scores: SegmentationScores
    def __init__(self, scores: _Optional[_Union[SegmentationScores, _Mapping]] = ...) -> None: ...
