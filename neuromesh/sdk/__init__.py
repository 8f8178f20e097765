"""The NeuroMesh Python SDK: the services as a scientific-Python library.

``from neuromesh.client import Client`` (or ``from neuromesh.sdk import Client``) gives one object
for the five services and the object store they share. Methods take NumPy arrays, NWB, TIFF and
NIfTI paths and CSV tables, upload them under content-addressed keys, call the service, and
return results whose arrays, tables and figures download on demand. Long calls draw a progress
bar and stop on the server when Ctrl-C stops them here. Failures raise :class:`NeuroMeshError`
subclasses that name the request field at fault.

================  ===========================================================================
module            what is there
================  ===========================================================================
``client``        :class:`Client`: endpoints, ``Client.local()``, ``Client.from_env()``
``decoding``      ``client.decoding``: bin_recording, train, predict, evaluate, compare_representations
``reduction``     ``client.reduction``: fit, transform, score, infer_circuit, find_fixed_points,
                  compare_learning_rules
``simulation``    ``client.simulation``: simulate, estimate_memory, bayesian_observer,
                  train_predictive_coding; network builders
``segmentation``  ``client.segmentation``: train_boundary_model, segment, segment_blocks,
                  merge_segment_blocks, score
``connectomics``  ``client.connectomics``: diffusion_connectome, contact_graph,
                  simulated_connectome, analyze_graph
``results``       :class:`Result`, :class:`Section`, :class:`Artifact`: lazy access to outputs
``artifacts``     :class:`Artifacts`: content-addressed uploads, checked downloads
``gateway``       :class:`GatewayClient`: the gateway's HTTP API (uploads, pipelines, jobs, downloads)
``requests``      requests built from keyword arguments named as proto fields
``connection``    channels, deadlines, :class:`RetryPolicy`, TLS, the call loop with cancellation
``progress``      progress bars (tqdm) and callbacks
``errors``        :class:`NeuroMeshError` and one subclass per gRPC status
================  ===========================================================================

Example
-------
>>> from neuromesh.sdk import Client, vogels_abbott
>>> with Client.local() as client:                                           # doctest: +SKIP
...     run = client.simulation.simulate(vogels_abbott("coba", n_neurons=4000), duration_ms=1000.0)
...     pca = client.reduction.fit(run, method="pca", params={"n_components": 3})
...     pca.scores.explained_variance_ratio
"""

from .artifacts import Artifacts, UploadStats
from .client import Client, default_endpoints, find_state_dir
from .connection import Deadlines, RetryPolicy, TlsConfig
from .connectomics import (ConnectomicsClient, ContactGraphResult, DiffusionConnectomeResult, GraphAnalysis,
                           SimulatedConnectomeResult, measures_options)
from .decoding import (BinnedRecording, DecodingClient, EvaluateResult, PredictResult, RepresentationComparison,
                       TrainResult)
from .errors import (Aborted, AlreadyExists, Cancelled, DataLoss, DeadlineExceeded, FailedPrecondition, Internal,
                     InvalidArgument, NeuroMeshError, NotFound, OutOfRange, PermissionDenied, ResourceExhausted,
                     Unauthenticated, Unavailable, Unimplemented)
from .gateway import GatewayClient, GatewayError, GatewayUnreachable
from .progress import ProgressEvent
from .reduction import (CircuitInference, FitResult, FixedPointSearch, LearningRuleComparison, ReductionClient,
                        ReductionScoreResult, TransformResult)
from .results import Artifact, Result, Section
from .segmentation import (BoundaryModel, SegmentationClient, SegmentationScoreResult, SegmentBlocksResult,
                           SegmentResult, ThresholdSegmentation)
from .simulation import (BayesianObserverResult, MemoryEstimate, PredictiveCodingResult, SimulationClient,
                         SimulationResult, cortical_column, network_message, vogels_abbott)

__all__ = [
    "Aborted", "AlreadyExists", "Artifact", "Artifacts", "BayesianObserverResult", "BinnedRecording", "BoundaryModel",
    "Cancelled", "CircuitInference", "Client", "FixedPointSearch", "LearningRuleComparison", "PredictiveCodingResult",
    "ConnectomicsClient", "ContactGraphResult", "DataLoss", "DeadlineExceeded", "Deadlines", "DecodingClient",
    "DiffusionConnectomeResult", "EvaluateResult", "FailedPrecondition", "FitResult", "GatewayClient", "GatewayError",
    "GatewayUnreachable", "GraphAnalysis", "Internal",
    "InvalidArgument", "MemoryEstimate", "NeuroMeshError", "NotFound", "OutOfRange", "PermissionDenied",
    "PredictResult", "ProgressEvent", "ReductionClient", "ReductionScoreResult", "RepresentationComparison",
    "ResourceExhausted", "Result", "RetryPolicy", "Section", "SegmentBlocksResult", "SegmentResult", "SegmentationClient",
    "SegmentationScoreResult", "SimulatedConnectomeResult", "SimulationClient", "SimulationResult",
    "ThresholdSegmentation", "TlsConfig", "TrainResult", "TransformResult", "Unauthenticated", "Unavailable",
    "Unimplemented", "UploadStats", "cortical_column", "default_endpoints", "find_state_dir", "measures_options",
    "network_message", "vogels_abbott",
]
