"""``python -m gateway.jobs.worker``: a process that only runs jobs (a gateway replica without HTTP).

It builds the store from ``NEUROMESH_GATEWAY_DATABASE_URL`` (or ``--database-url``), creates the
schema if needed, and runs a :class:`~gateway.jobs.runner.JobRunner` with the executor named by
``--executor module:attribute`` (a class or a factory called without arguments; by default the
gateway's gRPC executor, :func:`gateway.calls.executor.from_environment`) until SIGTERM or SIGINT;
then it drains: running steps get ``drain_s`` to finish, the rest are given back.

Example
-------
::

    NEUROMESH_GATEWAY_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/jobs \\
        python -m gateway.jobs.worker --concurrency 8
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import signal
import sys
from collections.abc import Sequence

from gateway.jobs.database import Database
from gateway.jobs.executor import StepExecutor
from gateway.jobs.runner import JobRunner
from gateway.jobs.settings import load_job_settings
from gateway.jobs.store import JobStore
from services.common.logs import configure_logging

logger = logging.getLogger("gateway.jobs.worker")
DEFAULT_EXECUTOR = "gateway.calls.executor:from_environment"


def load_executor(path: str) -> StepExecutor:
    """Import ``module:attribute`` and call it (a class or factory without arguments)."""
    module_name, sep, attribute = path.partition(":")
    if not sep or not module_name or not attribute:
        raise SystemExit(f"--executor must look like package.module:Attribute, got {path!r}")
    target = getattr(importlib.import_module(module_name), attribute)
    executor = target() if callable(target) else target
    if not isinstance(executor, StepExecutor):
        raise SystemExit(f"{path} did not give a StepExecutor (needs async service_version and execute)")
    return executor


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gateway.jobs.worker", description=__doc__.splitlines()[0])
    p.add_argument("--executor", default=DEFAULT_EXECUTOR,
                   help="module:attribute of the StepExecutor to run steps with (default: %(default)s, the gRPC "
                        "executor the gateway uses, configured by NEUROMESH_GATEWAY_ENDPOINTS)")
    p.add_argument("--database-url", help="overrides NEUROMESH_GATEWAY_DATABASE_URL")
    p.add_argument("--owner-id", help="this runner's name in leases (default: host-pid-random)")
    p.add_argument("--concurrency", type=int, help="overrides NEUROMESH_GATEWAY_STEP_CONCURRENCY")
    p.add_argument("--lease-s", type=float, help="overrides NEUROMESH_GATEWAY_LEASE_S")
    p.add_argument("--poll-interval-s", type=float, help="overrides NEUROMESH_GATEWAY_POLL_INTERVAL_S")
    p.add_argument("--log-format", choices=["json", "text"], default="json")
    return p


async def _serve(runner: JobRunner) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, runner.stop)
    await runner.run()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    overrides = {k: v for k, v in {"database_url": args.database_url, "step_concurrency": args.concurrency,
                                   "lease_s": args.lease_s, "poll_interval_s": args.poll_interval_s}.items()
                 if v is not None}
    settings = load_job_settings(**overrides)
    configure_logging("INFO", args.log_format, service="gateway-worker")
    executor = load_executor(args.executor)
    database = Database(settings.database_url)
    database.create_all()
    runner = JobRunner(JobStore(database), executor, owner_id=args.owner_id,
                       concurrency=settings.step_concurrency, lease_s=settings.lease_s,
                       poll_interval_s=settings.poll_interval_s, retry_policy=settings.retry_policy(),
                       cancel_grace_s=settings.cancel_grace_s, drain_s=settings.drain_s)
    logger.info("job worker started", extra={"owner": runner.owner_id, "database": repr(database)})
    try:
        asyncio.run(_serve(runner))
    finally:
        runner.close()
        database.close()
    logger.info("job worker stopped", extra={"owner": runner.owner_id, "stats": vars(runner.stats)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
