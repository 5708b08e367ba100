"""Locust's --upload-size: RealisticTherapist's uploads of a given size (or a mix), streamed;
a malformed size is one line and exit 2 before any load (Locust in a subprocess)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.locust.conftest import read_json, run_locust

UPLOAD = "POST /api/sessions/upload"


@pytest.mark.slow
def test_upload_size_mix_sends_large_uploads(backend, tmp_path: Path) -> None:
    """--upload-size 5MB,12MB with only the upload task: the streamed uploads succeed (none
    failed, no task raised), the sizes are in the report's parameters and each followed upload
    is one upload_to_processed transaction."""
    done = run_locust(
        backend.url, tmp_path, "--headless", "-u", "2", "-r", "2", "-t", "8s",
        "--tags", "upload", "--upload-size", "5MB,12MB", "--report-name", "big",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = read_json(tmp_path / "big.json")
    assert report["parameters"]["upload_size"] == "5MB,12MB"
    upload = report["endpoints"][UPLOAD]
    assert upload["requests"] >= 1 and upload["failures"] == 0, upload
    exceptions = (tmp_path / "big_exceptions.csv").read_text().strip().splitlines()
    assert exceptions[1:] == [], exceptions[:3]
    _check_upload_throughput(report["uploads"], upload["requests"])
    _check_transactions(report)


def _check_transactions(report: dict) -> None:
    """upload -> processed is one transaction per followed upload, with latency fields and how
    it was timed, and never a request (not in endpoints or total_requests)."""
    block = report["transactions"]["upload_to_processed"]
    assert block["count"] >= 1 and block["processed"] + block["failed"] <= block["count"], block
    assert block["processed"] >= 1 and block["response_time_p95_ms"] > 0, block
    assert block["timing"] in ("server", "polling", "polling+server"), block
    assert not any("processed" in name for name in report["endpoints"])
    assert report["total_requests"] == sum(e["requests"] for e in report["endpoints"].values())


def _check_upload_throughput(block: dict, requests: int) -> None:
    """The uploads block counts each upload once, with its bytes (a 5 or 12 MB recording plus
    the multipart envelope) and MB/s as bytes over the upload requests' time."""
    assert block["uploads"] == requests and block["failed"] == 0, block
    assert requests * 5e6 < block["sent_bytes"] < requests * 12e6 + requests * 1000, block
    assert block["mb_per_s"] > 0
    assert block["mb_per_s"] == pytest.approx(block["sent_bytes"] / 1e6 / block["seconds"], 0.01)
    for size, part in (block.get("by_size") or {}).items():
        assert size in ("5000000", "12000000") and part["uploads"] >= 1, block


def test_malformed_upload_size_is_one_line_and_exit_2(backend, tmp_path: Path) -> None:
    """--upload-size 25XB: exit 2 with one line naming the option, no traceback."""
    done = run_locust(backend.url, tmp_path, "--headless", "-t", "2s", "--upload-size", "25XB")
    assert done.returncode == 2, done.stderr[-2000:]
    assert "--upload-size: not a size: '25XB'" in done.stderr
    assert "Traceback" not in done.stderr
