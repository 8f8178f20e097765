"""How many CPU threads a service computes with, and how many requests compute at once.

BLAS (OpenBLAS, MKL), OpenMP and torch each start a thread per core by default. Two requests
computing at once on a two-core machine then run four busy threads that evict each other's
caches and spin-wait, and both finish later than if they had run one after the other. So a
service fixes the thread count of every pool to ``NEUROMESH_COMPUTE_THREADS`` (default 1) for
the whole process, and admits ``cores // compute_threads`` requests to compute at a time; the
others wait for a slot (their calls stay open, and a cancelled waiting call leaves the queue).

Example
-------
>>> import asyncio
>>> limiter = ComputeLimiter(threads=1, cores=2)
>>> limiter.slots
2
>>> async def one():
...     async with limiter.slot():
...         return "computed"
>>> asyncio.run(one())
'computed'
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import AsyncIterator

import threadpoolctl

__all__ = ["ComputeLimiter", "available_cores"]


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, which containers' cpusets narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


class ComputeLimiter:
    """Process-wide thread counts plus an admission queue for compute-heavy requests."""

    def __init__(self, *, threads: int, cores: int | None = None, apply: bool = False) -> None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self.threads = threads
        self.slots = max(1, (cores or available_cores()) // threads)
        self._semaphore: asyncio.Semaphore | None = None
        if apply:
            self.apply()

    def apply(self) -> None:
        """Set every thread pool of this process (BLAS, OpenMP, torch) to ``threads``."""
        threadpoolctl.threadpool_limits(limits=self.threads)
        os.environ.setdefault("OMP_NUM_THREADS", str(self.threads))  # for pools started later
        try:
            import torch
        except ImportError:  # a service without torch
            return
        torch.set_num_threads(self.threads)
        with contextlib.suppress(RuntimeError):  # only settable before torch's first parallel op
            torch.set_num_interop_threads(self.threads)

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the compute slots for the duration of the block."""
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.slots)
        async with self._semaphore:
            yield
