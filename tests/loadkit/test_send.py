"""The one send-and-record path (`loadkit.measure.send`): the error kind of an unanswered request
comes from the exception's type, and any answer other than the expected one is an error of one of
DESIGN's five kinds, a status that is neither expected nor 4xx/5xx counting as "check" by name."""

from __future__ import annotations

import pytest

from loadkit.measure.recording import ERROR_KINDS, RunRecorder
from loadkit.measure.send import error_kind, record_answer, record_locust, record_no_answer

EP = "GET /health"


class Timeout(BaseException):
    """Shaped like gevent's Timeout: not an Exception, not a TimeoutError, named Timeout."""


class ReadTimeout(OSError):
    """Shaped like an HTTP client's read time-out."""


class RetriesExceeded(Exception):
    """Shaped like geventhttpclient's: what Locust's FastHttpUser reports, the cause in
    ``original``."""

    def __init__(self, url: str, retries: int, original: BaseException | None = None) -> None:
        super().__init__(url, retries)
        self.original = original


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (TimeoutError("x"), "timeout"),
        (TimeoutError("timed out"), "timeout"),
        (Timeout(5), "timeout"),
        (ReadTimeout("slow"), "timeout"),
        (ConnectionRefusedError("refused"), "connection"),
        (ConnectionResetError("timeout in the text only"), "connection"),
        (OSError("Connection timed out"), "connection"),
        (RetriesExceeded("/x", 3, original=TimeoutError("timed out")), "timeout"),
        (RetriesExceeded("/x", 3, original=ConnectionResetError()), "connection"),
        (RetriesExceeded("/x", 3), "connection"),
    ],
)
def test_the_kind_of_no_answer_comes_from_the_type(exc: BaseException, kind: str) -> None:
    """Time-out classes are "timeout" whatever their text; others "connection" whatever theirs."""
    assert error_kind(exc) == kind


@pytest.mark.parametrize(
    ("status", "expect", "kind"),
    [
        (200, 200, None),
        (201, frozenset({200, 201}), None),
        (302, 200, "check"),
        (204, 200, "check"),
        (404, 200, "http_4xx"),
        (429, frozenset({200}), "http_4xx"),
        (503, 200, "http_5xx"),
    ],
)
def test_an_answer_is_judged_against_what_was_expected(status, expect, kind) -> None:
    """Expected: success; 4xx/5xx keep their kind; any other unexpected status is "check"."""
    rec = RunRecorder()
    got = record_answer(rec, EP, 0.01, status, expect=expect, at=1.0, body=b"why")
    assert got == kind and set(rec.errors_by_kind) == set(ERROR_KINDS)
    assert rec.status_codes == {status: 1} and rec.overall.count == 1
    if kind is not None:
        assert rec.errors[0]["message"] == f"{status} why"  # the message names the status


def test_a_failed_check_on_an_expected_answer_is_check() -> None:
    """The scenario's own verdict runs only on an expected answer and fails it as "check"."""
    rec = RunRecorder()
    assert record_answer(rec, EP, 0.01, 200, expect=200, at=1.0, check=lambda: "no id") == "check"
    assert record_answer(rec, EP, 0.01, 500, expect=200, at=1.0, check=lambda: 1 / 0) == "http_5xx"
    assert [e["message"] for e in rec.errors] == ["no id", "500"]


def test_no_answer_has_no_latency_and_a_labelled_message() -> None:
    """A refused request counts under its kind, with no latency, named by the probe's label."""
    rec = RunRecorder()
    kind = record_no_answer(rec, EP, ConnectionRefusedError("refused"), at=1.0, label="probe x")
    assert kind == "connection" and rec.overall.count == 0 and rec.total == 1
    assert rec.errors[0]["message"] == "probe x: ConnectionRefusedError: refused"


@pytest.mark.parametrize(
    ("exc", "status", "verdict", "kind"),
    [
        (None, 500, False, None),  # Locust saw no failure: the persona accepted the answer
        (Timeout(3), None, False, "timeout"),  # gevent's time-out, by type
        (ConnectionResetError("timed out in text"), None, False, "connection"),
        (ValueError("bad"), 404, True, "http_4xx"),
        (ValueError("bad"), 503, False, "http_5xx"),
        (ValueError("302 is not what I wanted"), 302, True, "check"),
        (ReadTimeout("body cut"), 200, False, "timeout"),  # broke after the status line
        (ConnectionResetError("reset"), 200, False, "connection"),
    ],
)
def test_a_locust_request_gets_the_same_five_kinds(exc, status, verdict, kind) -> None:
    """Locust's outcome (exception, status, the persona's own verdict) maps onto the same kinds;
    a transfer that broke has no status and no latency."""
    rec = RunRecorder()
    assert record_locust(rec, EP, 12.0, status, exc, at=1.0, verdict=verdict) == kind
    assert set(rec.errors_by_kind) == set(ERROR_KINDS)
    broke = kind in ("connection", "timeout")
    assert rec.overall.count == (0 if broke else 1)


class ClientError(Exception):
    """Shaped like geventhttpclient's ConnectionError: its text, and the concrete URL apart."""

    def __init__(self, url: str, text: str) -> None:
        super().__init__(f"URL {url}: {text}")
        self.url, self.text = url, text


def test_a_locust_failure_message_is_the_same_for_every_request_that_failed_alike() -> None:
    """A stall on two different ids gives one message (no URL, no id), so errors group by it;
    the persona's own verdict is kept as written; each request counts for its persona."""
    rec = RunRecorder()
    for sid in ("a1", "b2"):
        stall = RetriesExceeded(f"/api/sessions/{sid}", 3, original=TimeoutError("timed out"))
        record_locust(rec, EP, 1000.0, None, stall, at=1.0, verdict=False, persona="Reader")
        cut = ClientError(f"http://127.0.0.1/api/sessions/{sid}", "connection closed")
        record_locust(rec, EP, 5.0, 200, cut, at=1.0, verdict=False, persona="Reader")
    record_locust(rec, EP, 5.0, 302, ValueError("HTTP 302, expected 200"), at=1.0, verdict=True)
    assert [(e["message"], e["count"]) for e in rec.errors] == [
        ("TimeoutError: timed out", 2),
        ("ClientError: connection closed", 2),
        ("HTTP 302, expected 200", 1),
    ]
    assert rec.personas["Reader"].requests == 4 and rec.personas["Reader"].failures == 4
