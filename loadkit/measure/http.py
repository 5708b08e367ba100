"""A lean HTTP/1.1 keep-alive client on asyncio protocols, parsed by httptools (llhttp).

One `Connection` carries one request at a time (no pipelining). The engine owns connections outright
(closed model: one per worker) or through `ConnectionPool` (open model), so the connection limit is
the concurrency by construction and no pool search happens per request. A request's head is
serialised once per `Request` object; a send writes it, the Host line and the body; one timer.

Failures surface as exceptions from `Connection.exchange` and `HttpClient.connect`, which the engine
records as data: `TimeoutError` (time-out); `OSError`, `ProtocolError` (connection).
Why this client rather than aiohttp or httpx: the figures in `loadkit/measure/engine.py`'s
docstring.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httptools

Check = Callable[[int, bytes], "str | None"]
HeaderCheck = Callable[[int, Mapping[str, str]], "str | None"]


_SENDING: set[asyncio.Task] = set()


class ProtocolError(ConnectionError):
    """The server sent something that is not a valid HTTP/1.1 response."""


@dataclass(frozen=True, slots=True)
class Request:
    """One request, described declaratively; ``endpoint`` is its route template ("GET /x/{id}").

    ``expect`` is the status (or set of statuses) that counts as success. ``check(status, body)``
    returns an error message when a response with an expected status is wrong (kind "check").
    ``header_check(status, headers)`` does the same from the response headers (lower-case names);
    headers are only collected for requests that set it. Build one per distinct request and reuse
    it: its wire head is serialised once, at construction. A ``body`` that is not bytes is an
    iterable with ``len()`` (`loadkit.measure.upload_body.StreamedBody`): sent piece by piece under
    the transport's flow control, and no longer once the server has answered or closed.
    """

    method: str
    path: str
    endpoint: str = ""
    headers: Mapping[str, str] | None = None
    body: bytes | Iterable[bytes] | None = None
    expect: int | frozenset[int] = 200
    check: Check | None = None
    header_check: HeaderCheck | None = None
    head: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.endpoint:
            object.__setattr__(self, "endpoint", f"{self.method} {self.path.split('?')[0]}")
        if not isinstance(self.expect, int):
            object.__setattr__(self, "expect", frozenset(self.expect))
        object.__setattr__(self, "head", _serialise_head(self))

    @classmethod
    def json(cls, method: str, path: str, payload: object, **kw: object) -> Request:
        """A request with a JSON body (Content-Type added)."""
        headers = {**(kw.pop("headers", None) or {}), "Content-Type": "application/json"}
        body = json.dumps(payload, separators=(",", ":")).encode()
        return cls(method, path, headers=headers, body=body, **kw)

    @classmethod
    def multipart(
        cls,
        method: str,
        path: str,
        fields: Mapping[str, str] | None = None,
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
        **kw: object,
    ) -> Request:
        """A multipart/form-data request; ``files`` maps a field to (filename, content, type)."""
        body, content_type = encode_multipart(fields or {}, files or {})
        headers = {**(kw.pop("headers", None) or {}), "Content-Type": content_type}
        return cls(method, path, headers=headers, body=body, **kw)


def _serialise_head(request: Request) -> bytes:
    """Request line and headers without Host and without the blank line (the engine adds both)."""
    lines = [f"{request.method} {request.path} HTTP/1.1"]
    lines += [f"{k}: {v}" for k, v in (request.headers or {}).items()]
    if request.body is not None or request.method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(request.body or b'')}")  # type: ignore[arg-type]
    return ("\r\n".join(lines) + "\r\n").encode("latin-1")


def encode_multipart(
    fields: Mapping[str, str], files: Mapping[str, tuple[str, bytes, str]]
) -> tuple[bytes, str]:
    """Encode form fields and files as multipart/form-data; returns (body, Content-Type value)."""
    boundary = uuid.uuid4().hex
    parts: list[bytes] = []
    for name, value in fields.items():
        disposition = f'Content-Disposition: form-data; name="{name}"'
        parts.append(f"--{boundary}\r\n{disposition}\r\n\r\n{value}\r\n".encode())
    for name, (filename, content, ctype) in files.items():
        disposition = f'Content-Disposition: form-data; name="{name}"; filename="{filename}"'
        head = f"--{boundary}\r\n{disposition}\r\nContent-Type: {ctype}\r\n\r\n".encode()
        parts.append(head + content + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def ssl_context(verify: bool | str) -> ssl.SSLContext:
    """TLS context: verify with the system CAs (True), a CA bundle (path), or not at all (False)."""
    if verify is False:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    return ssl.create_default_context(cafile=verify if isinstance(verify, str) else None)


class Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; `exchange` sends a request and returns (status, body)."""

    __slots__ = (
        "_loop",
        "_transport",
        "_parser",
        "_waiter",
        "_timer",
        "_chunks",
        "_headers",
        "_head_only",
        "_framed",
        "_alive",
        "_drained",
        "status",
        "body_sent",
        "headers",
        "reusable",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._chunks: list[bytes] = []
        self._headers: dict[str, str] | None = None
        self._head_only = False
        self._framed = False
        self._alive = False
        self._drained: asyncio.Future | None = None
        self.status = 0
        self.body_sent = 0
        self.headers: dict[str, str] | None = None
        self.reusable = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self._alive = self.reusable = True

    def pause_writing(self) -> None:
        self._drained = self._loop.create_future()

    def resume_writing(self) -> None:
        drained, self._drained = self._drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ProtocolError(f"bad response: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._alive = self.reusable = False
        self.resume_writing()
        if self._waiter is not None and not self._waiter.done():
            if exc is None and self.status and not self._head_only and not self._framed:
                self._finish()  # body delimited by the connection's end (no length, not chunked)
            else:
                self._fail(exc or ConnectionResetError("connection closed by the server"))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        if len(name) in (14, 17) and name.lower() in (b"content-length", b"transfer-encoding"):
            self._framed = True  # a body cut short by the connection's end is then a failure
        if self._headers is not None:
            self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()
        if self._head_only:
            self._parser = httptools.HttpResponseParser(self)  # HEAD: no body follows
            self.reusable = self._alive
            self._finish()

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)

    def on_message_complete(self) -> None:
        self.reusable = self._alive and self._parser.should_keep_alive()
        self._finish()

    # requests
    def exchange(self, request: Request, host_block: bytes, timeout_s: float) -> asyncio.Future:
        """Send ``request``; the future resolves to the body (status in ``self.status``)."""
        waiter = self._waiter = self._loop.create_future()
        self.status = 0
        self._head_only = request.method == "HEAD"
        self._framed = False
        self._headers = {} if request.header_check is not None else None
        self.reusable = False  # until the whole response is read
        self._timer = self._loop.call_later(timeout_s, self._expire)
        transport = self._transport
        transport.write(request.head + host_block)  # type: ignore[union-attr]
        self.body_sent = 0
        if isinstance(request.body, bytes | bytearray | memoryview):
            transport.write(request.body)  # type: ignore[union-attr]
            self.body_sent = len(request.body)
        elif request.body is not None:
            task = self._loop.create_task(self._stream(request.body, waiter))
            _SENDING.add(task)  # a reference until it ends (the loop keeps only a weak one)
            task.add_done_callback(_SENDING.discard)
        return waiter

    async def _stream(self, pieces: Iterable[bytes], waiter: asyncio.Future) -> None:
        """Write ``pieces`` as the transport drains; stop once ``waiter`` is done (an early answer,
        a 413 while streaming, a failure) or the connection closes. A write that fails (a reset)
        only marks the transport closing (asyncio drops later writes and calls connection_lost
        on a later turn of the loop), so that is checked before every piece."""
        transport = self._transport
        for piece in pieces:
            if waiter.done() or not self._alive or transport is None or transport.is_closing():
                return
            transport.write(piece)
            self.body_sent += len(piece)
            if self._drained is not None:
                await self._drained

    def _finish(self) -> None:
        waiter, self._waiter = self._waiter, None
        if self._timer is not None:
            self._timer.cancel()
        body = b"".join(self._chunks) if self._chunks else b""
        self._chunks.clear()
        self.headers = self._headers
        if waiter is not None and not waiter.done():
            waiter.set_result(body)

    def _fail(self, exc: BaseException) -> None:
        waiter, self._waiter = self._waiter, None
        if self._timer is not None:
            self._timer.cancel()
        self.close()
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def _expire(self) -> None:
        self._fail(TimeoutError("no complete response within the time-out"))

    def close(self) -> None:
        """Drop the connection at once (no graceful shutdown: it is a load generator)."""
        self._alive = self.reusable = False
        if self._transport is not None:
            self._transport.abort()


class HttpClient:
    """Opens connections to one target (scheme, host, port, optional path prefix)."""

    def __init__(
        self, target: str, *, connect_timeout_s: float = 10.0, verify: bool | str = True
    ) -> None:
        url = urlsplit(target)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"target must be an http(s) URL, got {target!r}")
        self.host = url.hostname
        self.port = url.port or (443 if url.scheme == "https" else 80)
        self.prefix = url.path.rstrip("/")
        self.ssl = ssl_context(verify) if url.scheme == "https" else None
        self.host_block = f"Host: {url.netloc}\r\n\r\n".encode("latin-1")
        self.connect_timeout_s = connect_timeout_s

    async def connect(self) -> Connection:
        """Open one connection (TCP, and TLS for https) within the connect time-out."""
        loop = asyncio.get_running_loop()
        coro = loop.create_connection(
            lambda: Connection(loop),
            self.host,
            self.port,
            ssl=self.ssl,
            server_hostname=self.host if self.ssl else None,
        )
        try:
            _, conn = await asyncio.wait_for(coro, self.connect_timeout_s)
        except TimeoutError:
            raise TimeoutError(f"connect time-out after {self.connect_timeout_s} s") from None
        return conn


class ConnectionPool:
    """Idle keep-alive connections for the open model; one request per connection at a time."""

    def __init__(self, client: HttpClient) -> None:
        self._client = client
        self._idle: list[Connection] = []
        self._all: set[Connection] = set()

    async def acquire(self) -> Connection:
        """An idle reusable connection, or a new one."""
        idle = self._idle
        while idle:
            conn = idle.pop()
            if conn.reusable:
                return conn
            self._all.discard(conn)
        conn = await self._client.connect()
        self._all.add(conn)
        return conn

    def release(self, conn: Connection) -> None:
        """Give a connection back; a broken or non-keep-alive one is closed instead."""
        if conn.reusable:
            self._idle.append(conn)
        else:
            conn.close()
            self._all.discard(conn)

    def close(self) -> None:
        """Close every connection, idle or busy."""
        for conn in self._all:
            conn.close()
        self._all.clear()
        self._idle.clear()
