"""The run's server profile in its folder: one recording, its flame graph and its figures.

`write_profile` takes what `loadkit.watch.server_profile.ServerProfiler.stop` returned: it
appends the process's recording to the run's `server_profile.txt` (collapsed stacks add up: the
`all` preset runs one pytest process per scenario into one folder), draws `server_profile.svg`
and writes `profile/server_profile.json` (figures from `profile_stacks`, or why there is none).
"""

from __future__ import annotations

import json
from pathlib import Path

from loadkit.report import flamegraph, profile_stacks
from loadkit.watch.server_profile import RAW_NAME

SVG_NAME = "server_profile.svg"
# In a subfolder: the run folder's top-level *.json are the scenario reports (one per scenario).
JSON_NAME = "profile/server_profile.json"


def _merge(run_dir: Path, info: dict) -> None:
    """Append the process's part to the run's recording; seconds and errors add up."""
    final, part = run_dir / RAW_NAME, Path(info.pop("part", "") or run_dir / "none")
    if part == final or not part.exists():
        return
    earlier = read_profile(run_dir) if final.exists() else None
    with final.open("a", encoding="utf-8") as out:
        out.write(part.read_text(encoding="utf-8"))
    part.unlink()
    if earlier and earlier.get("recorded"):
        info["seconds"] = round((earlier.get("seconds") or 0) + (info.get("seconds") or 0), 1)
        info["errors"] = (earlier.get("errors") or 0) + (info.get("errors") or 0)
        info["recordings"] = (earlier.get("recordings") or 1) + 1


def write_profile(run_dir: Path, info: dict) -> dict:
    """server_profile.json (and the flame graph when there is a recording); returns the JSON."""
    run_dir, info = Path(run_dir), dict(info)
    reason = info.pop("reason", None)
    if reason is None:
        _merge(run_dir, info)
    info.pop("part", None)
    raw = run_dir / RAW_NAME
    data = {**info, "recorded": False, "reason": reason}
    if reason is None and raw.exists():
        stacks = profile_stacks.parse_raw(raw.read_text(encoding="utf-8"))
        flamegraph.write_svg(stacks, run_dir / SVG_NAME)
        summary = profile_stacks.summary(profile_stacks.aggregate(stacks))
        data.update(recorded=True, raw=RAW_NAME, svg=SVG_NAME, **summary)
    elif reason is None:
        data["reason"] = "py-spy wrote no recording"
    (run_dir / JSON_NAME).parent.mkdir(exist_ok=True)
    (run_dir / JSON_NAME).write_text(json.dumps(data, indent=1), encoding="utf-8")
    return data


def not_profiled(run_dir: Path, reason: str) -> dict:
    """Write server_profile.json saying there is no profile, and why."""
    return write_profile(run_dir, {"mode": None, "reason": reason})


def read_profile(run_dir: Path) -> dict | None:
    """The run's server_profile.json, or None when the run has none."""
    try:
        return json.loads((Path(run_dir) / JSON_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
