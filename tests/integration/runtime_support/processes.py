"""Service processes for integration tests: ``python -m services.<name>`` against a real S3 server."""

from __future__ import annotations

import sys

from neuromesh.stack.health import grpc_health_status
from neuromesh.stack.processes import ManagedProcess, free_port


class ServiceProcess:
    """A service started as ``python -m services.<name>`` on free ports, against a real S3 server."""

    def __init__(self, spec, s3_server, bucket: str, log_path, **settings: str) -> None:
        self.spec = spec
        self.grpc_port, self.metrics_port = free_port(), free_port()
        env = {"NEUROMESH_GRPC_PORT": str(self.grpc_port), "NEUROMESH_METRICS_PORT": str(self.metrics_port),
               "NEUROMESH_S3_ENDPOINT": s3_server.endpoint, "NEUROMESH_S3_ACCESS_KEY": s3_server.access_key,
               "NEUROMESH_S3_SECRET_KEY": s3_server.secret_key, "NEUROMESH_BUCKET": bucket,
               "NEUROMESH_DRAIN_GRACE_S": "2", **{f"NEUROMESH_{k.upper()}": v for k, v in settings.items()}}
        self.process = ManagedProcess(spec.name, [sys.executable, "-m", spec.module], env=env, log_path=log_path)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def start(self) -> "ServiceProcess":
        self.process.start()
        self.process.wait_healthy(lambda: grpc_health_status(self.address, self.spec.health_service) == "SERVING",
                                  timeout_s=90, interval_s=0.2)
        return self

    def stop(self) -> None:
        self.process.stop()

