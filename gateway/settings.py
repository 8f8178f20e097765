"""Settings of the gateway's HTTP layer and gRPC executor, read from ``NEUROMESH_GATEWAY_*`` variables.

The job engine reads its own section of the same prefix (:mod:`gateway.jobs.settings`: database URL,
leases, retries); the object store and logs come from the common :mod:`services.common.settings`.
One ``.env`` file therefore configures a whole gateway. Values are validated when the process
starts; a bad one stops it with a message naming the variable.

``NEUROMESH_GATEWAY_ENDPOINTS`` is a JSON object: service name -> list of ``host:port`` targets
(several replicas; a call that fails UNAVAILABLE on one moves to the next live one), or a single
gRPC target such as ``dns:///segmentation.neuromesh.svc.cluster.local:50054`` (a Kubernetes headless
service, balanced round-robin by gRPC over the addresses the name resolves to). Services not named
there are reached at ``127.0.0.1`` on their default port (:mod:`services.common.registry`).

``NEUROMESH_GATEWAY_TOKENS`` is a JSON object tenant -> SHA-256 hex digest of a bearer token (or a
list of them, for rotation); ``NEUROMESH_GATEWAY_TOKENS_FILE`` names a file with the same, as JSON or
as ``tenant:digest`` lines (see :mod:`gateway.auth`). Only digests are configured, never tokens.

Example
-------
>>> import os
>>> os.environ["NEUROMESH_GATEWAY_ENDPOINTS"] = '{"segmentation": ["127.0.0.1:50054", "127.0.0.1:50154"]}'
>>> load_gateway_settings().endpoints["segmentation"]
['127.0.0.1:50054', '127.0.0.1:50154']
>>> del os.environ["NEUROMESH_GATEWAY_ENDPOINTS"]
>>> load_gateway_settings(endpoints={"reduction": "dns:///reduction:50052"}).endpoints
{'reduction': ['dns:///reduction:50052']}
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common.settings import ENV_PREFIX, SettingsError

GATEWAY_ENV_PREFIX = ENV_PREFIX + "GATEWAY_"
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_TARGET = re.compile(r"^(dns:///[A-Za-z0-9.-]+(:[0-9]{1,5})?|\[?[A-Za-z0-9.:-]+\]?:[0-9]{1,5})$")
_SERVICE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")


class GatewaySettings(BaseSettings):
    """HTTP and executor settings; each field is read from ``NEUROMESH_GATEWAY_<FIELD NAME IN CAPITALS>``."""

    model_config = SettingsConfigDict(env_prefix=GATEWAY_ENV_PREFIX, extra="ignore", frozen=True)

    # --- HTTP
    http_host: str = Field("127.0.0.1", description="address the HTTP server binds (0.0.0.0 in a container)")
    http_port: int = Field(8080, ge=1, le=65535, description="HTTP port")
    max_body_bytes: int = Field(1024 * 1024, ge=1024, le=256 * 1024 * 1024,
                                description="largest request body (job specifications are small JSON); bigger "
                                            "ones are refused with 413 before they are read")
    run_jobs: bool = Field(True, description="whether this process runs jobs' steps (false: an API-only replica; "
                                             "python -m gateway.jobs.worker processes run them)")
    graceful_shutdown_s: float = Field(5.0, ge=0, description="open connections (event streams) get this long "
                                                              "to close when the gateway stops")

    # --- tenants
    tokens: dict[str, list[str]] = Field(default_factory=dict, description="tenant -> SHA-256 hex digests of its "
                                                                           "bearer tokens")
    tokens_file: Path | None = Field(None, description="file of tenant digests (JSON, or tenant:digest lines); "
                                                       "re-read when it changes")

    # --- services
    endpoints: dict[str, list[str]] = Field(default_factory=dict, description="service -> gRPC targets")
    health_interval_s: float = Field(2.0, gt=0, le=300, description="how often each replica's health is checked")
    service_info_ttl_s: float = Field(30.0, ge=0, description="how long a service's reported version is trusted")
    call_timeout_s: float = Field(24 * 3600.0, gt=0, description="deadline of one service call")

    # --- artifacts
    max_upload_bytes: int = Field(5 * 2**30, ge=1, le=5 * 2**30, description="largest upload (one presigned "
                                                                            "PUT: S3 allows 5 GiB)")
    max_array_upload_bytes: int = Field(2 * 2**30, ge=1, description="largest .npy turned into a Zarr array "
                                                                    "(the gateway converts it on local disk)")
    upload_url_expiry_s: int = Field(3600, ge=60, le=7 * 86400)
    download_url_expiry_s: int = Field(3600, ge=60, le=7 * 86400)
    s3_public_endpoint: str | None = Field(None, description="host:port that browsers and clients reach the object "
                                                             "store at, when it differs from NEUROMESH_S3_ENDPOINT "
                                                             "(presigned URLs are signed for it)")
    s3_public_secure: bool = Field(False, description="presigned URLs use HTTPS")
    max_listed_objects: int = Field(100_000, ge=100, description="objects one artifact listing may scan")

    # --- event streams
    events_poll_s: float = Field(0.5, gt=0, le=10, description="how often an event stream reads the job")
    events_heartbeat_s: float = Field(15.0, gt=0, le=300, description="comment lines that keep proxies from "
                                                                      "closing an idle stream")

    @field_validator("endpoints", mode="before")
    @classmethod
    def _one_target_is_a_list(cls, value: object) -> object:
        if isinstance(value, dict):
            return {k: [v] if isinstance(v, str) else v for k, v in value.items()}
        return value

    @field_validator("endpoints")
    @classmethod
    def _targets_look_like_targets(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for service, targets in value.items():
            if not _SERVICE.match(service):
                raise ValueError(f"{service!r} is not a service name")
            if not targets:
                raise ValueError(f"service {service!r} has no targets")
            for target in targets:
                if not _TARGET.match(target):
                    raise ValueError(f"{service}: {target!r} is not host:port or dns:///name[:port]")
            if len(targets) > 1 and any(t.startswith("dns:///") for t in targets):
                raise ValueError(f"{service}: a dns:/// target stands alone (gRPC balances over its addresses)")
        return value

    @field_validator("tokens", mode="before")
    @classmethod
    def _one_digest_is_a_list(cls, value: object) -> object:
        if isinstance(value, dict):
            return {k: [v] if isinstance(v, str) else v for k, v in value.items()}
        return value

    @field_validator("tokens")
    @classmethod
    def _digests_only(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for tenant, digests in value.items():
            for digest in digests:
                if not _DIGEST.match(digest):
                    raise ValueError(f"tenant {tenant!r} has a value that is not a lower-case hex SHA-256 digest "
                                     "(configure sha256(token), never the token)")
        return value


def load_gateway_settings(**overrides: object) -> GatewaySettings:
    """Read and validate the gateway settings; ``overrides`` win over the environment.

    Raises
    ------
    SettingsError
        naming each bad variable, its value and what was expected.
    """
    try:
        return GatewaySettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for e in exc.errors():
            value = e.get("input")
            # a token digest is not a secret, but a wrongly pasted token would be: never echo those
            shown = "<hidden>" if e["loc"] and e["loc"][0] == "tokens" else repr(value)
            lines.append(f"  {GATEWAY_ENV_PREFIX}{str(e['loc'][0]).upper() if e['loc'] else ''}={shown}: {e['msg']}")
        raise SettingsError("invalid NeuroMesh gateway settings:\n" + "\n".join(lines)) from None
