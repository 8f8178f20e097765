"""ASGI middleware of the gateway: authentication, request body limits, and HTTP request metrics.

:class:`AuthMiddleware` authenticates every ``/v1`` request (except the OpenAPI document and
the docs page) from its bearer token before anything else happens to it, so a request without a
valid token is 401 whatever its body, and the tenant is in ``scope["state"]["tenant"]`` for
the routes.

:class:`BodyLimitMiddleware` refuses a body larger than the limit with 413 *before* reading it: a
declared ``Content-Length`` over the limit is answered at once, and a body without one (chunked)
is counted as it arrives and cut off the moment it passes the limit. The route never runs, so a
refused request writes nothing anywhere.

:class:`HttpMetricsMiddleware` counts each answered request by method, route template and status,
and times it to its last byte (``neuromesh_gateway_http_*``).

Example
-------
>>> async def app(scope, receive, send): ...
>>> limited = BodyLimitMiddleware(app, max_body_bytes=1024)
>>> limited.max_body_bytes
1024
"""

from __future__ import annotations

import json
import re
import time
from typing import Any, Awaitable, Callable

from gateway.auth import TokenRegistry, Unauthenticated
from gateway.jobs.metrics import GatewayMetrics

PUBLIC_V1_PATHS = frozenset({"/v1/openapi.json", "/v1/docs"})

ASGIApp = Callable[[dict, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]]


class _BodyTooLarge(BaseException):
    """Raised from ``receive`` when a body passes the limit. A BaseException on purpose: FastAPI turns an
    ``Exception`` raised while it reads a body into a 400, and this must reach the middleware as a 413."""


async def _send_error(send, status: int, reason: str, message: str, field: str = "",
                      extra_headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
    body = json.dumps({"error": {"reason": reason, "message": message, "field": field}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close"), *extra_headers]})
    await send({"type": "http.response.body", "body": body})


class AuthMiddleware:
    """401 for a ``/v1`` request without a valid bearer token; the tenant into the scope's state otherwise."""

    def __init__(self, app: ASGIApp, *, tokens: TokenRegistry) -> None:
        self.app = app
        self.tokens = tokens

    async def __call__(self, scope: dict, receive, send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not (path == "/v1" or path.startswith("/v1/")) or path in PUBLIC_V1_PATHS:
            await self.app(scope, receive, send)
            return
        header = next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"authorization"), None)
        try:
            tenant = self.tokens.authenticate(header)
        except Unauthenticated as err:
            await _send_error(send, 401, err.reason, err.message,
                              extra_headers=((b"www-authenticate", b'Bearer realm="neuromesh"'),))
            return
        scope.setdefault("state", {})["tenant"] = tenant
        await self.app(scope, receive, send)


class BodyLimitMiddleware:
    """Answer 413 to requests whose body is larger than ``max_body_bytes``, without reading it."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: dict, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        message = f"the request body is larger than {limit} bytes; bulk data goes to the object store " \
                  "through an upload (POST /v1/uploads)"
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _send_error(send, 400, "INVALID_ARGUMENT", "Content-Length is not a number")
                    return
                if declared > limit:
                    await _send_error(send, 413, "PAYLOAD_TOO_LARGE", message)
                    return
        seen = 0
        started = False

        async def limited_receive() -> dict:
            nonlocal seen
            event = await receive()
            if event["type"] == "http.request":
                seen += len(event.get("body", b""))
                if seen > limit:
                    raise _BodyTooLarge
            return event

        async def tracking_send(event: dict) -> None:
            nonlocal started
            if event["type"] == "http.response.start":
                started = True
            await send(event)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await _send_error(send, 413, "PAYLOAD_TOO_LARGE", message)


def _template_pattern(template: str, last_takes_slashes: bool) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", template)
    params = [i for i, p in enumerate(parts) if p.startswith("{")]
    out = []
    for i, part in enumerate(parts):
        if not part.startswith("{"):
            out.append(re.escape(part))
        else:
            out.append(".+" if last_takes_slashes and i == params[-1] else "[^/]+")
    return re.compile("^" + "".join(out) + "$")


class RouteTemplates:
    """Route templates (``/v1/jobs/{job_id}``) to label a path with, from a list of templates given late.

    Used for requests answered before the router has seen them (401, 413), which carry no route.
    """

    def __init__(self, templates: Callable[[], list[str]]) -> None:
        self._templates = templates
        self._patterns: list[tuple[re.Pattern[str], str]] | None = None

    def match(self, path: str) -> str | None:
        if self._patterns is None:
            templates = self._templates()
            self._patterns = [(_template_pattern(t, False), t) for t in templates] + \
                             [(_template_pattern(t, True), t) for t in templates if "{" in t]
        return next((template for pattern, template in self._patterns if pattern.match(path)), None)


def route_template(scope: dict, templates: RouteTemplates | None = None) -> str:
    """The route a request matched, as its template (``/v1/jobs/{job_id}``); bounded label values."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    if scope.get("path", "").startswith("/static/"):
        return "/static"
    if templates is not None:
        found = templates.match(scope.get("path", ""))
        if found is not None:
            return found
    return "unmatched"


class HttpMetricsMiddleware:
    """Count and time every HTTP request by method, route template and status."""

    def __init__(self, app: ASGIApp, *, metrics: GatewayMetrics,
                 templates: Callable[[], list[str]] | None = None) -> None:
        self.app = app
        self.metrics = metrics
        self.templates = RouteTemplates(templates) if templates is not None else None

    async def __call__(self, scope: dict, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: dict[str, Any] = {"code": 500}

        async def recording_send(event: dict) -> None:
            if event["type"] == "http.response.start":
                status["code"] = int(event["status"])
            await send(event)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            method = scope.get("method", "GET")
            if method not in ("GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"):
                method = "other"
            self.metrics.http_request(method, route_template(scope, self.templates), status["code"],
                                      time.perf_counter() - started)
