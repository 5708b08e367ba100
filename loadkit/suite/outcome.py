"""The outcome of one pytest scenario: its figures, and its JSON report written in a finally.

A scenario fills an `Outcome` (recorder, monitors' blocks, thresholds, problems); `reporting()`
writes the report whatever happens (failure, exception, Ctrl-C: then ``interrupted`` is true), and
`failure_message()` turns failed thresholds and problems into the one message a test asserts with.
A scenario whose every request failed measured nothing it was meant to: `reporting()` adds that as
a problem ("inconclusive"), so such a probe is never passed by thresholds that saw no load.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from loadkit.measure.trace import TracingRecorder
from loadkit.report import schema, writer


@dataclass
class Outcome:
    """Everything one scenario run produced, in the shape `report.build_report` takes."""

    test_name: str
    target: str
    profile: str
    parameters: dict = field(default_factory=dict)
    recorder: TracingRecorder = field(default_factory=TracingRecorder)
    started_at: float = field(default_factory=time.time)
    duration_s: float | None = None
    warmup_s: float = 0.0
    interrupted: bool = False
    resources: dict | None = None
    db_pool: dict | None = None
    server_series: list[dict] = field(default_factory=list)
    thresholds: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    skip_reason: str | None = None
    extra: dict = field(default_factory=dict)
    defects: list[dict] = field(default_factory=list)  # loadkit.verdicts.defects records
    limit_shaped: str | None = None  # why the limit, keyed by address, shaped the figures

    def build(self) -> dict:
        """The report dict (duration: as set by the scenario, else time since start)."""
        duration = self.duration_s if self.duration_s is not None else time.time() - self.started_at
        extra = {"problems": list(self.problems), **self.extra, "defects": list(self.defects)}
        extra["limit_shaped"] = self.limit_shaped is not None
        if self.limit_shaped:
            extra["limit_shaped_reason"] = self.limit_shaped
        thresholds = list(self.thresholds)
        if self.problems and all(t.get("passed") for t in thresholds):
            # a problem no threshold caught (e.g. the scenario raised) must still fail the report
            thresholds.append(
                {"metric": "problems", "limit": 0, "actual": len(self.problems), "passed": False}
            )
        if self.skip_reason:
            extra["skipped_assertions"] = self.skip_reason
        return schema.build_report(
            test_name=self.test_name,
            tool="pytest",
            started_at=self.started_at,
            duration_s=duration,
            recorder=self.recorder,
            target=self.target,
            profile=self.profile,
            parameters=self.parameters,
            warmup_s=self.warmup_s,
            interrupted=self.interrupted,
            resources=self.resources,
            db_pool=self.db_pool,
            server_series=self.server_series,
            thresholds=thresholds,
            extra=extra,
        )


def safe_test_name(nodeid_name: str) -> str:
    """A test's report name: "test_x[param]" -> "x[param]", path-unsafe characters replaced."""
    name = nodeid_name.removeprefix("test_")
    return re.sub(r"[^A-Za-z0-9._\[\]-]+", "_", name)


@contextmanager
def reporting(outcome: Outcome, directory: Path) -> Iterator[Outcome]:
    """Yield the outcome; write its report on the way out, also on failure or interruption."""
    try:
        yield outcome
    except (KeyboardInterrupt, asyncio.CancelledError):
        outcome.interrupted = True
        raise
    except Exception as exc:
        outcome.problems.append(f"the scenario raised {type(exc).__name__}: {exc}")
        raise
    finally:
        told = any(p.startswith("inconclusive:") for p in outcome.problems)
        outcome.problems += [m for m in [inconclusive(outcome.recorder)] if m and not told]
        writer.write_report(outcome.build(), directory)


def inconclusive(recorder: TracingRecorder, *, any_failed: bool = False) -> str | None:
    """The problem of a run whose every request failed (with ``any_failed``: any request, for a
    probe whose load must all land to mean anything), with the kinds and the first error."""
    if not recorder.total or not recorder.failures:
        return None
    if not any_failed and recorder.failures < recorder.total:
        return None
    summary = recorder.summary(duration_s=1.0)
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(summary["errors_by_kind"].items()) if n)
    first = summary["errors"][0] if summary["errors"] else {}
    where = f"; first: {first.get('endpoint')} {first.get('status')} {first.get('message')}"
    share = "all" if recorder.failures == recorder.total else f"{recorder.failures} of"
    return (
        f"inconclusive: {share} {recorder.total} requests failed ({kinds}"
        f"{where if first else ''}), so the scenario did not measure what it was meant to"
    )


def failure_message(thresholds: list[dict], problems: list[str]) -> str | None:
    """One message naming each failed metric (limit and actual) and each problem; None: all good."""
    lines = [
        f"{t['metric']}: limit {t['limit']}, actual {t['actual']}"
        for t in thresholds
        if not t.get("passed")
    ]
    lines += problems
    return "; ".join(lines) if lines else None
