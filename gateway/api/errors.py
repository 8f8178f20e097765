"""Errors as HTTP answers: every failure is ``{"error": {"reason", "message", "field"}}``, never a trace.

The common hierarchy (:mod:`services.common.errors`) carries the status of each class
(``http_status``: InvalidArgument 400, NotFound 404, AlreadyExists and FailedPrecondition 409,
ResourceExhausted 413, Unavailable 503, ...); the gateway adds :class:`~gateway.auth.Unauthenticated`
(401, with ``WWW-Authenticate: Bearer``). Request validation (a body that is not the documented
JSON, a query parameter out of range) answers 400 naming the field. Anything unexpected is logged
with its stack trace and answered 500 with a message that names nothing internal.

Example
-------
>>> from services.common.errors import NotFound
>>> error_body(NotFound("job 42 does not exist", reason="JOB_NOT_FOUND"))
{'error': {'reason': 'JOB_NOT_FOUND', 'message': 'job 42 does not exist', 'field': ''}}
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.auth import Unauthenticated
from services.common.errors import NeuroMeshError

logger = logging.getLogger(__name__)

_REASONS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED",
            406: "NOT_ACCEPTABLE", 409: "CONFLICT", 413: "PAYLOAD_TOO_LARGE", 415: "UNSUPPORTED_MEDIA_TYPE",
            429: "TOO_MANY_REQUESTS", 503: "UNAVAILABLE"}


def error_body(err: NeuroMeshError) -> dict[str, Any]:
    return {"error": {"reason": err.reason, "message": err.message, "field": err.field}}


def error_response(status: int, reason: str, message: str, field: str = "",
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"reason": reason, "message": message, "field": field}}, status_code=status,
                        headers=headers)


def _field_of(loc: tuple[Any, ...]) -> str:
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


async def _neuromesh_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, NeuroMeshError)
    headers = {"WWW-Authenticate": 'Bearer realm="neuromesh"'} if isinstance(exc, Unauthenticated) else None
    if exc.http_status >= 500:
        logger.warning("request failed: %s", exc.message, extra={"reason": exc.reason, "path": request.url.path})
    status = exc.http_status if 400 <= exc.http_status <= 599 else 500
    return JSONResponse(error_body(exc), status_code=status, headers=headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    problems = []
    for err in errors[:20]:
        field = _field_of(tuple(err.get("loc", ())))
        message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        problems.append(f"{field}: {message}" if field else message)
    first = _field_of(tuple(errors[0].get("loc", ()))) if errors else ""
    more = f" (and {len(errors) - 20} more)" if len(errors) > 20 else ""
    return error_response(400, "INVALID_ARGUMENT", "invalid request: " + "; ".join(problems) + more, first)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    reason = _REASONS.get(exc.status_code, "HTTP_ERROR")
    message = exc.detail if isinstance(exc.detail, str) else reason.lower().replace("_", " ")
    if exc.status_code == 404 and message == "Not Found":
        message = f"no route {request.url.path}; the API is described at /v1/openapi.json"
    return error_response(exc.status_code, reason, message, headers=getattr(exc, "headers", None))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    logger.error("unexpected %s while answering %s %s", type(exc).__name__, request.method, request.url.path,
                 exc_info=exc)
    return error_response(500, "INTERNAL", f"internal error ({type(exc).__name__}); the gateway log has the details")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(NeuroMeshError, _neuromesh_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
