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

__all__ = ["ComputeLimiter", "available_cores", "cgroup_cpu_limit"]


def cgroup_cpu_limit(path: str = "/sys/fs/cgroup/cpu.max") -> float | None:
    """The CPU quota of this process's cgroup (v2) in cores, or None when it has none.

    A Kubernetes CPU limit (or ``docker run --cpus``) is a quota, not an affinity: the process
    still sees every core of the node, but gets only ``quota / period`` of them.

    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "cpu.max"
    >>> _ = f.write_text("150000 100000"); cgroup_cpu_limit(str(f))
    1.5
    >>> _ = f.write_text("max 100000"); cgroup_cpu_limit(str(f)) is None
    True
    """
    try:
        quota, period = open(path).read().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    try:
        return int(quota) / int(period)
    except (ValueError, ZeroDivisionError):
        return None


def available_cores() -> int:
    """Cores this process may use: its CPU affinity (which cpusets narrow), capped by its cgroup's
    CPU quota (a container's CPU limit), at least 1."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cores = os.cpu_count() or 1
    limit = cgroup_cpu_limit()
    if limit is not None:
        cores = min(cores, max(1, int(limit)))    # 1.5 cores of quota compute one request at a time
    return cores


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
