"""The entry point of the SDK: :class:`Client`, one object for every service and the object store.

Three ways to make one:

* ``Client.local()`` reads what ``neuromesh up`` recorded (``.neuromesh/stack.json``, found in
  the working directory or a parent, or ``NEUROMESH_STATE_DIR``): the services' endpoints, the
  object store and the bucket;
* ``Client.from_env()`` reads ``NEUROMESH_*`` variables, the same the services read for the
  object store (``NEUROMESH_S3_ENDPOINT``, ``NEUROMESH_S3_ACCESS_KEY``,
  ``NEUROMESH_S3_SECRET_KEY``, ``NEUROMESH_S3_SECURE``, ``NEUROMESH_S3_REGION``,
  ``NEUROMESH_BUCKET``) plus ``NEUROMESH_<SERVICE>_ENDPOINT`` per service (default
  ``127.0.0.1`` on the service's port), ``NEUROMESH_TOKEN``, ``NEUROMESH_TLS``,
  ``NEUROMESH_TLS_ROOT_CERTS``, ``NEUROMESH_TLS_CERT_CHAIN``, ``NEUROMESH_TLS_PRIVATE_KEY``,
  ``NEUROMESH_TLS_SERVER_NAME``, ``NEUROMESH_UNARY_TIMEOUT_S``, ``NEUROMESH_STREAM_TIMEOUT_S``;
* ``Client(endpoints={...}, s3_endpoint=..., ...)`` with everything explicit.

Used as a context manager it closes its channels at the end.

Example
-------
>>> client = Client(endpoints={"simulation": "127.0.0.1:50053"}, s3_endpoint="127.0.0.1:8333")
>>> client.endpoints
{'simulation': '127.0.0.1:50053'}
>>> client.decoding.connection
Traceback (most recent call last):
...
neuromesh.sdk.errors.FailedPrecondition: this client has no endpoint for the decoding service; pass endpoints={'decoding': 'host:port'} or set NEUROMESH_DECODING_ENDPOINT (field endpoints.decoding; reason NO_ENDPOINT)
>>> client.close()
"""

from __future__ import annotations

import os
import threading
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping

from .artifacts import Artifacts
from .connection import Deadlines, RetryPolicy, ServiceConnection, TlsConfig, endpoints_map
from .connectomics import ConnectomicsClient
from .decoding import DecodingClient
from .errors import FailedPrecondition, InvalidArgument, NeuroMeshError
from .reduction import ReductionClient
from .segmentation import SegmentationClient
from .simulation import SimulationClient

__all__ = ["Client", "default_endpoints", "find_state_dir"]

#: The services and their client classes, by endpoint name
SERVICE_CLIENTS = {cls.name: cls for cls in (DecodingClient, ReductionClient, SimulationClient, SegmentationClient,
                                             ConnectomicsClient)}

_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}


def default_endpoints(host: str = "127.0.0.1") -> dict[str, str]:
    """Every registered service on ``host`` at its default port (those of ``neuromesh up``).

    Examples
    --------
    >>> default_endpoints()["decoding"]
    '127.0.0.1:50051'
    """
    from services.common.registry import discover_services

    return {spec.name: f"{host}:{spec.grpc_port}" for spec in discover_services()}


def find_state_dir(start: str | os.PathLike[str] | None = None) -> Path | None:
    """The state directory of a local stack: ``NEUROMESH_STATE_DIR``, else the first
    ``.neuromesh/stack.json`` in ``start`` (default: the working directory) or a parent.

    A notebook in ``analysis/`` of a project started with ``neuromesh up`` at its root finds it.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as root:
    ...     (Path(root) / ".neuromesh").mkdir()
    ...     _ = (Path(root) / ".neuromesh" / "stack.json").write_text("{}")
    ...     (Path(root) / "analysis").mkdir()
    ...     find_state_dir(Path(root) / "analysis") == (Path(root) / ".neuromesh").resolve()
    True
    """
    if start is None and os.environ.get("NEUROMESH_STATE_DIR"):
        return Path(os.environ["NEUROMESH_STATE_DIR"]).expanduser().resolve()
    here = Path(start or Path.cwd()).expanduser().resolve()
    for folder in (here, *here.parents):
        if (folder / ".neuromesh" / "stack.json").is_file():
            return folder / ".neuromesh"
    return None


def _flag(environ: Mapping[str, str], name: str, default: bool) -> bool:
    value = environ.get(name)
    if value is None:
        return default
    if value.strip().lower() in _TRUE:
        return True
    if value.strip().lower() in _FALSE:
        return False
    raise InvalidArgument(f"{name}={value!r} is not a boolean (true/false, 1/0)", field=name)


def _seconds(environ: Mapping[str, str], name: str, default: float) -> float:
    value = environ.get(name)
    if value is None:
        return default
    try:
        seconds = float(value)
    except ValueError:
        seconds = float("nan")
    if not seconds > 0:
        raise InvalidArgument(f"{name}={value!r} is not a number of seconds > 0", field=name)
    return seconds


def _s3_settings(environ: Mapping[str, str]) -> dict[str, Any]:
    """The object-store settings from ``NEUROMESH_S3_*`` and ``NEUROMESH_BUCKET``, with the services'
    defaults (:class:`services.common.settings.Settings`)."""
    from services.common.settings import Settings

    defaults = {name: Settings.model_fields[name].default for name in
                ("s3_endpoint", "s3_access_key", "s3_secret_key", "s3_region", "bucket")}
    return {"s3_endpoint": environ.get("NEUROMESH_S3_ENDPOINT", defaults["s3_endpoint"]),
            "s3_access_key": environ.get("NEUROMESH_S3_ACCESS_KEY", defaults["s3_access_key"]),
            "s3_secret_key": environ.get("NEUROMESH_S3_SECRET_KEY", defaults["s3_secret_key"]),
            "s3_secure": _flag(environ, "NEUROMESH_S3_SECURE", False),
            "s3_region": environ.get("NEUROMESH_S3_REGION", defaults["s3_region"]) or None,
            "bucket": environ.get("NEUROMESH_BUCKET", defaults["bucket"])}


class Client:
    """A connection to NeuroMesh: the five services and the object store they share.

    Parameters
    ----------
    endpoints : mapping of service name to gRPC target, optional
        ``{"decoding": "host:port", ...}``; ``dns:///name:port`` targets are balanced over the
        name's addresses. None: every service on 127.0.0.1 at its default port. A service not in
        the mapping raises ``FailedPrecondition`` when used.
    s3_endpoint : str, default "127.0.0.1:8333"
        ``host:port`` of the S3 server (MinIO, SeaweedFS).
    s3_access_key, s3_secret_key : str
        S3 credentials; the services' defaults for the local stack.
    s3_secure : bool, default False
        HTTPS to the S3 server.
    s3_region : str, optional
    bucket : str, default "neuromesh"
        The bucket the services read; uploads go to ``inputs/`` in it.
    token : str, optional
        Bearer token sent with every call (gRPC call credentials over TLS; ``authorization``
        metadata on plaintext channels).
    tls : bool or TlsConfig, optional
        True: TLS with the system's CAs; a :class:`~neuromesh.sdk.connection.TlsConfig` for a
        private CA, client certificates or a server name override. None/False: plaintext.
    deadlines : Deadlines, optional
        Default deadlines per kind of call (unary 10 min, streams a day, info 10 s).
    retry : RetryPolicy, optional
        UNAVAILABLE (and DEADLINE_EXCEEDED of unary calls) retried up to 5 attempts with
        exponential backoff from 0.5 s.
    progress : bool, optional
        Progress bars of long calls: None shows them in terminals and notebooks, False never.
    artifacts : Artifacts, optional
        Use this store access instead of one made from the S3 settings.

    Examples
    --------
    >>> with Client.local() as client:                                            # doctest: +SKIP
    ...     run = client.simulation.simulate(vogels_abbott("cuba"), duration_ms=500.0)
    ...     times, ids = run.spikes()
    >>> client = Client({"decoding": "decoding.lab.example.org:443"}, tls=True, token=os.environ["TOKEN"],
    ...                 s3_endpoint="s3.lab.example.org", s3_secure=True)                # doctest: +SKIP
    """

    def __init__(self, endpoints: Mapping[str, str] | None = None, *, s3_endpoint: str = "127.0.0.1:8333",
                 s3_access_key: str = "neuromesh", s3_secret_key: str = "neuromesh-secret", s3_secure: bool = False,
                 s3_region: str | None = None, bucket: str = "neuromesh", token: str | None = None,
                 tls: bool | TlsConfig | None = None, deadlines: Deadlines | None = None,
                 retry: RetryPolicy | None = None, progress: bool | None = None,
                 artifacts: Artifacts | None = None) -> None:
        self.endpoints = endpoints_map(default_endpoints() if endpoints is None else endpoints)
        unknown = sorted(set(self.endpoints) - set(SERVICE_CLIENTS))
        if unknown:
            raise InvalidArgument(f"unknown service {', '.join(map(repr, unknown))} in endpoints; services: "
                                  f"{', '.join(sorted(SERVICE_CLIENTS))}", field=f"endpoints.{unknown[0]}")
        self.s3_endpoint = s3_endpoint
        self.bucket = bucket
        self._s3 = {"access_key": s3_access_key, "secret_key": s3_secret_key, "secure": bool(s3_secure),
                    "region": s3_region}
        if token is not None and (not isinstance(token, str) or not token.strip()):
            raise InvalidArgument("token must be a non-empty string", field="token")
        self.token = token
        self.tls = TlsConfig() if tls is True else (tls or None)
        if self.tls is not None and not isinstance(self.tls, TlsConfig):
            raise InvalidArgument(f"tls must be True, False or a TlsConfig, not {type(tls).__name__}", field="tls")
        self.deadlines = deadlines or Deadlines()
        self.retry = retry or RetryPolicy()
        self.progress = progress
        self.gateway_endpoint: str | None = None
        self._artifacts = artifacts
        self._connections: dict[str, ServiceConnection] = {}
        self._lock = threading.Lock()
        self._closed = False

    # --- other ways to make one

    @classmethod
    def local(cls, state_dir: str | os.PathLike[str] | None = None, **options: Any) -> "Client":
        """A client of the local stack started by ``neuromesh up``.

        Parameters
        ----------
        state_dir : path, optional
            The stack's state directory; default :func:`find_state_dir`.
        **options
            Other :class:`Client` arguments (``progress``, ``retry``, ``deadlines``, ...). The S3
            credentials come from ``NEUROMESH_S3_ACCESS_KEY``/``..._SECRET_KEY`` (or their
            defaults), as the stack's processes got them.

        Raises
        ------
        FailedPrecondition
            No stack is recorded there (``neuromesh up`` was not run).

        Examples
        --------
        >>> client = Client.local()                                 # doctest: +SKIP
        >>> sorted(client.endpoints)                                # doctest: +SKIP
        ['connectomics', 'decoding', 'reduction', 'segmentation', 'simulation']
        """
        from neuromesh.stack.local import LocalStack
        from services.common.settings import SettingsError, load_settings

        folder = Path(state_dir).expanduser() if state_dir is not None else find_state_dir()
        if folder is None:
            raise FailedPrecondition("no local stack found (no .neuromesh/stack.json here or above, and "
                                     "NEUROMESH_STATE_DIR is unset): run `neuromesh up` first, or pass state_dir",
                                     reason="NO_LOCAL_STACK")
        try:
            settings = load_settings()
        except SettingsError as exc:   # a SystemExit for processes; here an error to catch
            raise InvalidArgument(exc.message, field="environment") from None
        state = LocalStack(folder, settings).read_state()
        if state is None:
            raise FailedPrecondition(f"no local stack recorded in {folder}: run `neuromesh up` first",
                                     reason="NO_LOCAL_STACK")
        endpoints = {c.name: c.endpoint for c in state.components if c.kind == "grpc" and c.name in SERVICE_CLIENTS}
        kwargs = {"s3_endpoint": state.s3_endpoint, "bucket": state.bucket, "s3_access_key": settings.s3_access_key,
                  "s3_secret_key": settings.s3_secret_key, "s3_secure": settings.s3_secure,
                  "s3_region": settings.s3_region, **options}
        client = cls(endpoints, **kwargs)
        client.gateway_endpoint = next((c.endpoint for c in state.components if c.kind == "http"), None)
        return client

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **options: Any) -> "Client":
        """A client configured by ``NEUROMESH_*`` environment variables (see the module docstring).

        Parameters
        ----------
        environ : mapping, optional
            Instead of ``os.environ``.
        **options
            :class:`Client` arguments that win over the environment.

        Examples
        --------
        >>> client = Client.from_env({"NEUROMESH_SIMULATION_ENDPOINT": "sim.lab:50053",
        ...                           "NEUROMESH_S3_ENDPOINT": "minio.lab:9000", "NEUROMESH_BUCKET": "lab-data"})
        >>> client.endpoints["simulation"], client.endpoints["decoding"], client.s3_endpoint, client.bucket
        ('sim.lab:50053', '127.0.0.1:50051', 'minio.lab:9000', 'lab-data')
        """
        env = os.environ if environ is None else environ
        endpoints = {name: env.get(f"NEUROMESH_{name.upper()}_ENDPOINT", target)
                     for name, target in default_endpoints().items()}
        tls: TlsConfig | None = None
        if _flag(env, "NEUROMESH_TLS", False):
            tls = TlsConfig(root_certificates=env.get("NEUROMESH_TLS_ROOT_CERTS") or None,
                            certificate_chain=env.get("NEUROMESH_TLS_CERT_CHAIN") or None,
                            private_key=env.get("NEUROMESH_TLS_PRIVATE_KEY") or None,
                            server_name=env.get("NEUROMESH_TLS_SERVER_NAME") or None)
        kwargs: dict[str, Any] = {
            **_s3_settings(env), "token": env.get("NEUROMESH_TOKEN") or None, "tls": tls,
            "deadlines": Deadlines(unary_s=_seconds(env, "NEUROMESH_UNARY_TIMEOUT_S", Deadlines.unary_s),
                                   stream_s=_seconds(env, "NEUROMESH_STREAM_TIMEOUT_S", Deadlines.stream_s))}
        kwargs.update(options)
        return cls(endpoints, **kwargs)

    # --- parts

    @property
    def artifacts(self) -> Artifacts:
        """Uploads and downloads (:class:`~neuromesh.sdk.artifacts.Artifacts`); made on first use."""
        if self._artifacts is None:
            self._artifacts = Artifacts.connect(self.s3_endpoint, self._s3["access_key"], self._s3["secret_key"],
                                                self.bucket, secure=self._s3["secure"], region=self._s3["region"])
        return self._artifacts

    def connection(self, name: str, stub_class: type) -> ServiceConnection:
        """The connection to service ``name`` (opened on first use, shared by later calls)."""
        if self._closed:
            raise FailedPrecondition("this client is closed; make a new one", reason="CLIENT_CLOSED")
        with self._lock:
            connection = self._connections.get(name)
            if connection is None:
                target = self.endpoints.get(name)
                if target is None:
                    raise FailedPrecondition(f"this client has no endpoint for the {name} service; pass "
                                             f"endpoints={{'{name}': 'host:port'}} or set "
                                             f"NEUROMESH_{name.upper()}_ENDPOINT", reason="NO_ENDPOINT",
                                             field=f"endpoints.{name}")
                connection = ServiceConnection(name, target, stub_class, tls=self.tls, token=self.token,
                                               deadlines=self.deadlines, retry=self.retry)
                self._connections[name] = connection
            return connection

    @cached_property
    def decoding(self) -> DecodingClient:
        """The decoding service: :class:`~neuromesh.sdk.decoding.DecodingClient`."""
        return DecodingClient(self)

    @cached_property
    def reduction(self) -> ReductionClient:
        """The reduction service: :class:`~neuromesh.sdk.reduction.ReductionClient`."""
        return ReductionClient(self)

    @cached_property
    def simulation(self) -> SimulationClient:
        """The simulation service: :class:`~neuromesh.sdk.simulation.SimulationClient`."""
        return SimulationClient(self)

    @cached_property
    def segmentation(self) -> SegmentationClient:
        """The segmentation service: :class:`~neuromesh.sdk.segmentation.SegmentationClient`."""
        return SegmentationClient(self)

    @cached_property
    def connectomics(self) -> ConnectomicsClient:
        """The connectomics service: :class:`~neuromesh.sdk.connectomics.ConnectomicsClient`."""
        return ConnectomicsClient(self)

    def services(self) -> dict[str, Any]:
        """The per-service clients of the configured endpoints, by name.

        Examples
        --------
        >>> sorted(Client().services())
        ['connectomics', 'decoding', 'reduction', 'segmentation', 'simulation']
        """
        return {name: getattr(self, name) for name in sorted(self.endpoints)}

    def health(self) -> dict[str, str]:
        """grpc.health.v1 status of every configured service ("SERVING", "UNAVAILABLE", ...).

        Examples
        --------
        >>> Client.local().health()                                 # doctest: +SKIP
        {'connectomics': 'SERVING', 'decoding': 'SERVING', ...}
        """
        return {name: service.health() for name, service in self.services().items()}

    def info(self) -> dict[str, dict[str, str]]:
        """What each configured service runs (name, proto service, versions), or its error.

        Examples
        --------
        >>> Client.local().info()["simulation"]["version"]          # doctest: +SKIP
        '3'
        """
        out: dict[str, dict[str, str]] = {}
        for name, service in self.services().items():
            try:
                out[name] = service.info()
            except NeuroMeshError as exc:
                out[name] = {"error": str(exc)}
        return out

    # --- lifetime

    def close(self) -> None:
        """Close every channel (calls in flight are cancelled). The client cannot be used after.

        Examples
        --------
        >>> client = Client(); client.close(); client.close()      # closing twice is harmless
        """
        with self._lock:
            self._closed = True
            connections, self._connections = list(self._connections.values()), {}
        for connection in connections:
            connection.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        services = ", ".join(f"{name}={target}" for name, target in sorted(self.endpoints.items()))
        return f"Client({services}; s3://{self.bucket} at {self.s3_endpoint}{'; closed' if self._closed else ''})"
