"""Streaming multipart upload to disk with the contract's checks.

The body is read from the ASGI receive channel chunk by chunk (never buffered whole), parsed by
python-multipart's streaming parser and written to disk in batches from a worker thread. Every
refusal (extension, part type, magic number, size, stalled body) deletes the partial file; a 413
sent before the body ended closes the connection, so the client stops sending. The planted defect
UPLOAD_BUFFERING=whole-body reads the entire body into memory before any of it is parsed or written.
"""

import asyncio
import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import anyio.to_thread
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from reference_backend.core.errors import ApiError

ALLOWED_EXTENSIONS = frozenset({".mp3", ".wav", ".m4a", ".mp4", ".mpeg", ".mpga", ".webm"})
ALLOWED_TYPES = frozenset({
    "audio/mpeg", "audio/wav", "audio/x-wav", "audio/mp4", "audio/mpeg4", "video/mp4",
    "audio/mpg", "audio/mpeg3", "audio/x-mpeg", "audio/webm", "video/webm",
})  # fmt: skip
MIN_FILE_BYTES = 1024
MAGIC_BYTES_NEEDED = 12
FLUSH_BYTES = 1 << 20
WHOLE_BODY_SLICE = 64 * 1024
FILE_FIELD = b"file"


def media_magic(head: bytes) -> bool:
    """Whether the first bytes are an audio or video container or stream we accept."""
    return (
        head.startswith(b"ID3")  # MP3 with ID3 tag
        or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0)  # MPEG/AAC frame sync
        or (head.startswith(b"RIFF") and head[8:12] in (b"WAVE", b"AVI "))
        or head[4:8] == b"ftyp"  # MP4 / M4A
        or head.startswith(b"\x1a\x45\xdf\xa3")  # WebM / Matroska
        or head.startswith((b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3"))  # MPEG PS / video
        or head.startswith((b"OggS", b"fLaC"))
    )


def check_filename(filename: str) -> str:
    """The lower-cased extension, or 400 when the name or extension is not allowed."""
    extension = Path(filename).suffix.lower()
    if extension not in ALLOWED_EXTENSIONS:
        allowed = " ".join(sorted(ALLOWED_EXTENSIONS))
        raise ApiError(
            400,
            f"Unsupported file extension {extension or '(none)'}; use {allowed}",
            code="invalid_file_type",
        )
    return extension


def check_content_type(content_type: str) -> None:
    """400 for a type outside audio/* and video/*, 415 for an audio/video type not listed."""
    if content_type in ALLOWED_TYPES:
        return
    if not content_type.startswith(("audio/", "video/")):
        raise ApiError(
            400,
            f"File content type {content_type or '(none)'} is not audio or video",
            code="invalid_file_type",
        )
    raise ApiError(415, f"Audio/video type {content_type} is not supported")


class ContentRefused(ApiError):
    """A refusal of the file's bytes (too small, not audio) after its name and type passed."""

    def __init__(self, message: str, *, code: str, filename: str) -> None:
        super().__init__(400, message, code=code)
        self.filename = filename


@dataclass
class StoredUpload:
    """A file that passed every check and now lives on disk."""

    path: Path
    filename: str
    content_type: str
    size: int


@dataclass
class _Collector:
    """Parser callbacks: find the `file` part, check it, and buffer its bytes for the writer."""

    path: Path
    magic_check: bool = True
    headers: dict[bytes, bytes] = field(default_factory=dict)
    field_name: bytearray = field(default_factory=bytearray)
    field_value: bytearray = field(default_factory=bytearray)
    in_file: bool = False
    found: bool = False
    done: bool = False
    filename: str = ""
    content_type: str = ""
    pending: bytearray = field(default_factory=bytearray)
    head: bytes = b""
    size: int = 0

    def callbacks(self) -> dict[str, object]:
        """The callback table for MultipartParser."""
        return {
            "on_part_begin": self.headers.clear,
            "on_header_field": lambda d, s, e: self.field_name.extend(d[s:e]),
            "on_header_value": lambda d, s, e: self.field_value.extend(d[s:e]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._data,
            "on_part_end": self._part_end,
        }

    def _header_end(self) -> None:
        self.headers[bytes(self.field_name).lower()] = bytes(self.field_value)
        self.field_name.clear()
        self.field_value.clear()

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        self.in_file = options.get(b"name") == FILE_FIELD and not self.found
        if not self.in_file:
            return
        self.found = True
        self.filename = Path(options.get(b"filename", b"").decode("utf-8", "replace")).name
        check_filename(self.filename)
        kind, _ = parse_options_header(self.headers.get(b"content-type", b""))
        self.content_type = kind.decode("latin-1").lower()
        check_content_type(self.content_type)

    def _data(self, data: bytes, start: int, end: int) -> None:
        if not self.in_file:
            return
        chunk = data[start:end]
        self.size += len(chunk)
        self.pending.extend(chunk)
        if len(self.head) < MAGIC_BYTES_NEEDED:
            self.head += chunk[: MAGIC_BYTES_NEEDED - len(self.head)]
            if len(self.head) >= MAGIC_BYTES_NEEDED:
                self.check_magic()

    def _part_end(self) -> None:
        if self.in_file:
            self.in_file, self.done = False, True

    def check_magic(self) -> None:
        """400 unless the first bytes are audio or video (never, with UPLOAD_MAGIC_CHECK=false)."""
        if self.magic_check and not media_magic(self.head):
            raise ContentRefused(
                "File content is not audio or video (magic number check failed)",
                code="invalid_file_content",
                filename=self.filename,
            )

    def finish(self) -> None:
        """Checks that need the whole body: a file part was present and is big enough."""
        if not self.found:
            detail = {"field": "file", "message": "Field required", "type": "missing"}
            raise ApiError(
                422, "Request validation failed", details={"validation_errors": [detail]}
            )
        if not self.done:
            raise ApiError(400, "Malformed multipart body: the file part is incomplete")
        if self.size < MIN_FILE_BYTES:
            raise ContentRefused(
                f"File too small: {self.size} bytes (minimum {MIN_FILE_BYTES})",
                code="file_too_small",
                filename=self.filename,
            )
        self.check_magic()


def _boundary(request: Request) -> bytes:
    kind, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise ApiError(400, "Expected a multipart/form-data body with a `file` field")
    return boundary


def _check_declared_length(request: Request, max_bytes: int) -> None:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)


def _too_large(max_bytes: int, *, body_unread: bool = True) -> ApiError:
    """413; while the body is still coming, with `Connection: close` (uvicorn then closes the
    connection instead of reading and discarding the rest of the body)."""
    headers = {"Connection": "close"} if body_unread else None
    return ApiError(413, f"Upload exceeds the limit of {max_bytes} bytes", headers=headers)


async def _chunks(request: Request, timeout: float):  # noqa: ANN202 - async generator
    """Body chunks from the receive channel; 408 when none arrives within ``timeout``."""
    while True:
        try:
            async with asyncio.timeout(timeout):
                message = await request.receive()
        except TimeoutError:
            raise ApiError(
                408, f"Upload body stalled for {timeout:g} s", headers={"Connection": "close"}
            ) from None
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


async def _body(request: Request, rules: "UploadRules"):  # noqa: ANN202 - async generator
    """The body's chunks as they arrive; with ``rules.whole_body`` (UPLOAD_BUFFERING=whole-body,
    a planted defect) all of it is read into memory first, then handed on in slices."""
    chunks = _chunks(request, rules.timeout)
    if not rules.whole_body:
        async for chunk in chunks:
            yield chunk
        return
    body = bytearray()
    async for chunk in chunks:
        body.extend(chunk)
        if len(body) > rules.max_bytes and not rules.size_after_body:
            break  # the consumer counts past the limit and refuses
    view = memoryview(body)
    for start in range(0, len(body), WHOLE_BODY_SLICE):
        yield bytes(view[start : start + WHOLE_BODY_SLICE])
    view.release()


class _DiskWriter:
    """Appends batches to one file from a worker thread; removes it on failure."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[bytes] | None = None

    async def write(self, data: bytearray) -> None:
        """Write and clear ``data``."""
        if not data:
            return
        payload = bytes(data)
        data.clear()
        await anyio.to_thread.run_sync(self._write_sync, payload)

    def _write_sync(self, payload: bytes) -> None:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("wb")
        self._file.write(payload)

    async def close(self) -> None:
        """Close the file (creating it empty if nothing was written)."""
        await anyio.to_thread.run_sync(self._close_sync)

    def _close_sync(self) -> None:
        if self._file is None:
            self._file = self.path.open("wb")
        self._file.close()

    def discard(self) -> None:
        """Close and delete the partial file."""
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
        self.path.unlink(missing_ok=True)


@dataclass(frozen=True)
class UploadRules:
    """How an upload is checked: size limit, body time-out, magic number, when the size counts."""

    max_bytes: int
    timeout: float
    magic_check: bool = True
    size_after_body: bool = False  # the deployed way: read everything, then say 413
    whole_body: bool = False  # planted defect: the whole body in memory before it is parsed


async def receive_upload(request: Request, *, path: Path, rules: UploadRules) -> StoredUpload:
    """Stream the request's `file` part to ``path``, refusing it as early as the rules allow."""
    if not rules.size_after_body:
        _check_declared_length(request, rules.max_bytes)
    collector = _Collector(path=path, magic_check=rules.magic_check)
    parser = MultipartParser(_boundary(request), collector.callbacks())
    writer = _DiskWriter(path)
    try:
        await _stream(request, parser, collector, writer, rules)
        collector.finish()
        await writer.write(collector.pending)
        await writer.close()
    except BaseException:
        writer.discard()
        raise
    return StoredUpload(path, collector.filename, collector.content_type, collector.size)


async def _stream(
    request: Request,
    parser: MultipartParser,
    collector: _Collector,
    writer: _DiskWriter,
    rules: UploadRules,
) -> None:
    received = 0
    async for chunk in _body(request, rules):
        received += len(chunk)
        if received > rules.max_bytes:
            if not rules.size_after_body:
                raise _too_large(rules.max_bytes)
            continue  # read the rest, keep none of it, refuse at the end
        try:
            parser.write(chunk)
        except FormParserError as exc:
            raise ApiError(400, f"Malformed multipart body: {exc}") from None
        if len(collector.pending) >= FLUSH_BYTES:
            await writer.write(collector.pending)
    if received > rules.max_bytes:
        raise _too_large(rules.max_bytes, body_unread=False)
    try:
        parser.finalize()
    except FormParserError as exc:
        raise ApiError(400, f"Malformed multipart body: {exc}") from None
