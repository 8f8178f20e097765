"""The gateway as a local process: ``python -m gateway`` with its settings, health-waited on ``/readyz``.

The local stack starts one (HTTP on 8080 + the port offset, a SQLite job store and a dev token
under the state directory); the tests start them on free ports, against SQLite or PostgreSQL.

A **dev token** is made once per state directory: ``gateway-token`` holds the token (mode 0600)
and ``gateway-tokens`` the line ``dev:<sha256 of it>`` that the gateway reads
(``NEUROMESH_GATEWAY_TOKENS_FILE``); a later ``up`` reuses it, so a page or a script keeps working.

Example
-------
>>> token, tokens_file = ensure_dev_token(Path(".neuromesh"))                  # doctest: +SKIP
>>> gw = GatewayProcess(http_port=8080, database_url="sqlite:///.neuromesh/jobs.db",
...                     env={"NEUROMESH_GATEWAY_TOKENS_FILE": str(tokens_file)})  # doctest: +SKIP
>>> gw.start(); gw.url                                                        # doctest: +SKIP
'http://127.0.0.1:8080'
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import signal
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from .processes import ManagedProcess

DEFAULT_HTTP_PORT = 8080
DEV_TENANT = "dev"
TOKEN_FILE = "gateway-token"
TOKENS_FILE = "gateway-tokens"


def http_status(url: str, timeout_s: float = 1.0) -> int | None:
    """The HTTP status ``url`` answers with, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as reply:
            return reply.status
    except urllib.error.HTTPError as err:
        return err.code
    except (urllib.error.URLError, OSError):
        return None


def gateway_health(address: str, timeout_s: float = 1.0) -> str:
    """SERVING when ``/readyz`` answers 200, NOT_SERVING for another answer, UNREACHABLE for none."""
    status = http_status(f"http://{address}/readyz", timeout_s)
    if status is None:
        return "UNREACHABLE"
    return "SERVING" if status == 200 else "NOT_SERVING"


def ensure_dev_token(state_dir: Path, tenant: str = DEV_TENANT) -> tuple[str, Path]:
    """The local stack's token (made on first use, then kept) and the tokens file the gateway reads."""
    state_dir.mkdir(parents=True, exist_ok=True)
    token_path, tokens_path = state_dir / TOKEN_FILE, state_dir / TOKENS_FILE
    if token_path.exists():
        token = token_path.read_text().strip()
    else:
        token = secrets.token_urlsafe(32)
        fd = os.open(token_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(token + "\n")
    digest = hashlib.sha256(token.encode()).hexdigest()
    tokens_path.write_text(f"# the local stack's dev token ({token_path.name}); lines are tenant:sha256(token)\n"
                           f"{tenant}:{digest}\n")
    return token, tokens_path


class GatewayProcess:
    """One ``python -m gateway`` child process.

    Parameters
    ----------
    http_port : int
        Where it serves HTTP (on ``host``).
    database_url : str
        Its job store (``sqlite:///...`` or ``postgresql+psycopg://...``).
    endpoints : mapping of str to list of str, optional
        Service -> gRPC targets (``NEUROMESH_GATEWAY_ENDPOINTS``).
    env : mapping, optional
        Any other ``NEUROMESH_*`` settings (object store, tokens, leases).
    log_path : Path, optional
        Where its output goes.
    """

    def __init__(self, *, http_port: int, database_url: str, endpoints: Mapping[str, Sequence[str]] | None = None,
                 env: Mapping[str, str] | None = None, log_path: Path | None = None, host: str = "127.0.0.1",
                 name: str = "gateway") -> None:
        self.host = host
        self.http_port = http_port
        self.env = {"NEUROMESH_GATEWAY_HTTP_HOST": host, "NEUROMESH_GATEWAY_HTTP_PORT": str(http_port),
                    "NEUROMESH_GATEWAY_DATABASE_URL": database_url,
                    **({"NEUROMESH_GATEWAY_ENDPOINTS": json.dumps({k: list(v) for k, v in endpoints.items()})}
                       if endpoints else {}),
                    **dict(env or {})}
        self.process = ManagedProcess(name, [sys.executable, "-m", "gateway"], env=self.env, log_path=log_path)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.http_port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def start(self, timeout_s: float = 60.0) -> "GatewayProcess":
        self.process.start()
        self.process.wait_healthy(lambda: gateway_health(self.address) == "SERVING", timeout_s=timeout_s,
                                  interval_s=0.2)
        return self

    def stop(self, timeout_s: float = 20.0) -> int | None:
        """SIGTERM (the runner drains), then SIGKILL after ``timeout_s``."""
        return self.process.stop(timeout_s)

    def kill(self) -> None:
        """SIGKILL, as a crash: nothing is released, leases expire."""
        if self.process.popen is not None and self.process.running:
            os.killpg(self.process.popen.pid, signal.SIGKILL)
            self.process.popen.wait(timeout=10)
