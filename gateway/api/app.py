"""The gateway application: one :class:`Gateway` (stores, executor, runner) behind a FastAPI app.

:func:`create_app` makes the ASGI app; its lifespan starts the gateway (tables created if missing,
replica health checks, the :class:`~gateway.jobs.runner.JobRunner` claiming steps, the sweep of
expired uploads) and stops it (the runner drains: running steps get ``drain_s`` to finish, the
rest are released as pending for another replica, as after a crash but at once). Several
gateway processes can share one PostgreSQL database: the job store's leases and ``SKIP LOCKED``
claims keep every step to one runner.

Example
-------
>>> from gateway.api.app import Gateway, create_app
>>> gateway = Gateway.from_environment()        # NEUROMESH_* settings            # doctest: +SKIP
>>> app = create_app(gateway)                                                     # doctest: +SKIP
>>> uvicorn.run(app, host="127.0.0.1", port=8080)                                 # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text

from gateway.api.errors import install_error_handlers
from gateway.api.middleware import AuthMiddleware, BodyLimitMiddleware, HttpMetricsMiddleware
from gateway.api.routes import api, system
from gateway.artifacts.service import ArtifactService
from gateway.artifacts.uploads import UploadStore
from gateway.auth import TokenRegistry
from gateway.calls.endpoints import EndpointRegistry
from gateway.calls.executor import GrpcStepExecutor, service_targets
from gateway.calls.methods import MethodTable
from gateway.jobs.database import Database
from gateway.jobs.metrics import GatewayMetrics
from gateway.jobs.changes import JobChanges
from gateway.jobs.runner import JobRunner
from gateway.jobs.settings import JobSettings, load_job_settings
from gateway.jobs.store import JobStore
from gateway.pipelines import CompositeStepExecutor, GatewayMethodTable
from gateway.settings import GatewaySettings, load_gateway_settings
from services.common.settings import Settings, load_settings
from services.common.store import ArtifactStore

logger = logging.getLogger(__name__)

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
UPLOAD_SWEEP_S = 60.0

DESCRIPTION = """\
Jobs of NeuroMesh service calls over HTTP, and the artifacts they read and write.

* **Authentication**: every `/v1` route needs `Authorization: Bearer <token>`. The token says which
  tenant you are; what another tenant owns is answered 404, like what does not exist.
* **Artifacts** live under your namespace (keys such as `sessions/s1/counts`). Upload with one presigned
  PUT: `POST /v1/uploads`, PUT the bytes to the `url`, then `POST /v1/uploads/{id}:complete` (the gateway
  computes the sha256). `kind: "array"` takes a `.npy` file and stores a Zarr v3 array.
* **Jobs** are DAGs of steps. A step calls `method` of `service` (an RPC of
  `neuromesh.<service>.v1.<Service>Service`) with `params` (the request message in proto JSON) and
  `inputs` (request field path -> `{"artifact": {"key": ...}}` or `{"step": id, "output": path}`).
  Outputs are every ArtifactRef of the result, named by their path (`figure`, `binned_counts`).
  A step already computed for the same inputs, parameters and service version is reused.
* **Errors** are `{"error": {"reason", "message", "field"}}`.
"""


def _package_version() -> str:
    try:
        return importlib.metadata.version("neuromesh")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


class Gateway:
    """What one gateway process holds: the job store, the artifact store, tokens, the executor and runner.

    Parameters
    ----------
    settings : Settings
        The common settings (object store, logs, message sizes).
    job_settings : JobSettings
        The job engine's (database URL, concurrency, leases, retries).
    gateway_settings : GatewaySettings
        The HTTP layer's and executor's (endpoints, tokens, limits).
    owner_id : str, optional
        The runner's name in leases (default: host, pid and a random part).
    run_jobs : bool
        Whether this process claims and runs steps (False: an API-only replica; other processes,
        such as ``python -m gateway.jobs.worker``, run the jobs).

    Example
    -------
    >>> gw = Gateway(load_settings(), load_job_settings(database_url="sqlite:///jobs.db"),
    ...              load_gateway_settings())                                       # doctest: +SKIP
    >>> await gw.start(); ...; await gw.stop()                                      # doctest: +SKIP
    """

    def __init__(self, settings: Settings, job_settings: JobSettings, gateway_settings: GatewaySettings, *,
                 owner_id: str | None = None, run_jobs: bool = True) -> None:
        self.common = settings
        self.run_jobs = run_jobs
        self.job_settings = job_settings
        self.settings = gateway_settings
        self.database = Database(job_settings.database_url)
        self.jobs = JobStore(self.database)
        self.uploads = UploadStore(self.database)
        self.store = ArtifactStore.from_settings(settings)
        self.artifacts = ArtifactService(self.store, self.uploads, gateway_settings,
                                         s3_access_key=settings.s3_access_key, s3_secret_key=settings.s3_secret_key,
                                         s3_region=settings.s3_region)
        self.tokens = TokenRegistry(gateway_settings.tokens, gateway_settings.tokens_file)
        # The services' RPCs; and, for job submission, also the gateway's own gathering steps (service
        # "gateway") that the pipelines use.
        self.service_methods = MethodTable.from_generated()
        self.methods = GatewayMethodTable(self.service_methods)
        self.metrics = GatewayMetrics()
        # The runner tells it what it wrote, so event streams of this process need not wait for their poll.
        self.changes = JobChanges()
        self.owner_id = owner_id
        self.closing = asyncio.Event()
        self.endpoints: EndpointRegistry | None = None
        self.executor: CompositeStepExecutor | None = None
        self.runner: JobRunner | None = None
        self._runner_task: asyncio.Task | None = None
        self._sweep_task: asyncio.Task | None = None

    @classmethod
    def from_environment(cls, **job_overrides: Any) -> "Gateway":
        """A gateway configured by the ``NEUROMESH_*`` environment."""
        return cls(load_settings(), load_job_settings(**job_overrides), load_gateway_settings())

    def service_targets(self) -> dict[str, list[str]]:
        """Each service's gRPC targets: configured, else the default port of the local stack on 127.0.0.1."""
        return service_targets(self.service_methods, self.settings.endpoints)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        await asyncio.to_thread(self.database.create_all)
        size = self.common.max_message_bytes
        self.endpoints = EndpointRegistry.from_targets(
            self.service_targets(), {s: m.full_name for s, m in self.service_methods.services.items()},
            health_interval_s=self.settings.health_interval_s,
            channel_options=[("grpc.max_receive_message_length", size), ("grpc.max_send_message_length", size)])
        self.endpoints.start()
        grpc = GrpcStepExecutor(self.service_methods, self.endpoints, self.store, call_timeout_s=self.settings.call_timeout_s,
                                service_info_ttl_s=self.settings.service_info_ttl_s, metrics=self.metrics)
        self.executor = CompositeStepExecutor(grpc, self.store)
        js = self.job_settings
        self.runner = JobRunner(self.jobs, self.executor, owner_id=self.owner_id, concurrency=js.step_concurrency,
                                lease_s=js.lease_s, poll_interval_s=js.poll_interval_s,
                                retry_policy=js.retry_policy(), cancel_grace_s=js.cancel_grace_s, drain_s=js.drain_s,
                                progress_interval_s=js.progress_interval_s, metrics=self.metrics,
                                metrics_interval_s=js.metrics_interval_s, on_change=self.changes.notify)
        if self.run_jobs:
            self._runner_task = asyncio.create_task(self.runner.run(), name="job runner")
        self._sweep_task = asyncio.create_task(self._sweep_uploads(), name="upload sweep")
        logger.info("gateway started", extra={"owner": self.runner.owner_id, "database": repr(self.database),
                                              "services": self.endpoints.snapshot()})

    async def stop(self) -> None:
        """Stop: event streams end, the runner drains and releases what still runs, connections close."""
        self.closing.set()
        if self._sweep_task is not None:
            self._sweep_task.cancel()
            await asyncio.gather(self._sweep_task, return_exceptions=True)
        if self.runner is not None:
            if self._runner_task is not None:
                self.runner.stop()
                try:
                    await self._runner_task
                except Exception:
                    logger.exception("the job runner failed while stopping")
                logger.info("job runner stopped", extra={"stats": vars(self.runner.stats)})
            await asyncio.to_thread(self.runner.close)
        if self.executor is not None:
            await self.executor.close()
        self.database.close()

    def wake_runner(self, *, submitted: bool = False) -> None:
        """Make this process's runner look for work now (safe from any thread)."""
        if self.runner is not None:
            self.runner.wake(submitted=submitted)

    async def _sweep_uploads(self) -> None:
        while True:
            try:
                swept = await asyncio.to_thread(self.artifacts.sweep_expired)
                if swept:
                    logger.info("swept %d expired uploads", swept)
            except Exception as exc:  # the database or store may be away for a while
                logger.warning("could not sweep expired uploads: %s", exc)
            await asyncio.sleep(UPLOAD_SWEEP_S)

    async def readiness(self) -> dict[str, Any]:
        """Each readiness check: ``{"ok": bool, ...}``; the services' health is shown, not required."""
        def database() -> dict[str, Any]:
            with self.database.read() as conn:
                conn.execute(text("SELECT 1"))
            return {"ok": True, "dialect": self.database.dialect}

        def object_store() -> dict[str, Any]:
            try:
                exists = self.store.client.bucket_exists(self.store.bucket)
            except Exception as exc:  # any failure to answer is "not ready"
                return {"ok": False, "error": f"{type(exc).__name__}"}
            return {"ok": bool(exists), "bucket": self.store.bucket,
                    **({} if exists else {"error": "the bucket does not exist"})}

        checks: dict[str, Any] = {}
        try:
            checks["database"] = await asyncio.to_thread(database)
        except Exception as exc:
            checks["database"] = {"ok": False, "error": type(exc).__name__}
        checks["object_store"] = await asyncio.to_thread(object_store)
        if self.run_jobs:
            running = self._runner_task is not None and not self._runner_task.done()
            checks["runner"] = {"ok": running, **({"owner": self.runner.owner_id} if self.runner else {})}
        else:
            checks["runner"] = {"ok": True, "running_jobs": False}
        checks["tokens"] = {"ok": self.tokens.file_error is None,
                            **({"error": self.tokens.file_error} if self.tokens.file_error else {})}
        checks["services"] = self.executor.describe() if self.executor else {}
        return checks


def _csp(gateway: Gateway) -> str:
    """The page's Content-Security-Policy: its own scripts and styles only; images also from the store
    (figures are shown through presigned URLs)."""
    presigner = gateway.artifacts.presigner
    scheme = "https" if getattr(presigner, "_base_url").is_https else "http"
    store = f"{scheme}://{getattr(presigner, '_base_url').host}"
    return (f"default-src 'self'; img-src 'self' {store} data: blob:; script-src 'self'; style-src 'self'; "
            "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document, without FastAPI's 422 answers: this API answers invalid requests 400."""
    if app.openapi_schema is None:
        document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        for item in document.get("paths", {}).values():
            for operation in item.values():
                operation.get("responses", {}).pop("422", None)
        schemas = document.get("components", {}).get("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        app.openapi_schema = document
    return app.openapi_schema


def create_app(gateway: Gateway | None = None) -> FastAPI:
    """The ASGI app of ``gateway`` (default: one configured from the environment)."""
    gateway = gateway or Gateway.from_environment()

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        await gateway.start()
        try:
            yield
        finally:
            await gateway.stop()

    app = FastAPI(title="NeuroMesh gateway", version=_package_version(), description=DESCRIPTION,
                  openapi_url="/v1/openapi.json", docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.gateway = gateway
    app.openapi = lambda: _openapi(app)
    install_error_handlers(app)
    app.include_router(api)
    app.include_router(system)
    policy = _csp(gateway)
    page_headers = {"Content-Security-Policy": policy, "X-Content-Type-Options": "nosniff",
                    "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"}

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(WEB_DIR / "index.html", media_type="text/html", headers=page_headers)

    @app.get("/v1/docs", include_in_schema=False)
    async def docs() -> FileResponse:
        return FileResponse(WEB_DIR / "docs.html", media_type="text/html", headers=page_headers)

    app.mount("/static", StaticFiles(directory=WEB_DIR / "static"), name="static")
    # Outermost last: metrics see every answer; a missing token is 401 before the body is even read.
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=gateway.settings.max_body_bytes)
    app.add_middleware(AuthMiddleware, tokens=gateway.tokens)
    app.add_middleware(HttpMetricsMiddleware, metrics=gateway.metrics,
                       templates=lambda: [*_openapi(app)["paths"], "/", "/v1/docs", "/v1/openapi.json"])
    return app


__all__ = ["Gateway", "create_app"]
