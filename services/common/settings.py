"""Settings of a service process, read from ``NEUROMESH_*`` environment variables.

Every service and the gateway read the same class, so one ``.env`` file configures a whole
stack. Values are validated when the process starts: a bad value stops it with a message that
names the variable, instead of failing later inside a request.

Example
-------
>>> import os
>>> os.environ["NEUROMESH_GRPC_PORT"] = "50061"
>>> load_settings().grpc_port
50061
>>> del os.environ["NEUROMESH_GRPC_PORT"]
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "NEUROMESH_"


class Settings(BaseSettings):
    """Process settings; each field is read from ``NEUROMESH_<FIELD NAME IN CAPITALS>``."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    # --- gRPC server
    grpc_host: str = Field("127.0.0.1", description="address the gRPC server binds")
    grpc_port: int = Field(50051, ge=0, le=65535, description="gRPC port; 0 picks a free one")
    metrics_port: int = Field(9464, ge=0, le=65535, description="HTTP port of /metrics; 0 picks a free one")
    drain_grace_s: float = Field(10.0, ge=0, description="seconds in-flight calls may finish after SIGTERM")
    drain_notice_s: float = Field(0.0, ge=0, description="seconds between reporting NOT_SERVING and refusing "
                                  "new calls, so polling health checks (Kubernetes readiness) see the drain")
    max_message_bytes: int = Field(16 * 1024 * 1024, ge=1024, description="largest gRPC message accepted")

    # --- object store (any S3 API: SeaweedFS locally, MinIO when deployed)
    s3_endpoint: str = Field("127.0.0.1:8333", description="host:port of the S3 server")
    s3_access_key: str = Field("neuromesh", min_length=1)
    s3_secret_key: str = Field("neuromesh-secret", min_length=1)
    s3_secure: bool = Field(False, description="use HTTPS to reach the S3 server")
    s3_region: str | None = Field(None, description="S3 region; None lets the SDK ask the server")
    bucket: str = Field("neuromesh", min_length=3, max_length=63, pattern=r"^[a-z0-9][a-z0-9.-]+[a-z0-9]$",
                        description="bucket that holds the artifacts of this stack")

    # --- compute
    compute_threads: int = Field(1, ge=1, le=256, description="BLAS/OpenMP/torch threads one request computes "
                                 "with; requests beyond cores // compute_threads wait their turn (two BLAS "
                                 "pools fighting over two cores are slower than one)")
    max_input_bytes: int = Field(8 * 2**30, ge=1, description="largest input a request may load into memory; "
                                 "a bigger one is refused with RESOURCE_EXHAUSTED before it is read")

    # --- logs
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"


class SettingsError(SystemExit):
    """Raised at start-up for invalid settings; exits with status 2 and a readable message."""

    def __init__(self, message: str) -> None:
        super().__init__(2)
        self.message = message

    def __str__(self) -> str:
        return self.message


def load_settings(**overrides: object) -> Settings:
    """Read and validate the settings from the environment; ``overrides`` win over it.

    Raises
    ------
    SettingsError
        naming each bad variable, its value and what was expected.
    """
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"])
            lines.append(f"  {ENV_PREFIX}{field.upper()}={err.get('input')!r}: {err['msg']}")
        raise SettingsError("invalid NeuroMesh settings:\n" + "\n".join(lines)) from None
