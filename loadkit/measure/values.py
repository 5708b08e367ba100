"""Small value helpers every part shares: a figure read from JSON or TOML, a time as ISO text."""

from __future__ import annotations

import math
from datetime import UTC, datetime


def number(value: object) -> int | float | None:
    """The value when it is a finite real number (not a bool, NaN or infinity), else None.

    Reports, /health bodies and targets.toml hold figures that may be missing, null, text, a bool
    or not finite; the type of a real number is kept (a pool size stays an int)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value if math.isfinite(value) else None


def iso_utc(wall_time: float) -> str:
    """A wall time (seconds since the epoch) as UTC ISO 8601 with milliseconds."""
    return datetime.fromtimestamp(wall_time, UTC).isoformat(timespec="milliseconds")
