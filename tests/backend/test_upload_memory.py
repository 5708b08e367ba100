"""Server memory while a large body streams: bounded in the default mode, about the body's size with
the planted defect UPLOAD_BUFFERING=whole-body (a server that reads the whole body into memory)."""

from collections.abc import Callable

import pytest

from tests.backend.helpers import Backend, bearer, login, seed_email
from tests.backend.streaming import RssSampler, stream_upload

BODY_BYTES = 40_000_000
WARM_UP_BYTES = 2_000_000


def _upload_growth(backend: Backend) -> tuple[int, int]:
    """Warm the server up with a small upload, then stream BODY_BYTES; (RSS growth, file size)."""
    with backend.client() as client:
        token = login(client, seed_email(1))["access_token"]
        patient = client.get("/api/patients/", headers=bearer(token)).json()[0]["id"]
    port = backend.process.port
    assert stream_upload(port, token, patient, WARM_UP_BYTES).status == 200
    with RssSampler(backend.pid) as rss:
        done = stream_upload(port, token, patient, BODY_BYTES)
    assert done.status == 200, done.body
    assert done.sent == done.total
    stored = [p for p in backend.upload_dir.iterdir() if p.stat().st_size == BODY_BYTES]
    assert len(stored) == 1  # the whole file reached the disk
    size = stored[0].stat().st_size
    stored[0].unlink()  # keep pytest's kept temporary folders small
    return rss.growth, size


@pytest.mark.parametrize("mode", ["stream", "whole-body"])
def test_server_rss_while_a_large_body_streams(
    backend_factory: Callable[..., Backend], mode: str
) -> None:
    """A 40 MB upload grows a streaming server's RSS by under a quarter of the body, and a
    whole-body server's by at least 80% of it (sampled every 5 ms while the body streams)."""
    growth, size = _upload_growth(backend_factory(UPLOAD_BUFFERING=mode))
    assert size == BODY_BYTES
    if mode == "stream":
        assert growth < BODY_BYTES / 4, f"streaming server grew {growth / 1e6:.1f} MB"
    else:
        assert growth > BODY_BYTES * 0.8, f"whole-body server grew only {growth / 1e6:.1f} MB"
