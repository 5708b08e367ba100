"""The report's "Where the server's CPU went" section and its findings, from server_profile.json.

The section names how the profile was taken (attached or started under py-spy, rate, seconds), the
busy sample count, the top functions by own and by total share, and the route groups; with no
profile it says why. `findings` gives the bottleneck analysis its sentences: password hashing
(bcrypt) and, per handler, where that handler's samples went.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

MIN_SAMPLES = 5  # fewer busy samples than this: too few to say where the time went
GROUP_SHARE = 10.0  # a handler group gets a finding from this share of the busy samples
HASH_MARKERS = ("bcrypt", "hashpw", "checkpw", "blowfish")
TOP_ROWS = 8


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|")


def _rows(rows: Sequence[Sequence[Any]], limit: int = TOP_ROWS) -> list[str]:
    lines = ["| function | samples | share |", "|---|---:|---:|"]
    lines += [f"| `{_cell(name)}` | {count} | {share}% |" for name, count, share in rows[:limit]]
    return lines + [""]


def _how(data: Mapping[str, Any], link: str) -> str:
    mode = "attached to" if data.get("mode") == "attached" else "started under py-spy as"
    errors = data.get("errors")
    failed = f", {errors} samples py-spy could not take" if errors else ""
    return (
        f"py-spy {mode} pid {data.get('pid')} and its child processes, native frames on, "
        f"{data.get('rate_hz')} Hz for {data.get('seconds', 'n/a')} s: "
        f"{data.get('samples')} busy samples ({data.get('idle_samples')} idle-thread samples "
        f"left out{failed}). Flame graph: [{data.get('svg')}]({link}); "
        f"raw recording (collapsed stacks): `{data.get('raw')}`."
    )


def _group_rows(groups: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = [
        "| route group | samples | share | where its samples were (own) |",
        "|---|---:|---:|---|",
    ]
    for group in groups[:TOP_ROWS]:
        top = ", ".join(f"`{_cell(n)}` {s}%" for n, _, s in group.get("top_own", [])[:3])
        name, count = _cell(group["group"]), group["samples"]
        lines.append(f"| {name} | {count} | {group['share_percent']}% | {top} |")
    return lines + [""]


def section(data: Mapping[str, Any] | None, link: str | None = None) -> list[str]:
    """The Markdown section for a run's profile (or its absence and the reason); ``link`` is the
    flame graph's path as seen from the Markdown file (default: beside it)."""
    lines = ["## Where the server's CPU went", ""]
    if data is None:
        return lines + ["No server profile: the run folder has no profile/server_profile.json.", ""]
    if not data.get("recorded"):
        return lines + [f"No server profile: {data.get('reason') or 'reason not recorded'}.", ""]
    lines += [_how(data, link or str(data.get("svg"))), ""]
    if (data.get("samples") or 0) < MIN_SAMPLES:
        return lines + [f"Too few busy samples ({data.get('samples')}) to say more.", ""]
    lines += ["Top functions by own share (running when sampled):", ""] + _rows(data["top_own"])
    lines += [
        "Top functions by total share (on the stack, from the handler or thread-pool job down):",
        "",
    ]
    lines += _rows(data["top_total"]) + ["By route (the handler frame FastAPI called, or the"]
    lines[-1] += " thread-pool job):"
    return lines + [""] + _group_rows(data.get("groups", []))


def _hashing(data: Mapping[str, Any]) -> str | None:
    hashing = [row for row in data["top_own"] if any(m in row[0].lower() for m in HASH_MARKERS)]
    if not hashing:
        return None
    share = round(sum(row[2] for row in hashing), 1)
    count = sum(row[1] for row in hashing)
    return (
        f"Server profile: password hashing (bcrypt, `{hashing[0][0]}`) ran in {share}% of the "
        f"server's busy samples ({count} of {data['samples']}): login's cost is the hash."
    )


def _handler(group: Mapping[str, Any], busy: int) -> str:
    top = group.get("top_total", [])[1:4] or group.get("top_own", [])[:3]
    where = "; ".join(f"`{name}` {share}%" for name, _, share in top)
    return (
        f"Server profile: {group['group']} took {group['share_percent']}% of the busy samples "
        f"({group['samples']} of {busy}); within it: {where}."
    )


def findings(data: Mapping[str, Any] | None) -> list[str]:
    """The bottleneck analysis's sentences from the profile; none without enough samples."""
    if not data or not data.get("recorded") or (data.get("samples") or 0) < MIN_SAMPLES:
        return []
    lines = [line for line in [_hashing(data)] if line]
    for group in data.get("groups", []):
        if group["group"].startswith("handler") and group["share_percent"] >= GROUP_SHARE:
            lines.append(_handler(group, data["samples"]))
    return lines
