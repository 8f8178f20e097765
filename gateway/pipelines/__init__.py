"""Named pipelines: templates of jobs over the DAG engine, and the gateway's own gathering steps.

Scientists rarely run one analysis. A pipeline turns a few parameters and named input artifacts
into a whole job (:class:`~gateway.jobs.spec.JobSpec`), fan-out and fan-in included:

========================  ======================================================================
``recording-analysis``    spikes (arrays or NWB) + behaviour -> BinRecording -> [EpochTrials]
                          -> PCA (trajectories, condition averages) + behaviour and condition
                          decoders
``simulate-and-analyse``  a cortical column under several stimuli, runs x conditions Simulate
                          steps -> StackCounts -> PCA + a condition classifier
``em-to-connectome``      EM volume -> Segment -> ContactGraph (measures) [-> AnalyzeGraph]
``dmri-connectome``       DWI -> DiffusionConnectome in shards -> SumMatrices -> AnalyzeGraph
========================  ======================================================================

Where things are:

=============================  =================================================================
``base``                       :class:`Pipeline`, :class:`PipelineInput`, :class:`PipelineError`,
                               :func:`check_steps`
``local``                      local operations (``service="gateway"`` steps): the framework,
                               content-addressed outputs, :class:`GatewayMethodTable`
``operations``                 :data:`LOCAL_OPERATIONS`, the registry
``trials``, ``matrices``       the operations: ``StackCounts``, ``EpochTrials``; ``SumMatrices``
``executor``                   :class:`CompositeStepExecutor`: local steps here, the rest to gRPC
``recording_analysis`` ...     one module per pipeline
=============================  =================================================================

Using a pipeline
----------------
``PIPELINES[name]`` is a :class:`Pipeline`:

- ``pipeline.parse_params(params)`` -> the params model (defaults filled in), or
  :class:`PipelineError` (a ``JobSpecError``: INVALID_ARGUMENT / HTTP 400, every problem as
  ``(field, message)``, fields ``params.<name>`` and ``inputs.<name>``);
- ``pipeline.params_schema()`` -> JSON schema of the params; ``pipeline.describe()`` -> name,
  description, schema and inputs;
- ``pipeline.steps(params, inputs)`` -> the steps as JSON, exactly the ``steps`` of
  ``POST /v1/jobs`` (inputs as keys: ``{"spike_times": "sessions/s1/times"}`` or
  ``{"spike_times": {"key": ..., "sha256": ...}}``);
- ``pipeline.build(params, inputs, tenant=..., idempotency_key=..., methods=...)`` -> a
  :class:`~gateway.jobs.spec.JobSpec` when every input carries its sha256.

An HTTP route ``POST /v1/pipelines/{name}/jobs`` with body ``{"params": {...}, "inputs": {...}}``
is then: ``steps = PIPELINES[name].steps(body.params, body.inputs)``, and the job request
``{"steps": steps}`` goes through job submission as any other, with
``GatewayMethodTable(method_table)`` as the method table so the ``gateway`` steps are checked too;
the runner's executor is ``CompositeStepExecutor(grpc_executor, store)``.

Example
-------
>>> sorted(PIPELINES)
['dmri-connectome', 'em-to-connectome', 'recording-analysis', 'simulate-and-analyse']
>>> steps = PIPELINES["em-to-connectome"].steps({"thresholds": [0.4, 0.6]}, {"raw": "volumes/fib25"})
>>> [(s["id"], s["service"], s["method"]) for s in steps]
[('segment', 'segmentation', 'Segment'), ('contacts', 'connectomics', 'ContactGraph')]
>>> steps[0]["inputs"]
{'raw.ref': {'artifact': {'key': 'volumes/fib25'}}}
"""

from __future__ import annotations

from gateway.pipelines.base import Pipeline, PipelineError, PipelineInput, check_steps
from gateway.pipelines.dmri_connectome import DMRI_CONNECTOME
from gateway.pipelines.em_to_connectome import EM_TO_CONNECTOME
from gateway.pipelines.executor import CompositeStepExecutor
from gateway.pipelines.local import (LOCAL_OPERATIONS_VERSION, LOCAL_SERVICE, GatewayMethodTable, LocalOperation,
                                     run_operation)
from gateway.pipelines.operations import LOCAL_OPERATIONS
from gateway.pipelines.recording_analysis import RECORDING_ANALYSIS
from gateway.pipelines.simulate_and_analyse import SIMULATE_AND_ANALYSE

PIPELINES: dict[str, Pipeline] = {p.name: p for p in (RECORDING_ANALYSIS, SIMULATE_AND_ANALYSE, EM_TO_CONNECTOME,
                                                      DMRI_CONNECTOME)}
"""Every named pipeline by name."""

__all__ = ["CompositeStepExecutor", "GatewayMethodTable", "LOCAL_OPERATIONS", "LOCAL_OPERATIONS_VERSION",
           "LOCAL_SERVICE", "LocalOperation", "PIPELINES", "Pipeline", "PipelineError", "PipelineInput",
           "check_steps", "run_operation"]
