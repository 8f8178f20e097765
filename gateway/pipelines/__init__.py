"""The gateway's own steps (``service="gateway"``), and the executor that runs them beside the services.

=============================  =================================================================
``local``                      local operations: the framework, content-addressed outputs,
                               :class:`GatewayMethodTable` for job submission
``operations``                 :data:`LOCAL_OPERATIONS`, the registry
``trials``, ``matrices``       the operations: ``StackCounts``, ``EpochTrials``; ``SumMatrices``
``executor``                   :class:`CompositeStepExecutor`: local steps here, the rest to gRPC
=============================  =================================================================

Example
-------
>>> sorted(LOCAL_OPERATIONS)
['EpochTrials', 'StackCounts', 'SumMatrices']
"""

from __future__ import annotations

from gateway.pipelines.executor import CompositeStepExecutor
from gateway.pipelines.local import (LOCAL_OPERATIONS_VERSION, LOCAL_SERVICE, GatewayMethodTable, LocalOperation,
                                     run_operation)
from gateway.pipelines.operations import LOCAL_OPERATIONS

__all__ = ["CompositeStepExecutor", "GatewayMethodTable", "LOCAL_OPERATIONS", "LOCAL_OPERATIONS_VERSION",
           "LOCAL_SERVICE", "LocalOperation", "run_operation"]
