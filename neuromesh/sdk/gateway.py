"""A small Python client of the gateway's HTTP API (standard library only): upload, submit, watch, download.

Example
-------
>>> client = GatewayClient("http://127.0.0.1:8080", token)                               # doctest: +SKIP
>>> client.upload_array("sessions/s1/activity", counts)["sha256"][:12]                  # doctest: +SKIP
'bbe3fe6fdb38'
>>> job = client.submit({"steps": [{"id": "sim", "service": "simulation", "method": "Simulate",
...                                 "params": {"duration_ms": 1000}}]})                  # doctest: +SKIP
>>> for event, data in client.events(job["id"]):                                        # doctest: +SKIP
...     print(event, data.get("state") or data["step"]["progress"])
>>> png = client.download(client.job(job["id"])["steps"][0]["outputs"]["figure"])       # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import io
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from typing import Any

TERMINAL_STATES = frozenset({"succeeded", "failed", "cancelled"})


class GatewayError(RuntimeError):
    """An error answer of the gateway: its HTTP status and ``{"reason", "message", "field"}``."""

    def __init__(self, status: int, error: Mapping[str, Any]) -> None:
        self.status = status
        self.reason = str(error.get("reason", ""))
        self.message = str(error.get("message", ""))
        self.field = str(error.get("field", ""))
        super().__init__(f"HTTP {status} {self.reason}: {self.message}")


class GatewayClient:
    """Calls of one tenant (its bearer token) on one gateway.

    Parameters
    ----------
    url : str
        ``http://host:port`` of the gateway.
    token : str
        The tenant's bearer token.
    timeout_s : float
        Per request (not for event streams, which last as long as their job).
    """

    def __init__(self, url: str, token: str, *, timeout_s: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s

    def request(self, method: str, path: str, body: Any = None, *,
                headers: Mapping[str, str] | None = None) -> tuple[int, Any, Mapping[str, str]]:
        """(status, decoded JSON body, headers); raises :class:`GatewayError` on an error status."""
        data = json.dumps(body).encode() if body is not None else None
        all_headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json",
                       **({"Content-Type": "application/json"} if data is not None else {}), **dict(headers or {})}
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=all_headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as reply:
                raw = reply.read()
                return reply.status, json.loads(raw) if raw else None, dict(reply.headers)
        except urllib.error.HTTPError as err:
            raw = err.read()
            try:
                error = json.loads(raw).get("error", {})
            except ValueError:
                error = {"reason": "HTTP_ERROR", "message": raw.decode(errors="replace")[:500]}
            raise GatewayError(err.code, error) from None

    # ------------------------------------------------------------------ artifacts

    def upload(self, key: str, data: bytes, *, kind: str = "object",
               media_type: str | None = None) -> dict[str, Any]:
        """Upload ``data`` with one presigned PUT and complete it; return the stored artifact."""
        digest = hashlib.sha256(data).hexdigest()
        _, upload, _ = self.request("POST", "/v1/uploads", {"key": key, "kind": kind, "media_type": media_type,
                                                            "size_bytes": len(data), "sha256": digest})
        put = urllib.request.Request(upload["url"], data=data, method="PUT", headers=upload.get("headers") or {})
        with urllib.request.urlopen(put, timeout=self.timeout_s) as reply:
            reply.read()
        _, done, _ = self.request("POST", upload["complete_url"], {"sha256": digest})
        return done["artifact"]

    def upload_array(self, key: str, array: Any) -> dict[str, Any]:
        """Upload a NumPy array (as ``.npy``); the gateway stores it as a Zarr v3 array at ``key``."""
        import numpy as np

        buffer = io.BytesIO()
        np.save(buffer, np.asarray(array), allow_pickle=False)
        return self.upload(key, buffer.getvalue(), kind="array")

    def artifact(self, key: str) -> dict[str, Any]:
        return self.request("GET", f"/v1/artifacts/{key}")[1]

    def download(self, artifact: Mapping[str, Any]) -> bytes:
        """The bytes of a single-object artifact or output, checked against its sha256."""
        url = artifact.get("download_url")
        if not url:
            raise ValueError(f"{artifact.get('key')} has no download URL (an array: open it with zarr)")
        with urllib.request.urlopen(url, timeout=self.timeout_s) as reply:
            data = reply.read()
        if hashlib.sha256(data).hexdigest() != artifact["sha256"]:
            raise ValueError(f"{artifact.get('key')}: the download does not have the recorded sha256")
        return data

    # ------------------------------------------------------------------ jobs

    def submit(self, job: Mapping[str, Any], *, idempotency_key: str | None = None) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return self.request("POST", "/v1/jobs", dict(job), headers=headers)[1]

    def job(self, job_id: str) -> dict[str, Any]:
        return self.request("GET", f"/v1/jobs/{job_id}")[1]

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self.request("POST", f"/v1/jobs/{job_id}:cancel")[1]

    def wait(self, job_id: str, *, timeout_s: float = 300.0, poll_s: float = 0.25) -> dict[str, Any]:
        """Poll until the job has ended; return it. ``TimeoutError`` after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            job = self.job(job_id)
            if job["state"] in TERMINAL_STATES:
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} is still {job['state']} after {timeout_s} s")
            time.sleep(poll_s)

    def events(self, job_id: str, *, timeout_s: float = 600.0) -> Iterator[tuple[str, dict[str, Any]]]:
        """The job's server-sent events as (event, data) until the stream ends (after ``end``)."""
        request = urllib.request.Request(f"{self.url}/v1/jobs/{job_id}/events",
                                         headers={"Authorization": f"Bearer {self.token}",
                                                  "Accept": "text/event-stream"})
        try:
            reply = urllib.request.urlopen(request, timeout=timeout_s)
        except urllib.error.HTTPError as err:
            raise GatewayError(err.code, json.loads(err.read() or b"{}").get("error", {})) from None
        with reply:
            event, data = "message", []
            for raw in reply:
                line = raw.decode().rstrip("\r\n")
                if not line:
                    if data:
                        yield event, json.loads("\n".join(data))
                    event, data = "message", []
                elif line.startswith(":"):
                    continue
                elif line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].strip())
