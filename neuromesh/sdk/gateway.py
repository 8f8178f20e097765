"""The gateway's HTTP API from Python (standard library only): uploads, pipelines, jobs, downloads.

:class:`GatewayClient` is one tenant's view of one gateway: it uploads files and arrays through
the gateway's presigned URLs (the bytes go straight to the object store, streamed from disk),
submits jobs (a DAG of steps, or a named pipeline), follows them (polling, or the server-sent
event stream), cancels them, and downloads their outputs checked against their sha256. Answers
are the API's JSON documents (``GET /v1/openapi.json`` describes every field); errors are
:class:`GatewayError` (the gateway answered with an error) or :class:`GatewayUnreachable`
(nothing answered). ``neuromesh`` (the command line) is built on it.

Example
-------
>>> gw = GatewayClient.local()          # the stack of `neuromesh up`: its URL and dev token  # doctest: +SKIP
>>> gw.upload_array("em/raw", raw)["sha256"][:12]                                        # doctest: +SKIP
'bbe3fe6fdb38'
>>> job = gw.run_pipeline("em-to-connectome", inputs={"raw": "em/raw"},
...                       params={"thresholds": [0.5]})                                  # doctest: +SKIP
>>> for event, data in gw.events(job["id"]):                                            # doctest: +SKIP
...     print(event, data.get("state") or data["step"]["progress"])
>>> job = gw.job(job["id"])                                                              # doctest: +SKIP
>>> gw.download_to(job["steps"][0]["outputs"]["figure"], "segment.png")                  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TERMINAL_STATES = frozenset({"succeeded", "failed", "cancelled"})
#: Where inputs given as files or arrays are uploaded: ``<prefix>/<sha256>/<name>``, so the same
#: content is uploaded once and every later job reuses it
UPLOAD_PREFIX = "uploads"
#: Files uploaded as arrays (the gateway stores them as Zarr v3 arrays); others go as objects
ARRAY_SUFFIXES = (".npy", ".tif", ".tiff")
#: Bytes read at a time when hashing, uploading and downloading files
CHUNK_BYTES = 1 << 20


class KeyTaken(ValueError):
    """An upload to a key that holds other content: artifacts are never overwritten."""


class GatewayError(RuntimeError):
    """An error answer of the gateway: its HTTP status and ``{"reason", "message", "field"}``."""

    def __init__(self, status: int, error: Mapping[str, Any]) -> None:
        self.status = status
        self.reason = str(error.get("reason", ""))
        self.message = str(error.get("message", ""))
        self.field = str(error.get("field", ""))
        super().__init__(f"HTTP {status} {self.reason}: {self.message}")


class GatewayUnreachable(ConnectionError):
    """Nothing answered at the gateway's URL (not started, wrong address, a network problem)."""


@dataclass(frozen=True)
class JobOutput:
    """One output of a finished step: where it is stored and what it holds.

    ``download_url`` is a presigned GET of a single object (a figure, a report, a table); arrays
    have none and are read with zarr from ``uri`` (or ``neuromesh download`` as ``.npy``).
    """

    name: str
    key: str
    uri: str
    sha256: str
    media_type: str
    size_bytes: int
    shape: tuple[int, ...] | None = None
    dtype: str | None = None
    download_url: str | None = None

    @classmethod
    def from_json(cls, name: str, doc: Mapping[str, Any]) -> "JobOutput":
        shape = doc.get("shape")
        return cls(name=name, key=doc["key"], uri=doc["uri"], sha256=doc["sha256"], media_type=doc["media_type"],
                   size_bytes=int(doc["size_bytes"]), shape=tuple(shape) if shape is not None else None,
                   dtype=doc.get("dtype"), download_url=doc.get("download_url"))

    def as_json(self) -> dict[str, Any]:
        """The document :meth:`GatewayClient.download` and :meth:`GatewayClient.download_to` take."""
        return {"key": self.key, "uri": self.uri, "sha256": self.sha256, "media_type": self.media_type,
                "size_bytes": self.size_bytes, "shape": list(self.shape) if self.shape is not None else None,
                "dtype": self.dtype, "download_url": self.download_url}


@dataclass(frozen=True)
class JobStep:
    """One step of a job: a service call, its state, progress, error and outputs."""

    id: str
    service: str
    method: str
    state: str
    progress: float | None
    reused: bool
    error: tuple[str, str] | None          # (gRPC code name, the service's message)
    outputs: dict[str, JobOutput]

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> "JobStep":
        error = doc.get("error")
        return cls(id=doc["id"], service=doc["service"], method=doc["method"], state=doc["state"],
                   progress=doc.get("progress"), reused=bool(doc.get("reused")),
                   error=(error["code"], error["message"]) if error else None,
                   outputs={n: JobOutput.from_json(n, o) for n, o in (doc.get("outputs") or {}).items()})


@dataclass(frozen=True)
class Job:
    """A job as the gateway reported it; ``document`` is the whole JSON answer.

    Examples
    --------
    >>> job = Job.from_json({"id": "j1", "state": "failed", "progress": 0.5, "steps": [
    ...     {"id": "fit", "service": "reduction", "method": "Fit", "state": "failed", "reused": False,
    ...      "error": {"code": "INVALID_ARGUMENT", "message": "activity has NaN"}, "outputs": {}}]})
    >>> job.ended, job.succeeded, job.failure
    (True, False, 'step fit (reduction.Fit): INVALID_ARGUMENT: activity has NaN')
    """

    id: str
    state: str
    progress: float
    steps: list[JobStep]
    error: tuple[str, str] | None
    document: dict[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> "Job":
        error = doc.get("error")
        return cls(id=doc["id"], state=doc["state"], progress=float(doc.get("progress") or 0.0),
                   steps=[JobStep.from_json(s) for s in doc.get("steps", [])],
                   error=(error["code"], error["message"]) if error else None, document=dict(doc))

    @property
    def ended(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def succeeded(self) -> bool:
        return self.state == "succeeded"

    @property
    def failure(self) -> str | None:
        """Why the job did not succeed, in the words of the service that failed it; None if it did."""
        if self.succeeded:
            return None
        for step in self.steps:
            if step.error:
                return f"step {step.id} ({step.service}.{step.method}): {step.error[0]}: {step.error[1]}"
        return f"{self.error[0]}: {self.error[1]}" if self.error else f"the job is {self.state}"

    def step(self, step_id: str) -> JobStep:
        found = next((s for s in self.steps if s.id == step_id), None)
        if found is None:
            raise KeyError(f"job {self.id} has no step {step_id!r}; its steps: {', '.join(s.id for s in self.steps)}")
        return found

    def output(self, name: str) -> JobOutput:
        """An output by ``"STEP/OUTPUT"``, e.g. ``job.output("segment/figure")``."""
        step_id, sep, output = name.partition("/")
        if not sep or not output:
            raise KeyError(f"name a step's output as STEP/OUTPUT (e.g. segment/figure), not {name!r}")
        step = self.step(step_id)
        if output not in step.outputs:
            names = ", ".join(sorted(step.outputs)) or f"none yet (the step is {step.state})"
            raise KeyError(f"step {step_id} has no output {output!r}; its outputs: {names}")
        return step.outputs[output]


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
    ca_file : path, optional
        PEM bundle of the certificate authorities to trust for an ``https://`` gateway (and
        presigned URLs) signed by an institution's own CA; default: the system's.

    Examples
    --------
    >>> gw = GatewayClient("http://127.0.0.1:8080/", "t0ken")
    >>> gw.url, gw._path("/v1/artifacts/", "sessions/s 1/counts")
    ('http://127.0.0.1:8080', '/v1/artifacts/sessions/s%201/counts')
    """

    def __init__(self, url: str, token: str, *, timeout_s: float = 60.0,
                 ca_file: str | os.PathLike[str] | None = None) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s
        self._ssl = None
        if ca_file is not None:
            import ssl

            self._ssl = ssl.create_default_context(cafile=str(ca_file))

    @classmethod
    def local(cls, state_dir: str | os.PathLike[str] | None = None, **options: Any) -> "GatewayClient":
        """The gateway of the local stack started by ``neuromesh up``, with its dev token.

        ``state_dir`` defaults to :func:`neuromesh.sdk.client.find_state_dir`. Raises
        :class:`GatewayUnreachable` when no stack with a gateway is recorded there.
        """
        from neuromesh.stack.gateway import TOKEN_FILE
        from neuromesh.stack.local import LocalStack

        from .client import find_state_dir

        folder = Path(state_dir).expanduser() if state_dir is not None else find_state_dir()
        state = LocalStack(folder).read_state() if folder is not None else None
        address = next((c.endpoint for c in state.components if c.kind == "http"), None) if state else None
        if address is None or not (folder / TOKEN_FILE).is_file():
            raise GatewayUnreachable(f"no local stack with a gateway is recorded in {folder or 'this directory'}: "
                                     "run `neuromesh up`, or give the gateway's URL and token")
        return cls(f"http://{address}", (folder / TOKEN_FILE).read_text().strip(), **options)

    @staticmethod
    def _path(prefix: str, key: str) -> str:
        return prefix + urllib.parse.quote(key, safe="/")

    def _open(self, request: urllib.request.Request, timeout_s: float):
        """``urlopen`` with the gateway's error document turned into :class:`GatewayError`."""
        try:
            return urllib.request.urlopen(request, timeout=timeout_s, context=self._ssl)
        except urllib.error.HTTPError as err:
            raw = err.read()
            try:
                error = json.loads(raw).get("error", {})
            except (ValueError, AttributeError):
                error = {"reason": "HTTP_ERROR", "message": raw.decode(errors="replace")[:500] or err.reason}
            raise GatewayError(err.code, error) from None
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise GatewayUnreachable(f"{request.full_url.split('?')[0]}: {reason}") from None

    def request(self, method: str, path: str, body: Any = None, *,
                headers: Mapping[str, str] | None = None) -> tuple[int, Any, Mapping[str, str]]:
        """(status, decoded JSON body, headers); raises :class:`GatewayError` on an error status."""
        data = json.dumps(body).encode() if body is not None else None
        all_headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json",
                       **({"Content-Type": "application/json"} if data is not None else {}), **dict(headers or {})}
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=all_headers)
        with self._open(request, self.timeout_s) as reply:
            raw = reply.read()
            return reply.status, json.loads(raw) if raw else None, dict(reply.headers)

    # ------------------------------------------------------------------ artifacts

    def _put_and_complete(self, key: str, kind: str, media_type: str | None, size: int, digest: str,
                          content: Any) -> dict[str, Any]:
        _, upload, _ = self.request("POST", "/v1/uploads", {"key": key, "kind": kind, "media_type": media_type,
                                                            "size_bytes": size, "sha256": digest})
        headers = {"Content-Length": str(size), **(upload.get("headers") or {})}
        put = urllib.request.Request(upload["url"], data=content, method="PUT", headers=headers)
        with self._open(put, self.timeout_s) as reply:
            reply.read()
        _, done, _ = self.request("POST", upload["complete_url"], {"sha256": digest})
        return done["artifact"]

    def upload(self, key: str, data: bytes, *, kind: str = "object",
               media_type: str | None = None) -> dict[str, Any]:
        """Upload ``data`` with one presigned PUT and complete it; return the stored artifact."""
        return self._put_and_complete(key, kind, media_type, len(data), hashlib.sha256(data).hexdigest(), data)

    def upload_file(self, key: str, path: str | os.PathLike[str], *, kind: str | None = None,
                    media_type: str | None = None) -> dict[str, Any]:
        """Upload a file, streamed from disk (never whole in memory); return the stored artifact.

        ``kind`` defaults to ``"array"`` for a ``.npy`` file (the gateway stores it as a Zarr v3
        array) and ``"object"`` otherwise. The gateway refuses a key that is taken (409).
        """
        path = Path(path)
        digest, size = file_digest(path)
        kind = kind or ("array" if path.suffix.lower() == ".npy" else "object")
        with path.open("rb") as f:
            return self._put_and_complete(key, kind, media_type, size, digest, f)

    def upload_once(self, key: str, path: str | os.PathLike[str], *, kind: str | None = None,
                    on_reuse: Callable[[str], None] | None = None) -> dict[str, Any]:
        """Upload a file to ``key`` unless the same content is stored there already; the artifact.

        ``kind`` defaults to ``"array"`` for ``.npy`` and TIFF files (a TIFF stack is read with
        tifffile and sent as the ``.npy`` the gateway converts), ``"object"`` otherwise.
        ``on_reuse(key)`` is called when nothing was uploaded. Raises :class:`KeyTaken` when
        ``key`` holds other content.
        """
        path = Path(path)
        kind = kind or ("array" if path.name.lower().endswith(ARRAY_SUFFIXES) else "object")
        try:
            existing = self.artifact(key)
        except GatewayError as exc:
            if exc.status != 404:
                raise
            existing = None
        if existing is not None:
            if existing["sha256"] == _content_sha256(path, kind):
                if on_reuse is not None:
                    on_reuse(key)
                return existing
            raise KeyTaken(f"{key} is taken by another artifact (sha256 {existing['sha256'][:12]}...); artifacts "
                           "are never overwritten: choose another key")
        if kind == "array" and path.suffix.lower() != ".npy":
            import numpy as np

            buffer = io.BytesIO()
            np.save(buffer, np.ascontiguousarray(_read_array(path)), allow_pickle=False)
            return self.upload(key, buffer.getvalue(), kind="array")
        return self.upload_file(key, path, kind=kind)

    def stage_input(self, value: Any, *, kind: str | None = None,
                    on_reuse: Callable[[str], None] | None = None) -> str:
        """The key of a job input: a NumPy array or a local file is uploaded once, under
        ``uploads/<sha256>/...``; a string that names no local file is taken as a key of yours.

        ``kind`` is the input's declared kind (``"array"`` or ``"object"``, as
        :meth:`pipelines` lists them): a file that cannot be that kind is refused (ValueError).

        Examples
        --------
        >>> gw.stage_input(np.zeros((4, 8, 8), "float32"))               # doctest: +SKIP
        'uploads/6f2b.../array'
        >>> gw.stage_input("em/raw")              # not a file here: a key  # doctest: +SKIP
        'em/raw'
        """
        if isinstance(value, (str, os.PathLike)) and (isinstance(value, os.PathLike)
                                                      or Path(value).expanduser().is_file()):
            path = Path(value).expanduser()
            if kind == "array" and not path.name.lower().endswith(ARRAY_SUFFIXES):
                raise ValueError(f"{path} for an array input: give a .npy or TIFF file, or the key of a stored "
                                 "array")
            key = f"{UPLOAD_PREFIX}/{file_digest(path)[0]}/{path.name}"
            return self.upload_once(key, path, kind=kind, on_reuse=on_reuse)["key"]
        if isinstance(value, str):
            return value
        if isinstance(value, Mapping) and isinstance(value.get("key"), str):
            return value["key"]                       # an artifact document, e.g. an earlier upload
        import numpy as np

        if isinstance(value, np.ndarray):
            from .artifacts import array_sha256

            key = f"{UPLOAD_PREFIX}/{array_sha256(value)}-{value.dtype}-{'x'.join(map(str, value.shape))}/array"
            try:
                found = self.artifact(key)         # the key names the content: stored means the same array
            except GatewayError as exc:
                if exc.status != 404:
                    raise
                return self.upload_array(key, value)["key"]
            if on_reuse is not None:
                on_reuse(key)
            return found["key"]
        raise ValueError(f"an input is a NumPy array, a file path or a key, not {type(value).__name__}")

    def upload_array(self, key: str, array: Any) -> dict[str, Any]:
        """Upload a NumPy array (as ``.npy``); the gateway stores it as a Zarr v3 array at ``key``."""
        import numpy as np

        buffer = io.BytesIO()
        np.save(buffer, np.asarray(array), allow_pickle=False)
        return self.upload(key, buffer.getvalue(), kind="array")

    def artifact(self, key: str) -> dict[str, Any]:
        """An artifact's metadata (and, for a single object, a presigned download URL)."""
        return self.request("GET", self._path("/v1/artifacts/", key))[1]

    def artifacts(self, prefix: str = "", *, limit: int = 100, cursor: str | None = None) -> dict[str, Any]:
        """One page of your artifacts under ``prefix``: ``{"artifacts": [...], "next_cursor"}``."""
        query = urllib.parse.urlencode({"prefix": prefix, "limit": limit, **({"cursor": cursor} if cursor else {})})
        return self.request("GET", f"/v1/artifacts?{query}")[1]

    def download(self, artifact: Mapping[str, Any]) -> bytes:
        """The bytes of a single-object artifact or output, checked against its sha256."""
        url = artifact.get("download_url")
        if not url:
            raise ValueError(f"{artifact.get('key')} has no download URL (an array: open it with zarr)")
        with self._open(urllib.request.Request(url), self.timeout_s) as reply:
            data = reply.read()
        if hashlib.sha256(data).hexdigest() != artifact["sha256"]:
            raise ValueError(f"{artifact.get('key')}: the download does not have the recorded sha256")
        return data

    def download_to(self, artifact: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
        """Stream a single-object artifact or output to ``path``, checked against its sha256.

        The bytes go to a temporary file beside ``path``, renamed into place only once their
        digest matches, so a failed or corrupted download never leaves a partial ``path``.
        """
        url = artifact.get("download_url")
        if not url:
            raise ValueError(f"{artifact.get('key')} has no download URL (an array: open it with zarr)")
        path = Path(path)
        fd, partial = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent or ".")
        try:
            digest = hashlib.sha256()
            with os.fdopen(fd, "wb") as out, self._open(urllib.request.Request(url), self.timeout_s) as reply:
                while chunk := reply.read(CHUNK_BYTES):
                    digest.update(chunk)
                    out.write(chunk)
            if digest.hexdigest() != artifact["sha256"]:
                raise ValueError(f"{artifact.get('key')}: the download does not have the recorded sha256")
            publish(partial, path)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise
        return path

    # ------------------------------------------------------------------ jobs

    def submit(self, job: Mapping[str, Any], *, idempotency_key: str | None = None) -> dict[str, Any]:
        """Submit a job (``{"steps": [...]}``); the accepted job (state ``pending``)."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return self.request("POST", "/v1/jobs", dict(job), headers=headers)[1]

    def pipelines(self) -> list[dict[str, Any]]:
        """The named pipelines: name, description, params schema, inputs."""
        return self.request("GET", "/v1/pipelines")[1]["pipelines"]

    def pipeline(self, name: str) -> dict[str, Any]:
        return self.request("GET", self._path("/v1/pipelines/", name))[1]

    def run_pipeline(self, name: str, *, inputs: Mapping[str, Any] | None = None,
                     params: Mapping[str, Any] | None = None,
                     idempotency_key: str | None = None) -> dict[str, Any]:
        """Submit a job made from a named pipeline; the accepted job.

        ``inputs`` maps the pipeline's input names to your artifact keys, local files or NumPy
        arrays (uploaded once by :meth:`stage_input`).
        """
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        staged = dict(inputs or {})
        if any(not isinstance(v, str) or Path(v).expanduser().is_file() for v in staged.values()):
            # something to upload: the pipeline's declared kinds check the files and arrays first
            kinds = {i["name"]: i["kind"] for i in self.pipeline(name).get("inputs", [])}
            staged = {n: self.stage_input(v, kind=kinds.get(n)) for n, v in staged.items()}
        body = {"params": dict(params or {}), "inputs": staged}
        return self.request("POST", self._path("/v1/pipelines/", name) + "/jobs", body, headers=headers)[1]

    def job(self, job_id: str) -> dict[str, Any]:
        return self.request("GET", self._path("/v1/jobs/", job_id))[1]

    def jobs(self, *, states: Sequence[str] = (), limit: int = 50, cursor: str | None = None) -> dict[str, Any]:
        """One page of your jobs, newest first: ``{"jobs": [...], "next_cursor"}``."""
        query = urllib.parse.urlencode([("state", s) for s in states] + [("limit", limit)]
                                       + ([("cursor", cursor)] if cursor else []))
        return self.request("GET", f"/v1/jobs?{query}")[1]

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self.request("POST", self._path("/v1/jobs/", job_id) + ":cancel")[1]

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
        request = urllib.request.Request(self.url + self._path("/v1/jobs/", job_id) + "/events",
                                         headers={"Authorization": f"Bearer {self.token}",
                                                  "Accept": "text/event-stream"})
        with self._open(request, timeout_s) as reply:
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


    def follow(self, job_id: str, *, show: bool | None = None, on_step: Callable[[dict[str, Any]], None] | None = None,
               cancel_on_interrupt: bool = True, timeout_s: float = 24 * 3600.0) -> Job:
        """Follow a job to its end on its event stream; the ended :class:`Job`.

        A progress bar (tqdm: a widget in notebooks, text in terminals) shows the job's fraction
        done and the step that moved last, when stderr is a terminal or in a notebook
        (``show=None``), always (``True``) or never (``False``). ``on_step(step)`` gets each
        step's JSON when it changes. **Ctrl-C** (``KeyboardInterrupt``) cancels the job on the
        server, its running calls included, then propagates (``cancel_on_interrupt=False``
        leaves the job running). A stream that ends early (a gateway replica stopping) is
        opened again; ``TimeoutError`` after ``timeout_s`` (the job goes on).
        """
        from .progress import interactive

        bar = None
        if show or (show is None and interactive()):
            from tqdm.auto import tqdm

            bar = tqdm(total=1.0, desc=f"job {job_id[:8]}", file=sys.stderr, dynamic_ncols=True, leave=True,
                       bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}")
        done: dict[str, float] = {}

        def update(step: Mapping[str, Any]) -> None:
            done[step["id"]] = 1.0 if step["state"] in ("succeeded", "skipped") else float(step.get("progress") or 0)
            if bar is not None:
                bar.n = sum(done.values()) / max(1, len(done))
                bar.set_description_str(f"job {job_id[:8]} {step['id']} {step['state']}", refresh=True)
            if on_step is not None:
                on_step(dict(step))

        deadline = time.monotonic() + timeout_s
        try:
            while time.monotonic() < deadline:
                try:
                    for event, data in self.events(job_id, timeout_s=max(1.0, deadline - time.monotonic())):
                        if event == "end":
                            return Job.from_json(data)
                        for step in data.get("steps") or ([data["step"]] if "step" in data else []):
                            update(step)
                except GatewayUnreachable:
                    time.sleep(1.0)
                job = self.job(job_id)
                if job["state"] in TERMINAL_STATES:
                    return Job.from_json(job)
            raise TimeoutError(f"job {job_id} did not end within {timeout_s:g} s (it goes on)")
        except KeyboardInterrupt:
            if cancel_on_interrupt:
                self.cancel(job_id)
            raise
        finally:
            if bar is not None:
                bar.close()


def _read_array(path: Path) -> Any:
    import numpy as np

    if path.suffix.lower() in (".tif", ".tiff"):
        import tifffile

        return tifffile.imread(path)
    return np.load(path, mmap_mode="r", allow_pickle=False)


def _content_sha256(path: Path, kind: str) -> str:
    """The sha256 the gateway records for ``path`` uploaded as ``kind`` (arrays: of their C-order data)."""
    if kind == "array":
        from .artifacts import array_sha256

        return array_sha256(_read_array(path))
    return file_digest(path)[0]


def publish(partial: str | os.PathLike[str], path: str | os.PathLike[str]) -> None:
    """Move a finished temporary file into place, with the mode a new file gets (``mkstemp`` makes 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(partial, 0o666 & ~umask)
    os.replace(partial, path)


def file_digest(path: str | os.PathLike[str]) -> tuple[str, int]:
    """(hex sha256, size in bytes) of a file, read a chunk at a time.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile() as f:
    ...     _ = f.write(b"abc"); f.flush()
    ...     file_digest(f.name)[0][:16], file_digest(f.name)[1]
    ('ba7816bf8f01cfea', 3)
    """
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size
