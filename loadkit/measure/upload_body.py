"""Large upload bodies sent in pieces: a real WAV file (RIFF header, 16-bit PCM) built once per seed
and reused as pieces, wrapped in a one-file multipart body whose length is known up front.

A `StreamedBody` has ``len()`` and yields its bytes in pieces, so ``concurrency`` uploads of
``size`` bytes hold one PCM block per seed, never ``concurrency x size``. The engine's client
(`loadkit.measure.http`) iterates it; geventhttpclient (Locust's FastHttpUser) reads it as a file
(``read``), both with a Content-Length. Sizes are written ``25MB`` (decimal, 25,000,000 bytes)
or ``24MiB`` (binary).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from functools import lru_cache

from loadkit.contract import api

_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9}
_UNITS |= {"KIB": 2**10, "MIB": 2**20, "GIB": 2**30}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*")
BLOCK_SECONDS = 8  # PCM reused per piece: 8 s of 16 kHz mono = 256,000 bytes


def parse_size(text: str) -> int:
    """Bytes in a size such as ``25MB`` (decimal), ``24MiB`` (binary) or ``65536``; ValueError
    with one line naming the problem otherwise."""
    match = _SIZE.fullmatch(str(text))
    unit = match.group(2).upper() if match else ""
    if match is None or unit not in _UNITS:
        raise ValueError(f"not a size: {text!r} (write e.g. 25MB, 24MiB or 65536)")
    size = int(float(match.group(1)) * _UNITS[unit])
    if size <= 0:
        raise ValueError(f"a size must be more than 0 bytes, got {text!r}")
    return size


def parse_sizes(text: str) -> list[int]:
    """A comma-separated mix of sizes (``5MB,25MB,50MB``), each as `parse_size` reads it."""
    return [parse_size(part) for part in str(text).split(",")]


def megabytes_per_s(sent_bytes: int, seconds: float) -> float | None:
    """Decimal MB per second (None when no time passed)."""
    return round(sent_bytes / 1e6 / seconds, 2) if seconds > 0 else None


@lru_cache(maxsize=8)
def _pcm_block(seed: int) -> bytes:
    """BLOCK_SECONDS of the seed's audio: the piece every upload of that seed reuses."""
    return api.wav_bytes(44 + 2 * api.WAV_RATE, seed=seed)[44:] * BLOCK_SECONDS


def wav_pieces(size: int, seed: int = 0) -> Iterator[bytes]:
    """The bytes of ``api.wav_bytes(size, seed=seed)``, header first, in pieces of reused PCM."""
    data_len = (size - 44) & ~1
    yield _header(size, data_len)
    block = memoryview(_pcm_block(seed))
    left = data_len
    while left > 0:
        piece = block[: min(left, len(block))]
        left -= len(piece)
        yield piece
    if size - 44 - data_len:
        yield b"\0"


def _header(size: int, data_len: int) -> bytes:
    """The 44-byte RIFF/WAVE header of a ``size``-byte file holding ``data_len`` bytes of PCM."""
    head = api.wav_bytes(1024)[:44]  # the format chunk: 16 kHz, 16-bit mono PCM
    riff = b"RIFF" + (size - 8).to_bytes(4, "little") + head[8:40]
    return riff + data_len.to_bytes(4, "little")


class StreamedBody:
    """A multipart/form-data body holding one WAV file part, generated piece by piece."""

    def __init__(self, size: int, *, seed: int = 0, filename: str = "session.wav") -> None:
        if size < 1024:
            raise ValueError(f"a WAV upload needs at least 1024 bytes, got {size}")
        self.size, self.seed = size, seed
        boundary = uuid.uuid4().hex
        disposition = f'form-data; name="{api.UPLOAD_FIELD}"; filename="{filename}"'
        self.head = (
            f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
            f"Content-Type: {api.UPLOAD_CONTENT_TYPE}\r\n\r\n"
        ).encode()
        self.tail = f"\r\n--{boundary}--\r\n".encode()
        self.content_type = f"multipart/form-data; boundary={boundary}"
        self._reader: Iterator[bytes] | None = None
        self._left: bytes | memoryview = b""

    def __len__(self) -> int:
        return len(self.head) + self.size + len(self.tail)

    def __iter__(self) -> Iterator[bytes]:
        yield self.head
        yield from wav_pieces(self.size, self.seed)
        yield self.tail

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (all that is left for -1): file-like, read once from the start;
        geventhttpclient sends a body that is not bytes with ``socket.sendfile``."""
        if self._reader is None:
            self._reader = iter(self)
        want = len(self) if size is None or size < 0 else size
        out: list[bytes | memoryview] = []
        while want > 0:
            if not self._left:
                self._left = next(self._reader, b"")
                if not self._left:
                    break
            out.append(self._left[:want])
            want -= len(out[-1])
            self._left = self._left[len(out[-1]) :]
        return b"".join(out)
