"""Redaction: secrets (tokens, passwords, keys) removed from every text that
leaves the process in a report."""

from __future__ import annotations

import re

_SECRET_KEYS = r"password|passwd|secret|access_token|refresh_token|token|authorization|api_key"
_SECRET_VALUE = re.compile(
    rf"""(?i)(["']?\b(?:{_SECRET_KEYS})\b["']?\s*[:=]\s*)"""
    r"""(?:bearer\s+)?("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[^\s,;&}\]]+)"""
)
_REDACTIONS = (
    (re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), "[REDACTED]"),
    (re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1[REDACTED]"),
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/\s@]+:)[^@\s/]+@"), r"\1[REDACTED]@"),
)


def _redact_value(match: re.Match) -> str:
    quote = match.group(2)[0] if match.group(2)[0] in "\"'" else ""
    return f"{match.group(1)}{quote}[REDACTED]{quote}"


def redact(text: str) -> str:
    """Strip bearer tokens, JWT-like strings, password/token values and URL passwords from text."""
    text = _SECRET_VALUE.sub(_redact_value, text)
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


def is_secret_key(key: object) -> bool:
    return isinstance(key, str) and re.fullmatch(rf"(?i){_SECRET_KEYS}|token", key) is not None
