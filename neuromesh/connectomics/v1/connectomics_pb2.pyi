from neuromesh.common.v1 import artifact_pb2 as _artifact_pb2
from neuromesh.common.v1 import progress_pb2 as _progress_pb2
from neuromesh.segmentation.v1 import segmentation_pb2 as _segmentation_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FibreModel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FIBRE_MODEL_UNSPECIFIED: _ClassVar[FibreModel]
    FIBRE_MODEL_CSD: _ClassVar[FibreModel]
    FIBRE_MODEL_CSA: _ClassVar[FibreModel]
    FIBRE_MODEL_DTI: _ClassVar[FibreModel]

class TrackingMethod(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRACKING_METHOD_UNSPECIFIED: _ClassVar[TrackingMethod]
    TRACKING_METHOD_DETERMINISTIC: _ClassVar[TrackingMethod]
    TRACKING_METHOD_PROBABILISTIC: _ClassVar[TrackingMethod]
FIBRE_MODEL_UNSPECIFIED: FibreModel
FIBRE_MODEL_CSD: FibreModel
FIBRE_MODEL_CSA: FibreModel
FIBRE_MODEL_DTI: FibreModel
TRACKING_METHOD_UNSPECIFIED: TrackingMethod
TRACKING_METHOD_DETERMINISTIC: TrackingMethod
TRACKING_METHOD_PROBABILISTIC: TrackingMethod

class GraphMeasuresOptions(_message.Message):
    __slots__ = ("measures", "n_random", "seed", "resolution", "skip")
    MEASURES_FIELD_NUMBER: _ClassVar[int]
    N_RANDOM_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    SKIP_FIELD_NUMBER: _ClassVar[int]
    measures: _containers.RepeatedScalarFieldContainer[str]
    n_random: int
    seed: int
    resolution: float
    skip: bool
    def __init__(self, measures: _Optional[_Iterable[str]] = ..., n_random: _Optional[int] = ..., seed: _Optional[int] = ..., resolution: _Optional[float] = ..., skip: _Optional[bool] = ...) -> None: ...

class GraphMeasures(_message.Message):
    __slots__ = ("n_nodes", "n_edges", "directed", "scalars", "node_table", "rich_club", "measures")
    class ScalarsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    N_NODES_FIELD_NUMBER: _ClassVar[int]
    N_EDGES_FIELD_NUMBER: _ClassVar[int]
    DIRECTED_FIELD_NUMBER: _ClassVar[int]
    SCALARS_FIELD_NUMBER: _ClassVar[int]
    NODE_TABLE_FIELD_NUMBER: _ClassVar[int]
    RICH_CLUB_FIELD_NUMBER: _ClassVar[int]
    MEASURES_FIELD_NUMBER: _ClassVar[int]
    n_nodes: int
    n_edges: int
    directed: bool
    scalars: _containers.ScalarMap[str, float]
    node_table: _artifact_pb2.ArtifactRef
    rich_club: _artifact_pb2.ArtifactRef
    measures: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, n_nodes: _Optional[int] = ..., n_edges: _Optional[int] = ..., directed: _Optional[bool] = ..., scalars: _Optional[_Mapping[str, float]] = ..., node_table: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., rich_club: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., measures: _Optional[_Iterable[str]] = ...) -> None: ...

class DiffusionConnectomeRequest(_message.Message):
    __slots__ = ("dwi", "bvals", "bvecs", "parcellation", "mask", "model", "tracking", "seeds_per_voxel", "seed_fa_threshold", "stop_fa_threshold", "step_size_mm", "max_angle_deg", "min_length_mm", "max_length_mm", "processes", "seed", "shard_index", "shard_count", "measures")
    DWI_FIELD_NUMBER: _ClassVar[int]
    BVALS_FIELD_NUMBER: _ClassVar[int]
    BVECS_FIELD_NUMBER: _ClassVar[int]
    PARCELLATION_FIELD_NUMBER: _ClassVar[int]
    MASK_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TRACKING_FIELD_NUMBER: _ClassVar[int]
    SEEDS_PER_VOXEL_FIELD_NUMBER: _ClassVar[int]
    SEED_FA_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    STOP_FA_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    STEP_SIZE_MM_FIELD_NUMBER: _ClassVar[int]
    MAX_ANGLE_DEG_FIELD_NUMBER: _ClassVar[int]
    MIN_LENGTH_MM_FIELD_NUMBER: _ClassVar[int]
    MAX_LENGTH_MM_FIELD_NUMBER: _ClassVar[int]
    PROCESSES_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    SHARD_INDEX_FIELD_NUMBER: _ClassVar[int]
    SHARD_COUNT_FIELD_NUMBER: _ClassVar[int]
    MEASURES_FIELD_NUMBER: _ClassVar[int]
    dwi: _artifact_pb2.ArtifactRef
    bvals: _artifact_pb2.ArtifactRef
    bvecs: _artifact_pb2.ArtifactRef
    parcellation: _artifact_pb2.ArtifactRef
    mask: _artifact_pb2.ArtifactRef
    model: FibreModel
    tracking: TrackingMethod
    seeds_per_voxel: int
    seed_fa_threshold: float
    stop_fa_threshold: float
    step_size_mm: float
    max_angle_deg: float
    min_length_mm: float
    max_length_mm: float
    processes: int
    seed: int
    shard_index: int
    shard_count: int
    measures: GraphMeasuresOptions
    def __init__(self, dwi: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., bvals: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., bvecs: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., parcellation: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., mask: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., model: _Optional[_Union[FibreModel, str]] = ..., tracking: _Optional[_Union[TrackingMethod, str]] = ..., seeds_per_voxel: _Optional[int] = ..., seed_fa_threshold: _Optional[float] = ..., stop_fa_threshold: _Optional[float] = ..., step_size_mm: _Optional[float] = ..., max_angle_deg: _Optional[float] = ..., min_length_mm: _Optional[float] = ..., max_length_mm: _Optional[float] = ..., processes: _Optional[int] = ..., seed: _Optional[int] = ..., shard_index: _Optional[int] = ..., shard_count: _Optional[int] = ..., measures: _Optional[_Union[GraphMeasuresOptions, _Mapping]] = ...) -> None: ...

class ConnectivityMatrix(_message.Message):
    __slots__ = ("normalization", "matrix", "edge_table")
    NORMALIZATION_FIELD_NUMBER: _ClassVar[int]
    MATRIX_FIELD_NUMBER: _ClassVar[int]
    EDGE_TABLE_FIELD_NUMBER: _ClassVar[int]
    normalization: str
    matrix: _artifact_pb2.ArtifactRef
    edge_table: _artifact_pb2.ArtifactRef
    def __init__(self, normalization: _Optional[str] = ..., matrix: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., edge_table: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ...) -> None: ...

class DiffusionConnectomeResult(_message.Message):
    __slots__ = ("fa", "md", "mask", "streamlines_trk", "streamlines_tck", "region_labels", "region_volumes", "matrices", "graphml", "heatmap", "fa_figure", "n_seeds", "n_streamlines", "n_filtered", "n_connecting", "tracking_seconds", "streamlines_per_second", "measures", "report")
    FA_FIELD_NUMBER: _ClassVar[int]
    MD_FIELD_NUMBER: _ClassVar[int]
    MASK_FIELD_NUMBER: _ClassVar[int]
    STREAMLINES_TRK_FIELD_NUMBER: _ClassVar[int]
    STREAMLINES_TCK_FIELD_NUMBER: _ClassVar[int]
    REGION_LABELS_FIELD_NUMBER: _ClassVar[int]
    REGION_VOLUMES_FIELD_NUMBER: _ClassVar[int]
    MATRICES_FIELD_NUMBER: _ClassVar[int]
    GRAPHML_FIELD_NUMBER: _ClassVar[int]
    HEATMAP_FIELD_NUMBER: _ClassVar[int]
    FA_FIGURE_FIELD_NUMBER: _ClassVar[int]
    N_SEEDS_FIELD_NUMBER: _ClassVar[int]
    N_STREAMLINES_FIELD_NUMBER: _ClassVar[int]
    N_FILTERED_FIELD_NUMBER: _ClassVar[int]
    N_CONNECTING_FIELD_NUMBER: _ClassVar[int]
    TRACKING_SECONDS_FIELD_NUMBER: _ClassVar[int]
    STREAMLINES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    MEASURES_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    fa: _artifact_pb2.ArtifactRef
    md: _artifact_pb2.ArtifactRef
    mask: _artifact_pb2.ArtifactRef
    streamlines_trk: _artifact_pb2.ArtifactRef
    streamlines_tck: _artifact_pb2.ArtifactRef
    region_labels: _artifact_pb2.ArtifactRef
    region_volumes: _artifact_pb2.ArtifactRef
    matrices: _containers.RepeatedCompositeFieldContainer[ConnectivityMatrix]
    graphml: _artifact_pb2.ArtifactRef
    heatmap: _artifact_pb2.ArtifactRef
    fa_figure: _artifact_pb2.ArtifactRef
    n_seeds: int
    n_streamlines: int
    n_filtered: int
    n_connecting: int
    tracking_seconds: float
    streamlines_per_second: float
    measures: GraphMeasures
    report: _artifact_pb2.ArtifactRef
    def __init__(self, fa: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., md: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., mask: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., streamlines_trk: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., streamlines_tck: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., region_labels: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., region_volumes: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., matrices: _Optional[_Iterable[_Union[ConnectivityMatrix, _Mapping]]] = ..., graphml: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., heatmap: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., fa_figure: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., n_seeds: _Optional[int] = ..., n_streamlines: _Optional[int] = ..., n_filtered: _Optional[int] = ..., n_connecting: _Optional[int] = ..., tracking_seconds: _Optional[float] = ..., streamlines_per_second: _Optional[float] = ..., measures: _Optional[_Union[GraphMeasures, _Mapping]] = ..., report: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ...) -> None: ...

class DiffusionConnectomeResponse(_message.Message):
    __slots__ = ("progress", "result")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    progress: _progress_pb2.Progress
    result: DiffusionConnectomeResult
    def __init__(self, progress: _Optional[_Union[_progress_pb2.Progress, _Mapping]] = ..., result: _Optional[_Union[DiffusionConnectomeResult, _Mapping]] = ...) -> None: ...

class ContactGraphRequest(_message.Message):
    __slots__ = ("segmentation", "voxel_size_nm", "block_shape", "min_contact_faces", "synapses", "measures")
    SEGMENTATION_FIELD_NUMBER: _ClassVar[int]
    VOXEL_SIZE_NM_FIELD_NUMBER: _ClassVar[int]
    BLOCK_SHAPE_FIELD_NUMBER: _ClassVar[int]
    MIN_CONTACT_FACES_FIELD_NUMBER: _ClassVar[int]
    SYNAPSES_FIELD_NUMBER: _ClassVar[int]
    MEASURES_FIELD_NUMBER: _ClassVar[int]
    segmentation: _segmentation_pb2.Volume
    voxel_size_nm: _containers.RepeatedScalarFieldContainer[float]
    block_shape: _containers.RepeatedScalarFieldContainer[int]
    min_contact_faces: int
    synapses: _artifact_pb2.ArtifactRef
    measures: GraphMeasuresOptions
    def __init__(self, segmentation: _Optional[_Union[_segmentation_pb2.Volume, _Mapping]] = ..., voxel_size_nm: _Optional[_Iterable[float]] = ..., block_shape: _Optional[_Iterable[int]] = ..., min_contact_faces: _Optional[int] = ..., synapses: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., measures: _Optional[_Union[GraphMeasuresOptions, _Mapping]] = ...) -> None: ...

class ContactGraphResult(_message.Message):
    __slots__ = ("node_table", "edge_table", "graphml", "n_nodes", "n_edges", "total_area_nm2", "measures", "synapse_edge_table", "synapse_graphml", "n_synapses", "n_synapse_edges", "synapse_measures", "heatmap", "report")
    NODE_TABLE_FIELD_NUMBER: _ClassVar[int]
    EDGE_TABLE_FIELD_NUMBER: _ClassVar[int]
    GRAPHML_FIELD_NUMBER: _ClassVar[int]
    N_NODES_FIELD_NUMBER: _ClassVar[int]
    N_EDGES_FIELD_NUMBER: _ClassVar[int]
    TOTAL_AREA_NM2_FIELD_NUMBER: _ClassVar[int]
    MEASURES_FIELD_NUMBER: _ClassVar[int]
    SYNAPSE_EDGE_TABLE_FIELD_NUMBER: _ClassVar[int]
    SYNAPSE_GRAPHML_FIELD_NUMBER: _ClassVar[int]
    N_SYNAPSES_FIELD_NUMBER: _ClassVar[int]
    N_SYNAPSE_EDGES_FIELD_NUMBER: _ClassVar[int]
    SYNAPSE_MEASURES_FIELD_NUMBER: _ClassVar[int]
    HEATMAP_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    node_table: _artifact_pb2.ArtifactRef
    edge_table: _artifact_pb2.ArtifactRef
    graphml: _artifact_pb2.ArtifactRef
    n_nodes: int
    n_edges: int
    total_area_nm2: float
    measures: GraphMeasures
    synapse_edge_table: _artifact_pb2.ArtifactRef
    synapse_graphml: _artifact_pb2.ArtifactRef
    n_synapses: int
    n_synapse_edges: int
    synapse_measures: GraphMeasures
    heatmap: _artifact_pb2.ArtifactRef
    report: _artifact_pb2.ArtifactRef
    def __init__(self, node_table: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., edge_table: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., graphml: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., n_nodes: _Optional[int] = ..., n_edges: _Optional[int] = ..., total_area_nm2: _Optional[float] = ..., measures: _Optional[_Union[GraphMeasures, _Mapping]] = ..., synapse_edge_table: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., synapse_graphml: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., n_synapses: _Optional[int] = ..., n_synapse_edges: _Optional[int] = ..., synapse_measures: _Optional[_Union[GraphMeasures, _Mapping]] = ..., heatmap: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., report: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ...) -> None: ...

class ContactGraphResponse(_message.Message):
    __slots__ = ("progress", "result")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    progress: _progress_pb2.Progress
    result: ContactGraphResult
    def __init__(self, progress: _Optional[_Union[_progress_pb2.Progress, _Mapping]] = ..., result: _Optional[_Union[ContactGraphResult, _Mapping]] = ...) -> None: ...

class SimulatedConnectomeRequest(_message.Message):
    __slots__ = ("spike_times", "spike_ids", "pre_ids", "post_ids", "weights", "population_table", "first_neuron", "last_neuron", "bin_ms", "start_ms", "duration_ms")
    SPIKE_TIMES_FIELD_NUMBER: _ClassVar[int]
    SPIKE_IDS_FIELD_NUMBER: _ClassVar[int]
    PRE_IDS_FIELD_NUMBER: _ClassVar[int]
    POST_IDS_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    POPULATION_TABLE_FIELD_NUMBER: _ClassVar[int]
    FIRST_NEURON_FIELD_NUMBER: _ClassVar[int]
    LAST_NEURON_FIELD_NUMBER: _ClassVar[int]
    BIN_MS_FIELD_NUMBER: _ClassVar[int]
    START_MS_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    spike_times: _artifact_pb2.ArtifactRef
    spike_ids: _artifact_pb2.ArtifactRef
    pre_ids: _artifact_pb2.ArtifactRef
    post_ids: _artifact_pb2.ArtifactRef
    weights: _artifact_pb2.ArtifactRef
    population_table: _artifact_pb2.ArtifactRef
    first_neuron: int
    last_neuron: int
    bin_ms: float
    start_ms: float
    duration_ms: float
    def __init__(self, spike_times: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., spike_ids: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., pre_ids: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., post_ids: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., weights: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., population_table: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., first_neuron: _Optional[int] = ..., last_neuron: _Optional[int] = ..., bin_ms: _Optional[float] = ..., start_ms: _Optional[float] = ..., duration_ms: _Optional[float] = ...) -> None: ...

class StructureFunctionAgreement(_message.Message):
    __slots__ = ("pearson_r", "spearman_rho", "connected_mean_correlation", "unconnected_mean_correlation", "n_pairs", "n_connected_pairs", "n_silent")
    PEARSON_R_FIELD_NUMBER: _ClassVar[int]
    SPEARMAN_RHO_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_MEAN_CORRELATION_FIELD_NUMBER: _ClassVar[int]
    UNCONNECTED_MEAN_CORRELATION_FIELD_NUMBER: _ClassVar[int]
    N_PAIRS_FIELD_NUMBER: _ClassVar[int]
    N_CONNECTED_PAIRS_FIELD_NUMBER: _ClassVar[int]
    N_SILENT_FIELD_NUMBER: _ClassVar[int]
    pearson_r: float
    spearman_rho: float
    connected_mean_correlation: float
    unconnected_mean_correlation: float
    n_pairs: int
    n_connected_pairs: int
    n_silent: int
    def __init__(self, pearson_r: _Optional[float] = ..., spearman_rho: _Optional[float] = ..., connected_mean_correlation: _Optional[float] = ..., unconnected_mean_correlation: _Optional[float] = ..., n_pairs: _Optional[int] = ..., n_connected_pairs: _Optional[int] = ..., n_silent: _Optional[int] = ...) -> None: ...

class SimulatedConnectomeResponse(_message.Message):
    __slots__ = ("structural", "functional", "population_structural", "population_functional", "populations", "agreement", "figure", "n_neurons", "n_bins", "report")
    STRUCTURAL_FIELD_NUMBER: _ClassVar[int]
    FUNCTIONAL_FIELD_NUMBER: _ClassVar[int]
    POPULATION_STRUCTURAL_FIELD_NUMBER: _ClassVar[int]
    POPULATION_FUNCTIONAL_FIELD_NUMBER: _ClassVar[int]
    POPULATIONS_FIELD_NUMBER: _ClassVar[int]
    AGREEMENT_FIELD_NUMBER: _ClassVar[int]
    FIGURE_FIELD_NUMBER: _ClassVar[int]
    N_NEURONS_FIELD_NUMBER: _ClassVar[int]
    N_BINS_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    structural: _artifact_pb2.ArtifactRef
    functional: _artifact_pb2.ArtifactRef
    population_structural: _artifact_pb2.ArtifactRef
    population_functional: _artifact_pb2.ArtifactRef
    populations: _containers.RepeatedScalarFieldContainer[str]
    agreement: StructureFunctionAgreement
    figure: _artifact_pb2.ArtifactRef
    n_neurons: int
    n_bins: int
    report: _artifact_pb2.ArtifactRef
    def __init__(self, structural: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., functional: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., population_structural: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., population_functional: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., populations: _Optional[_Iterable[str]] = ..., agreement: _Optional[_Union[StructureFunctionAgreement, _Mapping]] = ..., figure: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., n_neurons: _Optional[int] = ..., n_bins: _Optional[int] = ..., report: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ...) -> None: ...

class AnalyzeGraphRequest(_message.Message):
    __slots__ = ("edge_table", "matrix", "directed", "weight_column", "measures")
    EDGE_TABLE_FIELD_NUMBER: _ClassVar[int]
    MATRIX_FIELD_NUMBER: _ClassVar[int]
    DIRECTED_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_COLUMN_FIELD_NUMBER: _ClassVar[int]
    MEASURES_FIELD_NUMBER: _ClassVar[int]
    edge_table: _artifact_pb2.ArtifactRef
    matrix: _artifact_pb2.ArtifactRef
    directed: bool
    weight_column: str
    measures: GraphMeasuresOptions
    def __init__(self, edge_table: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., matrix: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., directed: _Optional[bool] = ..., weight_column: _Optional[str] = ..., measures: _Optional[_Union[GraphMeasuresOptions, _Mapping]] = ...) -> None: ...

class AnalyzeGraphResponse(_message.Message):
    __slots__ = ("measures", "graphml", "report")
    MEASURES_FIELD_NUMBER: _ClassVar[int]
    GRAPHML_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    measures: GraphMeasures
    graphml: _artifact_pb2.ArtifactRef
    report: _artifact_pb2.ArtifactRef
    def __init__(self, measures: _Optional[_Union[GraphMeasures, _Mapping]] = ..., graphml: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ..., report: _Optional[_Union[_artifact_pb2.ArtifactRef, _Mapping]] = ...) -> None: ...
