"""The compute limiter: thread pools fixed process-wide, requests admitted per free slot."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from services.common.compute import ComputeLimiter


def test_slots_are_cores_divided_by_threads():
    assert ComputeLimiter(threads=1, cores=8).slots == 8
    assert ComputeLimiter(threads=3, cores=8).slots == 2
    assert ComputeLimiter(threads=16, cores=8).slots == 1
    with pytest.raises(ValueError, match="threads must be >= 1"):
        ComputeLimiter(threads=0)


def test_no_more_requests_compute_at_once_than_there_are_slots():
    limiter = ComputeLimiter(threads=1, cores=2)
    running, peak = 0, 0

    async def request():
        nonlocal running, peak
        async with limiter.slot():
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.01)
            running -= 1

    async def many():
        await asyncio.gather(*(request() for _ in range(10)))

    asyncio.run(many())
    assert peak == 2


def test_apply_sets_blas_and_torch_threads_in_a_fresh_process():
    code = ("import threadpoolctl, torch\n"
            "from services.common.compute import ComputeLimiter\n"
            "ComputeLimiter(threads=1, cores=4, apply=True)\n"
            "blas = [p['num_threads'] for p in threadpoolctl.threadpool_info() if p['user_api'] == 'blas']\n"
            "print(sorted(set(blas)), torch.get_num_threads())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["[1]", "1"]
