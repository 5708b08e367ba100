"""The drift section of report.md: latency and server RSS slopes per hour, the generator's own RSS,
the leak verdict with its confidence; and, for a long run, its tokens and whether this report is a
checkpoint. Read from the report's ``drift``, ``tokens`` and ``checkpoint`` fields only."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from loadkit.measure.values import iso_utc
from loadkit.report.markdown import fmt, table

MIN_TREND_S = 600  # under 10 minutes of steady state, slopes per hour are not shown: warm-up noise
ROWS = (
    ("p50 latency", "p50_ms", "ms/h"),
    ("p95 latency", "p95_ms", "ms/h"),
    ("p99 latency", "p99_ms", "ms/h"),
    ("server RSS", "server_rss_mb", "MB/h"),
)


def _ci(fields: Mapping[str, Any]) -> str:
    ci = fields.get("ci95")
    return "n/a" if not ci else f"{ci[0]:+.2f} .. {ci[1]:+.2f}"


def _row(name: str, fields: Mapping[str, Any], unit: str) -> list[Any]:
    slope = fields.get("per_hour")
    shown = "n/a" if slope is None else f"{slope:+.2f} {unit}"
    return [name, shown, _ci(fields), fields.get("n", 0)]


def checkpoint_lines(report: Mapping[str, Any]) -> list[str]:
    """A line saying this report is a checkpoint of a run still going (or killed)."""
    if not report.get("checkpoint"):
        return []
    at = report.get("checkpoint_written_at")
    when = iso_utc(at) if isinstance(at, int | float) else "n/a"
    every = fmt(report.get("checkpoint_interval_s"))
    return [f"**Checkpoint** written at {when} (every {every} s): the run had not ended then; "
            "the final report replaces this one.", ""]  # fmt: skip


def section(report: Mapping[str, Any]) -> list[str]:
    """The drift lines of one scenario ([] when its report has no drift block)."""
    drift = report.get("drift")
    lines = checkpoint_lines(report)
    tokens = report.get("tokens")
    if tokens:
        lines += [f"Tokens: {fmt(tokens.get('login_requests'))} login requests gave "
                  f"{fmt(tokens.get('logins'))} tokens; {fmt(tokens.get('refresh_requests'))} "
                  f"refresh requests gave {fmt(tokens.get('refreshes'))}.", ""]  # fmt: skip
    if not drift:
        return lines
    leak = drift.get("leak") or {}
    duration = drift.get("duration_s") or 0
    span = f"from {fmt(drift.get('steady_from_s'))} s, {fmt(duration)} s"
    lines += [f"#### Drift (per {fmt(drift.get('interval_s'))} s interval, {span})", ""]
    if duration >= MIN_TREND_S:
        lines += ["Slopes: least squares over the whole steady state.", ""]
        lines += table(["figure", "slope", "95% CI", "intervals"], _rows(drift))
    else:
        lines += [f"Slopes per hour not shown: {fmt(duration)} s of steady state is too short to "
                  f"read a trend (at least {MIN_TREND_S} s; the report's drift block has them).",
                  ""]  # fmt: skip
    lines += [
        f"Leak verdict: **{leak.get('verdict', 'n/a')}**: {leak.get('reason', '')} "
        f"(least squares on the {leak.get('fitted_on', 'steady state')}; needs at least "
        f"{fmt(leak.get('min_intervals'))} intervals and {fmt(leak.get('min_duration_s'))} s)",
        "",
    ]
    return lines


def _rows(drift: Mapping[str, Any]) -> list[list[Any]]:
    slopes = drift.get("slopes_per_hour") or {}
    rows = [_row(name, slopes.get(key) or {}, unit) for name, key, unit in ROWS]
    return rows + [_row("generator RSS", drift.get("generator_rss_mb") or {}, "MB/h")]
