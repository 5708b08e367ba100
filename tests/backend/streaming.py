"""Large uploads for backend tests: a real WAV body generated in chunks and sent over a raw socket
(stopping when the server answers early), the server's RSS sampled while it streams, and the disk
used under a folder."""

import math
import select
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

from tests.backend.helpers import RawHttp, chunk, upload_head

RATE = 16_000
PIECE = 256 * 1024
SAMPLE_SECONDS = 0.005


def _tone(size: int) -> bytes:
    """``size`` bytes of 16-bit mono PCM: a 400 Hz tone, whole periods (size a multiple of 80)."""
    period = [int(8000 * math.sin(2 * math.pi * i / 40)) for i in range(40)]
    samples = struct.pack(f"<{len(period)}h", *period)
    return samples * (size // len(samples))


PCM = _tone(PIECE - PIECE % 80)


def wav_header(pcm_bytes: int) -> bytes:
    """The 44-byte RIFF/WAVE header of 16-bit mono PCM at RATE Hz."""
    fmt = struct.pack("<4sIHHIIHH", b"fmt ", 16, 1, 1, RATE, RATE * 2, 2, 16)
    return (
        b"RIFF"
        + struct.pack("<I", 36 + pcm_bytes)
        + b"WAVE"
        + fmt
        + b"data"
        + (struct.pack("<I", pcm_bytes))
    )


def wav_pieces(size: int) -> Iterator[bytes]:
    """A WAV file of exactly ``size`` bytes (44 at least), header then PCM, in pieces."""
    yield wav_header(size - 44)
    left = size - 44
    while left > 0:
        piece = PCM[: min(left, len(PCM))]
        left -= len(piece)
        yield piece


def multipart_pieces(size: int, boundary: str) -> Iterator[bytes]:
    """A multipart body with one `file` part: a ``size``-byte WAV named session.wav."""
    yield (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="session.wav"'
        "\r\nContent-Type: audio/wav\r\n\r\n"
    ).encode()
    yield from wav_pieces(size)
    yield f"\r\n--{boundary}--\r\n".encode()


def multipart_length(size: int, boundary: str) -> int:
    """The byte length of multipart_pieces(size, boundary), without generating it."""
    head, *_, tail = multipart_pieces(44, boundary)
    return len(head) + size + len(tail)


@dataclass
class StreamedUpload:
    """What one streamed upload did: the answer, the body bytes sent, whether the server closed."""

    status: int
    headers: dict[str, str]
    body: bytes
    sent: int
    total: int
    closed: bool | None  # None: not checked


def stream_upload(
    port: int, token: str, patient_id: str, size: int, *, chunked: bool = False,
    on_sent: Callable[[int], None] | None = None, check_closed: bool = False,
) -> StreamedUpload:  # fmt: skip
    """Upload a ``size``-byte WAV; stop sending once the server answers or refuses the bytes.

    ``on_sent(bytes_sent)`` runs after each piece; ``check_closed`` waits (2 s at most) to see
    whether the server closes the connection after its answer."""
    boundary = uuid.uuid4().hex
    total = multipart_length(size, boundary)
    content_type = f"multipart/form-data; boundary={boundary}"
    connection = RawHttp(port, timeout=30)
    try:
        length = None if chunked else total
        connection.send(upload_head(token, patient_id, content_type, length=length))
        sent = _send_until_answered(connection.sock, multipart_pieces(size, boundary), chunked,
                                    on_sent)  # fmt: skip
        status, headers, body = connection.read_response()
        closed = _closed(connection.sock) if check_closed else None
        return StreamedUpload(status, headers, body, sent, total, closed)
    finally:
        connection.close()


def _send_until_answered(
    sock: socket.socket, pieces: Iterator[bytes], chunked: bool,
    on_sent: Callable[[int], None] | None,
) -> int:  # fmt: skip
    sent = 0
    for piece in pieces:
        if select.select([sock], [], [], 0)[0]:
            return sent  # the server answered before the body ended
        try:
            sock.sendall(chunk(piece) if chunked else piece)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            return sent
        sent += len(piece)
        if on_sent is not None:
            on_sent(sent)
    if chunked:
        sock.sendall(b"0\r\n\r\n")
    return sent


def _closed(sock: socket.socket, timeout: float = 2.0) -> bool:
    """Whether the server closes the connection within ``timeout`` (EOF or reset)."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


class RssSampler:
    """Samples a process's RSS (its children's added) on a thread while a block runs."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.baseline = self.rss()
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss(self) -> int:
        """The process tree's resident set size now, in bytes."""
        tree = [self.process, *self.process.children(recursive=True)]
        return sum(p.memory_info().rss for p in tree)

    def _run(self) -> None:
        deadline = time.monotonic() + 120  # bounded, whatever the test does
        while not self._stop.is_set() and time.monotonic() < deadline:
            self.peak = max(self.peak, self.rss())
            time.sleep(SAMPLE_SECONDS)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss())

    @property
    def growth(self) -> int:
        """Peak minus the RSS when the sampler was made, in bytes."""
        return self.peak - self.baseline


def disk_used(folder: Path) -> int:
    """Bytes of disk the files under ``folder`` occupy (allocated blocks, not apparent size). A file
    the server removes while it is being counted counts as none."""
    if not folder.exists():
        return 0
    total = 0
    for path in folder.rglob("*"):
        try:
            if path.is_file():
                total += path.stat().st_blocks * 512
        except FileNotFoundError:  # removed between the listing and the stat: it holds no disk
            continue
    return total
