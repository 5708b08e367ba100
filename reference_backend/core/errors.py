"""The error envelope, the X-Request-ID middleware and the exception handlers behind them."""

import logging
import uuid
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("reference_backend")

REQUEST_ID_HEADER = "x-request-id"
RETRIABLE_STATUSES = {408, 429, 502, 503, 504}
CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limit_exceeded",
    500: "internal_error",
    503: "service_unavailable",
}


class ApiError(Exception):
    """An error a route raises on purpose; rendered as the envelope."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or CODES.get(status, "error")
        self.headers = headers or {}
        self.details = details


def request_id_of(scope: Scope) -> str:
    """The request id the middleware assigned (a new one if it did not run)."""
    state = scope.setdefault("state", {})
    return state.setdefault("request_id", str(uuid.uuid4()))


def envelope(request: Request, error: ApiError) -> JSONResponse:
    """The contract's error body, with X-Request-ID and the error's headers."""
    request_id = request_id_of(request.scope)
    body: dict[str, Any] = {
        "code": error.code,
        "message": error.message,
        "retriable": error.status in RETRIABLE_STATUSES,
        "request_id": request_id,
    }
    if error.details is not None:
        body["details"] = error.details
    headers = {**error.headers, "X-Request-ID": request_id}
    return JSONResponse({"error": body}, status_code=error.status, headers=headers)


class RequestIdMiddleware:
    """Echo the client's X-Request-ID (or a new UUID) on every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _client_request_id(scope) or str(uuid.uuid4())
        scope.setdefault("state", {})["request_id"] = request_id
        header = (b"x-request-id", request_id.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0] != b"x-request-id"]
                message["headers"] = [*headers, header]
            await send(message)

        await self.app(scope, receive, send_with_id)


def _client_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            text = value.decode("latin-1").strip()
            return text if 0 < len(text) <= 200 and text.isprintable() else None
    return None


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return envelope(request, exc)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    return envelope(request, ApiError(exc.status_code, message, headers=exc.headers))


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [_field_error(e) for e in exc.errors()]
    details = {"validation_errors": errors}
    return envelope(request, ApiError(422, "Request validation failed", details=details))


def _field_error(error: dict[str, Any]) -> dict[str, str]:
    location = [str(part) for part in error.get("loc", ()) if part != "body"]
    return {
        "field": ".".join(location) or "body",
        "message": str(error.get("msg", "invalid value")),
        "type": str(error.get("type", "value_error")),
    }


async def _pool_timeout(request: Request, exc: Exception) -> JSONResponse:
    message = "Database connection pool exhausted; retry shortly"
    return envelope(request, ApiError(503, message, code="pool_timeout"))


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    log.warning("database error: %s", exc)
    return envelope(request, ApiError(503, "Database unavailable", code="database_unavailable"))


async def _limiter_error(request: Request, exc: Exception) -> JSONResponse:
    log.warning("rate-limit storage error: %s", exc)
    message = "Rate-limit storage unavailable"
    return envelope(request, ApiError(503, message, code="limiter_unavailable"))


async def _service_error(request: Request, exc: Exception) -> JSONResponse:
    log.warning("I/O error on %s %s: %s", request.method, request.url.path, exc)
    return envelope(request, ApiError(503, "A backing service is unavailable"))


async def _client_gone(request: Request, exc: Exception) -> JSONResponse:
    log.info("client disconnected during %s %s", request.method, request.url.path)
    return envelope(request, ApiError(400, "Client disconnected before the body was complete"))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return envelope(request, ApiError(500, "Internal server error"))


def install_error_handlers(app: FastAPI) -> None:
    """Route every failure through the envelope; nothing answers with a traceback."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(PoolTimeoutError, _pool_timeout)
    app.add_exception_handler(OperationalError, _database_error)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(ClientDisconnect, _client_gone)
    app.add_exception_handler(RedisError, _limiter_error)
    app.add_exception_handler(OSError, _service_error)
    app.add_exception_handler(Exception, _unexpected)
    app.add_middleware(RequestIdMiddleware)
