"""The registry of the gateway's local operations (steps with ``service="gateway"``).

====================  ==========================================================================
``StackCounts``       runs of a sweep (``runs.<k>``: binned counts) -> (trials, time, neurons)
                      with condition labels, and the flat samples decoding takes
``EpochTrials``       a binned recording -> trials of equal length, by ``trial_index`` or by
                      ``trial_starts``, with the same outputs as ``StackCounts``
``SumMatrices``       ``matrices.<k>`` -> their sum, with checked shared region labels
====================  ==========================================================================

Example
-------
>>> sorted(LOCAL_OPERATIONS)
['EpochTrials', 'StackCounts', 'SumMatrices']
>>> LOCAL_OPERATIONS["StackCounts"].input_paths()
['runs.0']
"""

from __future__ import annotations

from gateway.pipelines.local import LocalOperation
from gateway.pipelines.matrices import SUM_MATRICES
from gateway.pipelines.trials import EPOCH_TRIALS, STACK_COUNTS

LOCAL_OPERATIONS: dict[str, LocalOperation] = {op.method: op for op in (STACK_COUNTS, EPOCH_TRIALS, SUM_MATRICES)}
