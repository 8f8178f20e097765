"""The step executor of jobs with local steps: ``service="gateway"`` here, everything else delegated.

:class:`CompositeStepExecutor` is a :class:`~gateway.jobs.executor.StepExecutor` around another
(in the gateway, the :class:`~gateway.calls.executor.GrpcStepExecutor`):

- ``service_version("gateway")`` is :data:`~gateway.pipelines.local.LOCAL_OPERATIONS_VERSION`
  (part of every local step's cache key); other services are asked through the delegate;
- ``execute`` of a ``gateway`` step runs the local operation in a worker thread (at most
  ``local_concurrency`` at once: they are CPU and memory work inside the gateway process),
  reading and writing artifacts through the :class:`~services.common.store.ArtifactStore` under
  content-addressed keys; progress goes to the runner, the cancel event stops the operation at
  its next read or write; errors become :class:`~gateway.jobs.errors.StepError` with the code
  of the problem (INVALID_ARGUMENT for inputs that do not fit, NOT_FOUND, DATA_LOSS,
  RESOURCE_EXHAUSTED, UNAVAILABLE when the store is away, which the runner retries);
- every other step goes to the delegate unchanged.

Example
-------
>>> import asyncio
>>> class Services:                      # stands in for the GrpcStepExecutor here
...     async def service_version(self, service):
...         return "0.1.0"
>>> executor = CompositeStepExecutor(Services(), store=None)
>>> asyncio.run(executor.service_version("gateway")), asyncio.run(executor.service_version("reduction"))
('gateway-local-1', '0.1.0')

In the gateway (see :mod:`gateway.calls.executor` for the delegate)::

    grpc = GrpcStepExecutor(MethodTable.from_generated(), endpoints, store)
    runner = JobRunner(job_store, CompositeStepExecutor(grpc, store), concurrency=8)
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from gateway.jobs.errors import StepError
from gateway.jobs.executor import ProgressCallback, StepExecutor, StepInvocation
from gateway.jobs.spec import ArtifactRef as SpecRef
from gateway.pipelines.local import (DEFAULT_MAX_INPUT_BYTES, LOCAL_OPERATIONS_VERSION, LOCAL_SERVICE,
                                     LocalOperation, run_operation)
from services.common.store import ArtifactStore


class CompositeStepExecutor:
    """Runs ``service="gateway"`` steps itself and hands every other step to ``delegate``.

    Parameters
    ----------
    delegate : StepExecutor or None
        Executor of the services' steps (``GrpcStepExecutor``); None: only local steps run.
    store : ArtifactStore
        The bucket local operations read from and write to (the services' bucket).
    operations : mapping, optional
        Method -> :class:`LocalOperation`; by default every operation of
        :data:`~gateway.pipelines.operations.LOCAL_OPERATIONS`.
    local_concurrency : int
        Local operations computing at once; more wait for a slot.
    max_input_bytes : int
        The most one local operation reads into memory (RESOURCE_EXHAUSTED above it).
    """

    def __init__(self, delegate: StepExecutor | None, store: ArtifactStore | None, *,
                 operations: Mapping[str, LocalOperation] | None = None, local_concurrency: int = 2,
                 max_input_bytes: int = DEFAULT_MAX_INPUT_BYTES) -> None:
        if operations is None:
            from gateway.pipelines.operations import LOCAL_OPERATIONS
            operations = LOCAL_OPERATIONS
        if local_concurrency < 1:
            raise ValueError(f"local_concurrency must be at least 1, got {local_concurrency}")
        self.delegate = delegate
        self.store = store
        self.operations = dict(operations)
        self.local_concurrency = local_concurrency
        self.max_input_bytes = max_input_bytes
        self._slots: asyncio.Semaphore | None = None
        self.local_executions = 0
        """Local operations started (cache hits of the runner never get here)."""

    async def service_version(self, service: str) -> str:
        if service == LOCAL_SERVICE:
            return LOCAL_OPERATIONS_VERSION
        if self.delegate is None:
            raise StepError("FAILED_PRECONDITION", f"this executor runs only local steps, not {service!r}")
        return await self.delegate.service_version(service)

    async def execute(self, step: StepInvocation, resolved_inputs: Mapping[str, SpecRef],
                      progress: ProgressCallback, cancel_event: asyncio.Event) -> Mapping[str, Any]:
        if step.service != LOCAL_SERVICE:
            if self.delegate is None:
                raise StepError("FAILED_PRECONDITION", f"this executor runs only local steps, not {step.service!r}")
            return await self.delegate.execute(step, resolved_inputs, progress, cancel_event)
        operation = self.operations.get(step.method)
        if operation is None:
            raise StepError("INVALID_ARGUMENT", f"the gateway has no local operation {step.method!r}; its "
                                                f"operations: {', '.join(sorted(self.operations))}")
        if self.store is None:
            raise StepError("FAILED_PRECONDITION", "this executor has no artifact store for local operations")
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.local_concurrency)
        loop = asyncio.get_running_loop()

        def report(fraction: float, message: str) -> None:
            # called from the worker thread; the runner's callback belongs to the event loop
            loop.call_soon_threadsafe(progress, fraction, message)

        async with self._slots:
            if cancel_event.is_set():
                raise StepError("CANCELLED", "the step was cancelled before it started")
            self.local_executions += 1
            try:
                # The thread reads the event's flag only (a plain attribute), never waits on it.
                return await asyncio.to_thread(run_operation, operation, self.store, step.params, resolved_inputs,
                                               progress=report, cancelled=cancel_event.is_set,
                                               max_input_bytes=self.max_input_bytes)
            except StepError:
                raise
            except Exception as exc:
                raise StepError.from_exception(exc) from None

    async def close(self) -> None:
        close = getattr(self.delegate, "close", None)
        if close is not None:
            await close()

    def describe(self) -> dict[str, Any]:
        """The delegate's description (for ``/readyz``) with the local operations added."""
        describe = getattr(self.delegate, "describe", None)
        info = dict(describe()) if describe is not None else {}
        info["local_operations"] = {"version": LOCAL_OPERATIONS_VERSION, "methods": sorted(self.operations),
                                    "concurrency": self.local_concurrency}
        return info
