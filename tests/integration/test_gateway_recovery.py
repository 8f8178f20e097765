"""The gateway when things die: a gateway killed mid-job, a service replica killed mid-step, a cancel.

Real processes throughout (SeaweedFS, two simulation replicas, gateways), and the services'
own ``grpc_server_*`` metrics as the witness of what was called, how often, and how it ended.
"""

from __future__ import annotations

import json
import os
import signal
import sys

import pytest

from gateway.jobs.database import Database
from gateway.jobs.states import StepState
from gateway.jobs.store import JobStore
from neuromesh.stack.processes import ManagedProcess

from test_gateway_support import (calls, client, database_url, gateway_process, scrape, slow_simulation,
                                  start_services, started, wait_for)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def replicas(s3_server, module_bucket, tmp_path_factory):
    processes = start_services(s3_server, module_bucket, ["simulation", "simulation"],
                               tmp_path_factory.mktemp("gateway-recovery-services"))
    yield processes
    for p in processes:
        p.stop()


def quick_simulation(seed: int) -> dict:
    return {"duration_ms": 500, "network": {"vogels_abbott": {"kind": "VOGELS_ABBOTT_KIND_CUBA", "n_neurons": 400},
                                            "seed": seed}}


def step_of(job: dict, step_id: str) -> dict:
    return next(s for s in job["steps"] if s["id"] == step_id)


@pytest.mark.parametrize("backend, seed", [("sqlite", 101), ("postgresql", 102)])
def test_a_gateway_killed_mid_job_is_replaced_and_finished_steps_are_not_rerun(backend, seed, replicas, s3_server,
                                                                               module_bucket, tmp_path):
    service = replicas[0]
    endpoints = {"simulation": [service.address]}
    before = calls(service, "Simulate")["Simulate"]
    with database_url(backend, tmp_path, "gateway_kill") as url:
        # One step at a time, so the quick step has finished when the slow one is cut off.
        first = gateway_process(tmp_path / "first.log", s3_server, module_bucket, url, endpoints,
                                NEUROMESH_GATEWAY_STEP_CONCURRENCY="1").start()
        lab = client(first)
        job = lab.submit({"steps": [
            {"id": "quick", "service": "simulation", "method": "Simulate", "params": quick_simulation(seed)},
            {"id": "slow", "service": "simulation", "method": "Simulate", "params": slow_simulation(seed)}]})
        wait_for(lambda: step_of(lab.job(job["id"]), "slow")["state"] == "running"
                 and started(service, "Simulate") >= sum(before.values()) + 2, 60, "the slow step's call to begin")
        assert step_of(lab.job(job["id"]), "quick")["state"] == "succeeded"
        first.kill()                                                  # SIGKILL: no drain, no release

        second = gateway_process(tmp_path / "second.log", s3_server, module_bucket, url, endpoints).start()
        try:
            finished = client(second).wait(job["id"], timeout_s=120)
        finally:
            second.stop()
    assert finished["state"] == "succeeded", finished
    quick, slow = step_of(finished, "quick"), step_of(finished, "slow")
    assert (quick["attempts"], quick["reused"]) == (1, False)          # done before the kill, never again
    assert slow["attempts"] == 2                                       # cut off once, then taken over
    now = calls(service, "Simulate")["Simulate"]
    assert now.get("OK", 0) - before.get("OK", 0) == 2, (before, now)  # quick once, slow once
    assert now.get("CANCELLED", 0) - before.get("CANCELLED", 0) == 1   # the call the dead gateway left
    assert "took over step slow" in (tmp_path / "second.log").read_text()


def test_cancel_cancels_the_service_call(replicas, s3_server, module_bucket, tmp_path):
    service = replicas[0]
    before = calls(service, "Simulate")["Simulate"]
    with database_url("postgresql", tmp_path, "gateway_cancel") as url:
        gateway = gateway_process(tmp_path / "gateway.log", s3_server, module_bucket, url,
                                  {"simulation": [service.address]}).start()
        try:
            lab = client(gateway)
            job = lab.submit({"steps": [{"id": "long", "service": "simulation", "method": "Simulate",
                                         "params": slow_simulation(201, duration_ms=20_000)}]})
            wait_for(lambda: (step_of(lab.job(job["id"]), "long")["progress"] or 0) > 0, 60, "the step to progress")
            status, cancelling, _ = lab.request("POST", f"/v1/jobs/{job['id']}:cancel")
            assert status == 202 and cancelling["state"] == "cancelling"
            ended = lab.wait(job["id"], timeout_s=30)
        finally:
            gateway.stop()
    assert ended["state"] == "cancelled" and step_of(ended, "long")["state"] == "cancelled", ended
    assert ended["error"]["code"] == "CANCELLED"
    now = wait_for(lambda: (c := calls(service, "Simulate")["Simulate"]).get("CANCELLED", 0)
                   > before.get("CANCELLED", 0) and c, 20, "the service to count the call cancelled")
    assert now.get("CANCELLED", 0) - before.get("CANCELLED", 0) == 1
    assert now.get("OK", 0) == before.get("OK", 0)                     # it never ran to its end


def test_a_stopped_gateway_gives_its_running_step_back_at_once(replicas, s3_server, module_bucket, tmp_path):
    """SIGTERM: the runner drains (no drain time here), cancels the call and releases the step as pending."""
    service = replicas[0]
    before = calls(service, "Simulate")["Simulate"]
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    gateway = gateway_process(tmp_path / "gateway.log", s3_server, module_bucket, url,
                              {"simulation": [service.address]}).start()
    lab = client(gateway)
    job = lab.submit({"steps": [{"id": "long", "service": "simulation", "method": "Simulate",
                                 "params": slow_simulation(251, duration_ms=20_000)}]})
    wait_for(lambda: (step_of(lab.job(job["id"]), "long")["progress"] or 0) > 0, 60, "the step to progress")
    # SIGTERM: uvicorn shuts down, then re-raises the signal, so the status says how it was stopped
    assert gateway.stop() in (0, -signal.SIGTERM)
    assert "'released': 1" in (tmp_path / "gateway.log").read_text()
    database = Database(url)
    try:
        step = JobStore(database).get_job("lab-a", job["id"]).step("long")
    finally:
        database.close()
    assert (step.state, step.lease_owner, step.attempts) == (StepState.PENDING, None, 0)   # not counted as an attempt
    wait_for(lambda: calls(service, "Simulate")["Simulate"].get("CANCELLED", 0) > before.get("CANCELLED", 0), 20,
             "the service to see the call cancelled")


def test_an_api_only_gateway_and_a_worker_share_postgresql(replicas, s3_server, module_bucket, tmp_path):
    """The HTTP side and the runner in different processes, one database; the worker reaches the
    service through a dns:/// target (as a Kubernetes headless service)."""
    service = replicas[0]
    with database_url("postgresql", tmp_path, "gateway_worker") as url:
        api = gateway_process(tmp_path / "api.log", s3_server, module_bucket, url, {"simulation": [service.address]},
                              NEUROMESH_GATEWAY_RUN_JOBS="false").start()
        worker_env = {**api.env, "NEUROMESH_GATEWAY_ENDPOINTS": json.dumps(
            {"simulation": f"dns:///localhost:{service.grpc_port}"})}
        worker = ManagedProcess("worker", [sys.executable, "-m", "gateway.jobs.worker", "--log-format", "text"],
                                env=worker_env, log_path=tmp_path / "worker.log")
        try:
            lab = client(api)
            _, ready, _ = lab.request("GET", "/readyz")
            assert ready["checks"]["runner"] == {"ok": True, "running_jobs": False}
            job = lab.submit({"steps": [{"id": "quick", "service": "simulation", "method": "Simulate",
                                         "params": quick_simulation(351)}]})
            worker.start()
            finished = lab.wait(job["id"], timeout_s=90)
        finally:
            worker.stop()
            api.stop()
    assert finished["state"] == "succeeded", (finished, (tmp_path / "worker.log").read_text()[-2000:])
    assert "figure" in step_of(finished, "quick")["outputs"]


def test_a_replica_killed_mid_step_hands_the_step_to_the_other(replicas, s3_server, module_bucket, tmp_path):
    # Last in the module: one replica does not survive it.
    before = [calls(r, "Simulate")["Simulate"] for r in replicas]
    begun = [started(r, "Simulate") for r in replicas]
    gateway = gateway_process(tmp_path / "gateway.log", s3_server, module_bucket, f"sqlite:///{tmp_path / 'jobs.db'}",
                              {"simulation": [r.address for r in replicas]}).start()
    try:
        lab = client(gateway)
        job = lab.submit({"steps": [{"id": "sim", "service": "simulation", "method": "Simulate",
                                     "params": slow_simulation(301)}]})
        victim = wait_for(lambda: [i for i, r in enumerate(replicas) if started(r, "Simulate") > begun[i]], 60,
                          "a replica to start the call")[0]
        wait_for(lambda: (step_of(lab.job(job["id"]), "sim")["progress"] or 0) > 0, 60, "the step to progress")
        os.killpg(replicas[victim].process.popen.pid, signal.SIGKILL)
        finished = lab.wait(job["id"], timeout_s=120)
        failovers = scrape(gateway.http_port).get("neuromesh_gateway_call_failovers_total{service=simulation}")
    finally:
        gateway.stop()
    assert finished["state"] == "succeeded", finished
    assert step_of(finished, "sim")["attempts"] == 1                   # moved within the attempt, not retried later
    survivor = replicas[1 - victim]
    after = calls(survivor, "Simulate")["Simulate"]
    assert after.get("OK", 0) - before[1 - victim].get("OK", 0) == 1
    assert failovers == 1
