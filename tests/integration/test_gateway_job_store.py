"""Gateway processes sharing one job store: every step runs once, and a killed gateway's job is finished.

Each runner is a real OS process, ``python -m gateway.jobs.worker``, whose executor is
:class:`FileRecordingExecutor` below: it appends a line per execution start and end to a file
(one ``write`` on an ``O_APPEND`` descriptor, so lines from several processes never mix), which
is how the tests count executions across processes. Runs on PostgreSQL (a scratch database per
run) and on an SQLite file.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from gateway.jobs.database import Database
from gateway.jobs.scratch import PostgresUnavailable, scratch_postgres_database
from gateway.jobs.spec import parse_job_spec
from gateway.jobs.states import JobState, StepState
from gateway.jobs.store import JobStore
from neuromesh.stack.processes import ManagedProcess

pytestmark = pytest.mark.integration

POSTGRES_URL = os.environ.get("NEUROMESH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REPO = Path(__file__).resolve().parents[2]
LEASE_S = 1.5


class FileRecordingExecutor:
    """Appends ``start|done <job> <step> <owner>`` lines to ``$GATEWAY_TEST_RECORD``.

    ``$GATEWAY_TEST_STEP_S`` is how long a step takes; the step named by ``$GATEWAY_TEST_SLOW_STEP``
    takes ``$GATEWAY_TEST_SLOW_S`` instead (the one a test kills its runner in).
    """

    def __init__(self) -> None:
        self.path = os.environ["GATEWAY_TEST_RECORD"]
        self.owner = os.environ["GATEWAY_TEST_OWNER"]
        self.step_s = float(os.environ.get("GATEWAY_TEST_STEP_S", "0"))
        self.slow_step = os.environ.get("GATEWAY_TEST_SLOW_STEP", "")
        self.slow_s = float(os.environ.get("GATEWAY_TEST_SLOW_S", "0"))

    def _record(self, event: str, step) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{event} {step.job_id} {step.step_id} {self.owner}\n".encode())
        finally:
            os.close(fd)

    async def service_version(self, service: str) -> str:
        return "1.0.0"

    async def execute(self, step, resolved_inputs, progress, cancel_event):
        self._record("start", step)
        duration = self.slow_s if step.step_id == self.slow_step else self.step_s
        try:
            await asyncio.wait_for(cancel_event.wait(), duration)
            raise asyncio.CancelledError
        except asyncio.TimeoutError:
            pass
        self._record("done", step)
        content = json.dumps([step.step_id, step.params, sorted(v.sha256 for v in resolved_inputs.values())])
        digest = hashlib.sha256(content.encode()).hexdigest()
        return {"out": {"key": f"jobs/{step.job_id}/{step.step_id}", "sha256": digest}}


@pytest.fixture(scope="module")
def postgres_url():
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(scratch_postgres_database(POSTGRES_URL, prefix="neuromesh_test_gateway_mp"))
        except PostgresUnavailable as exc:
            unreachable = str(exc)
        else:
            unreachable = None
        if unreachable:
            pytest.fail(f"{unreachable}\nThese tests need a PostgreSQL server (CI runs one); "
                        "start it or point NEUROMESH_TEST_POSTGRES_URL at one.", pytrace=False)
        yield url


@pytest.fixture(params=["postgresql", "sqlite"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'jobs.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    db = Database(url)
    db.drop_all()
    db.create_all()
    db.close()
    return url


@pytest.fixture
def store(database_url):
    db = Database(database_url)
    yield JobStore(db)
    db.close()


@pytest.fixture
def workers(tmp_path, database_url):
    """Start worker processes; every one still running at the end is stopped (SIGTERM, then SIGKILL)."""
    started: list[ManagedProcess] = []
    record = tmp_path / "executions.log"

    def start(owner: str, **env: str) -> ManagedProcess:
        process = ManagedProcess(
            owner, [sys.executable, "-m", "gateway.jobs.worker", "--executor",
                    "test_gateway_job_store:FileRecordingExecutor", "--owner-id", owner, "--log-format", "text"],
            env={"PYTHONPATH": os.pathsep.join([str(REPO / "tests" / "integration"), str(REPO)]),
                 "NEUROMESH_GATEWAY_DATABASE_URL": database_url, "NEUROMESH_GATEWAY_LEASE_S": str(LEASE_S),
                 "NEUROMESH_GATEWAY_POLL_INTERVAL_S": "0.05", "NEUROMESH_GATEWAY_STEP_CONCURRENCY": "4",
                 "NEUROMESH_GATEWAY_DRAIN_S": "0", "GATEWAY_TEST_RECORD": str(record),
                 "GATEWAY_TEST_OWNER": owner, **env},
            log_path=tmp_path / f"{owner}.log", cwd=REPO)
        process.start()
        started.append(process)
        process.wait_healthy(lambda: "job worker started" in process.log_tail(100_000), timeout_s=60)
        return process

    start.record = record  # type: ignore[attr-defined]
    yield start
    for process in started:
        process.stop(timeout_s=10)


def executions(record: Path) -> tuple[Counter, Counter, Counter]:
    """(starts per step, completions per step, completions per owner) from the record file."""
    starts, done, by_owner = Counter(), Counter(), Counter()
    lines = record.read_text().splitlines() if record.exists() else []
    for line in lines:
        event, _job, step, owner = line.split()
        (starts if event == "start" else done)[step] += 1
        if event == "done":
            by_owner[owner] += 1
    return starts, done, by_owner


def wait_for(condition, processes, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        for p in processes:
            if not p.running:
                raise AssertionError(f"{p.name} exited while waiting for {what}; its log ends:\n{p.log_tail()}")
        time.sleep(0.05)
    logs = "\n".join(f"--- {p.name}:\n{p.log_tail()}" for p in processes)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}\n{logs}")


def fan_out_job(tenant: str, width: int):
    steps = [{"id": f"part-{i:02d}", "service": "simulation", "method": "Simulate", "params": {"seed": i},
              "inputs": {"network": {"artifact": {"key": "networks/column.json", "sha256": "c" * 64}}}}
             for i in range(width)]
    steps.append({"id": "merge", "service": "reduction", "method": "FitPCA",
                  "inputs": {f"p{i}": {"step": f"part-{i:02d}", "output": "out"} for i in range(width)}})
    return parse_job_spec({"tenant": tenant, "steps": steps})


@pytest.mark.timeout(120)
def test_two_gateway_processes_run_each_step_of_a_shared_job_exactly_once(workers, store):
    # Three steps at a time each: one process alone would need 3 s, so both surely take part.
    first, second = (workers(name, GATEWAY_TEST_STEP_S="0.25", NEUROMESH_GATEWAY_STEP_CONCURRENCY="3")
                     for name in ("gateway-a", "gateway-b"))
    job = store.submit(fan_out_job("lab-a", width=36)).job

    done = wait_for(lambda: (j := store.get_job("lab-a", job.id)).state.terminal and j, [first, second],
                    timeout_s=60, what="the job to end")
    assert done.state == JobState.SUCCEEDED
    starts, completions, by_owner = executions(workers.record)
    expected = {s.step_id: 1 for s in done.steps}
    assert dict(starts) == expected and dict(completions) == expected      # each step ran exactly once
    assert by_owner["gateway-a"] > 0 and by_owner["gateway-b"] > 0          # both processes took part
    assert {s.lease_owner for s in done.steps} == {None}
    assert all(s.state == StepState.SUCCEEDED and s.attempts == 1 for s in done.steps)


@pytest.mark.timeout(120)
def test_a_gateway_killed_mid_step_leaves_its_job_to_a_new_one_without_rerunning_finished_steps(workers, store):
    # prepare -> slow -> report, with two quick side branches that finish before the kill.
    spec = parse_job_spec({"tenant": "lab-a", "steps": [
        {"id": "prepare", "service": "decoding", "method": "BinSpikes"},
        {"id": "side-1", "service": "decoding", "method": "BinSpikes", "params": {"bin_s": 0.01}},
        {"id": "side-2", "service": "decoding", "method": "BinSpikes", "params": {"bin_s": 0.02}},
        {"id": "slow", "service": "decoding", "method": "FitDecoder",
         "inputs": {"x": {"step": "prepare", "output": "out"}}},
        {"id": "report", "service": "decoding", "method": "Score", "inputs": {
            "model": {"step": "slow", "output": "out"}, "a": {"step": "side-1", "output": "out"},
            "b": {"step": "side-2", "output": "out"}}},
    ]})
    doomed = workers("gateway-doomed", GATEWAY_TEST_SLOW_STEP="slow", GATEWAY_TEST_SLOW_S="300")
    job = store.submit(spec).job

    def slow_running_and_others_done():
        j = store.get_job("lab-a", job.id)
        states = {s.step_id: s.state for s in j.steps}
        return (states["slow"] == StepState.RUNNING and executions(workers.record)[0]["slow"] == 1
                and all(states[s] == StepState.SUCCEEDED for s in ("prepare", "side-1", "side-2")))

    wait_for(slow_running_and_others_done, [doomed], timeout_s=60, what="the slow step to run")
    os.killpg(doomed.pid, signal.SIGKILL)                                     # no drain, no release
    doomed.popen.wait(timeout=10)
    held = store.get_job("lab-a", job.id).step("slow")
    assert held.state == StepState.RUNNING and held.lease_owner == "gateway-doomed"

    rescuer = workers("gateway-rescuer", GATEWAY_TEST_SLOW_STEP="slow", GATEWAY_TEST_SLOW_S="0")
    done = wait_for(lambda: (j := store.get_job("lab-a", job.id)).state.terminal and j, [rescuer],
                    timeout_s=60, what="the job to end")
    assert done.state == JobState.SUCCEEDED
    starts, completions, by_owner = executions(workers.record)
    assert dict(starts) == {"prepare": 1, "side-1": 1, "side-2": 1, "slow": 2, "report": 1}
    assert dict(completions) == {"prepare": 1, "side-1": 1, "side-2": 1, "slow": 1, "report": 1}
    assert by_owner == {"gateway-doomed": 3, "gateway-rescuer": 2}
    assert done.step("slow").attempts == 2 and done.step("prepare").attempts == 1
