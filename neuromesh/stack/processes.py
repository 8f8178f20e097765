"""Starting, health-waiting and stopping local server processes.

Example
-------
>>> import sys
>>> p = ManagedProcess("sleeper", [sys.executable, "-c", "import time; time.sleep(30)"])
>>> p.start(); p.running
True
>>> _ = p.stop(); p.running
False
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence


def free_port(host: str = "127.0.0.1", *, avoid: Collection[int] = ()) -> int:
    """A TCP port that is free on ``host`` now (the OS picks it), not one of ``avoid``.

    ``avoid`` holds ports that are free now but promised to a process that starts later (the
    local stack's service ports): the OS hands out ports from the same range, so without it a
    helper process could take a service's port first.
    """
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port not in avoid:
            return port
    raise OSError(f"no free port on {host} outside the {len(avoid)} reserved ones")


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class StartError(RuntimeError):
    """A process exited or did not become healthy in time; the message holds its log's tail."""


@dataclass
class ManagedProcess:
    """One child process with a log file, a health probe and a clean stop.

    The child gets its own session so that ``stop`` signals it and its children, and so that a
    Ctrl-C in the parent's terminal does not reach it directly.
    """

    name: str
    argv: Sequence[str]
    env: dict[str, str] | None = None
    log_path: Path | None = None
    cwd: Path | None = None
    popen: subprocess.Popen | None = field(default=None, init=False)

    def start(self) -> None:
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        try:
            self.popen = subprocess.Popen(
                list(self.argv), env={**os.environ, **(self.env or {})}, cwd=self.cwd,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            if self.log_path:
                log.close()

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log_tail(self, n_chars: int = 3000) -> str:
        if not self.log_path or not self.log_path.exists():
            return ""
        return self.log_path.read_bytes()[-n_chars:].decode(errors="replace")

    def wait_healthy(self, probe: Callable[[], bool], timeout_s: float = 60.0, interval_s: float = 0.1) -> None:
        """Poll ``probe`` until it returns True; raise StartError if the process dies or time runs out."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.running:
                raise StartError(f"{self.name} exited with status {self.popen.returncode if self.popen else '?'}"
                                 f" before it was healthy; its log ends:\n{self.log_tail()}")
            try:
                if probe():
                    return
            except Exception:  # a probe that fails to connect is simply 'not yet'
                pass
            time.sleep(interval_s)
        raise StartError(f"{self.name} was not healthy after {timeout_s:.0f} s; its log ends:\n{self.log_tail()}")

    def stop(self, timeout_s: float = 20.0) -> int | None:
        """SIGTERM the process group, wait, then SIGKILL what is left; return the exit status."""
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            terminate_group(self.popen.pid, timeout_s, lambda: self.popen.poll() is not None)
        try:
            return self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return None


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs. Reaps it first if it is our exited child (a zombie still 'exists')."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def terminate_group(pid: int, timeout_s: float, finished: Callable[[], bool] | None = None) -> None:
    """SIGTERM the process group led by ``pid``; SIGKILL it if it is still there after ``timeout_s``."""
    finished = finished or (lambda: not pid_alive(pid))
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if finished():
            return
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
