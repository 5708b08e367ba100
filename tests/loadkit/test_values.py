"""The shared small helpers: number-or-None (`loadkit.measure.values.number`), UTC ISO time, and the
path-safe names of run folders, reports and charts (`loadkit.report.run_folder`)."""

from __future__ import annotations

import math

import pytest

from loadkit.measure.values import iso_utc, number
from loadkit.report.run_folder import safe_name, safe_test_name


@pytest.mark.parametrize("value", [0, 3, -2, 1.5, 20])
def test_a_real_number_is_kept_with_its_type(value: float) -> None:
    """Ints stay ints (a pool size), floats stay floats."""
    assert number(value) == value and type(number(value)) is type(value)


@pytest.mark.parametrize("value", [None, True, False, "5", [1], {}, math.nan, math.inf, -math.inf])
def test_anything_else_is_none(value: object) -> None:
    """Missing, text, bools, NaN and infinities are no figure."""
    assert number(value) is None


def test_iso_utc_has_milliseconds_and_the_utc_offset() -> None:
    """1000.5 s after the epoch, in UTC, to the millisecond."""
    assert iso_utc(1000.5) == "1970-01-01T00:16:40.500+00:00"


def test_safe_names_of_reports_folders_and_charts() -> None:
    """Unsafe characters become "_"; reports keep brackets, chart files do not; never empty."""
    assert safe_name("rate limit/quick") == "rate_limit_quick"
    assert safe_name("x[a b]") == "x[a_b]"
    assert safe_name("x[a b]", brackets=False) == "x_a_b"
    assert safe_name("..") == "run" and safe_name("") == "run"
    assert safe_test_name("pytest_load_test.py::test_x[a/b c]") == "x[a_b_c]"
    assert safe_test_name("test_rate_limit_enforcement[upload_limit]") == (
        "rate_limit_enforcement[upload_limit]"
    )
