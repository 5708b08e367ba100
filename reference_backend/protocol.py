"""uvicorn's httptools protocol with a bound on the request head (request line and headers).

uvicorn's httptools protocol buffers a request head of any size (an 8 MB header is parsed and
served), so one client can hold the server's memory with headers alone. This protocol counts the
bytes of a head still being parsed and, past MAX_HEAD_BYTES, answers 431 with the error envelope
and closes the connection, before any route runs.
"""

import json
import uuid

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEAD_BYTES = 64 * 1024


def _refusal() -> bytes:
    body = json.dumps({"error": {
        "code": "request_header_fields_too_large",
        "message": f"request head over {MAX_HEAD_BYTES} bytes",
        "retriable": False,
        "request_id": str(uuid.uuid4()),
    }}).encode()  # fmt: skip
    head = (
        "HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """Refuses a request head over MAX_HEAD_BYTES with 431 (then closes the connection).

    Two counts: the URL and header fields parsed so far (a head that arrives whole in one read),
    and the bytes of reads that leave a head still incomplete (a head that keeps growing)."""

    _head_bytes = 0
    _in_head = False

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if not self._in_head or self.transport.is_closing():
            return
        self._head_bytes += len(data)
        if self._head_bytes > MAX_HEAD_BYTES:
            self._refuse()

    def on_message_begin(self) -> None:
        self._in_head, self._head_bytes = True, 0
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head, self._head_bytes = False, 0
        super().on_headers_complete()

    def _count(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > MAX_HEAD_BYTES:
            raise ValueError("request head too large")  # the parser stops: send_400_response

    def send_400_response(self, msg: str) -> None:
        if self._head_bytes > MAX_HEAD_BYTES:
            self._refuse()
        else:
            super().send_400_response(msg)

    def _refuse(self) -> None:
        self._in_head = False
        self.transport.write(_refusal())
        self.transport.close()
