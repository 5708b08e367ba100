"""Targets: targets.toml profiles (thresholds, scenario sizes, tolerances) and their check.

A profile is picked by argument, else LOADTEST_PROFILE, else "default"; the file by argument, else
LOADTEST_TARGETS, else the repository's targets.toml. A profile may ``inherit`` another: tables
merge key by key. Any problem with the file raises `TargetsError` with one line naming the file and
the problem.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_TARGETS = Path(__file__).resolve().parents[2] / "targets.toml"
DEFAULT_PROFILE = "default"
MIN_PREFIX = "min:"
_SECTIONS = ("thresholds", "scenarios", "compare")


class TargetsError(ValueError):
    """targets.toml cannot be used: unknown profile, malformed TOML, wrong types."""


@dataclass(frozen=True)
class Profile:
    """One resolved profile (inheritance applied)."""

    name: str
    thresholds: dict
    scenarios: dict
    compare: dict

    def scenario(self, name: str) -> dict:
        """One scenario's sizes; TargetsError when the profile has none for it."""
        try:
            return dict(self.scenarios[name])
        except KeyError:
            raise TargetsError(f"profile {self.name!r} has no scenarios.{name} table") from None

    def limits(self, group: str) -> dict:
        """One threshold group (e.g. "read"), flat metric -> limit; TargetsError when absent."""
        try:
            return {k: v for k, v in self.thresholds[group].items() if not isinstance(v, dict)}
        except KeyError:
            raise TargetsError(f"profile {self.name!r} has no thresholds.{group} table") from None


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _deep_merge(base: dict, over: dict) -> dict:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read(path: Path) -> dict:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise TargetsError(f"{path}: targets file not found") from None
    except OSError as exc:
        raise TargetsError(f"{path}: cannot read targets file ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise TargetsError(f"{path}: malformed TOML: {exc}") from None


def _resolve(data: dict, name: str, path: Path, seen: tuple[str, ...] = ()) -> dict:
    if name in seen:
        raise TargetsError(f"{path}: profile inheritance cycle {' -> '.join((*seen, name))}")
    table = data.get(name)
    if not isinstance(table, dict):
        known = ", ".join(sorted(k for k, v in data.items() if isinstance(v, dict))) or "none"
        raise TargetsError(f"{path}: unknown profile {name!r} (profiles: {known})")
    parent = table.get("inherit")
    if parent is None:
        return table
    if not isinstance(parent, str):
        raise TargetsError(f"{path}: [{name}] inherit must be a profile name, got {parent!r}")
    return _deep_merge(_resolve(data, parent, path, (*seen, name)), table)


def _check_numbers(table: object, where: str, path: Path, *, nested: bool) -> None:
    if not isinstance(table, dict):
        raise TargetsError(f"{path}: {where} must be a table, got {table!r}")
    for key, value in table.items():
        if nested and isinstance(value, dict):
            _check_numbers(value, f"{where}.{key}", path, nested=True)
        elif not _is_number(value):
            raise TargetsError(f"{path}: {where}.{key} must be a number, got {value!r}")


def _check_scenarios(table: object, where: str, path: Path) -> None:
    if not isinstance(table, dict):
        raise TargetsError(f"{path}: {where} must be a table, got {table!r}")
    for name, sizes in table.items():
        if not isinstance(sizes, dict):
            raise TargetsError(f"{path}: {where}.{name} must be a table, got {sizes!r}")
        for key, value in sizes.items():
            if not (_is_number(value) or isinstance(value, str | bool)):
                raise TargetsError(f"{path}: {where}.{name}.{key} has an unusable value {value!r}")


def load_profile(name: str | None = None, path: Path | None = None) -> Profile:
    """Load and validate one profile (argument > LOADTEST_PROFILE > "default")."""
    name = name or os.environ.get("LOADTEST_PROFILE", "").strip() or DEFAULT_PROFILE
    env_path = os.environ.get("LOADTEST_TARGETS", "").strip()
    path = Path(path) if path is not None else Path(env_path) if env_path else DEFAULT_TARGETS
    table = _resolve(_read(path), name, path)
    sections = {key: table.get(key, {}) for key in _SECTIONS}
    _check_numbers(sections["thresholds"], f"[{name}] thresholds", path, nested=True)
    _check_scenarios(sections["scenarios"], f"[{name}] scenarios", path)
    _check_numbers(sections["compare"], f"[{name}] compare", path, nested=False)
    return Profile(name=name, **sections)


def check(actual: Mapping[str, float | None], limits: Mapping[str, float]) -> list[dict]:
    """Check actual figures against limits: [{metric, limit, actual, passed}], in the limits' order.

    A limit is a maximum (actual <= limit); a "min:<metric>" key is a minimum. An actual that is
    missing or None fails with actual None: an unmeasured figure never passes silently.
    """
    rows = []
    for key, limit in limits.items():
        is_min = key.startswith(MIN_PREFIX)
        value = actual.get(key.removeprefix(MIN_PREFIX) if is_min else key)
        known = value is not None and _is_number(value)
        passed = known and (value >= limit if is_min else value <= limit)
        rows.append({"metric": key, "limit": limit, "actual": value, "passed": bool(passed)})
    return rows
