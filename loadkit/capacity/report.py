"""capacity.json: the search's report in the one schema (`report.schema.build_report`), its
fields as agreed in the capacity schema, written by `report.writer` with its two charts."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

from loadkit.capacity import search as plan_search
from loadkit.capacity.target import Options, Searched
from loadkit.contract import mix
from loadkit.report import capacity_charts, schema, writer
from loadkit.verdicts import slo as targets

TEST_NAME = "capacity"
TOOL = "engine"
UPLOADS_NOTE = (
    "left out of the arrival-rate mix: {left} (a per-account budget paces uploads, 10 an hour "
    "by the contract, so they cannot follow an offered rate); Locust's persona sends them"
)


def machine_note(shared: bool) -> str:
    """Whether server and generator share this machine's cores (loopback target)."""
    cpus = os.cpu_count() or 1
    if shared:
        return f"server and generator share this machine's {cpus} cores"
    return f"the generator ran on this machine's {cpus} cores; the server elsewhere"


def _scaling(runs: Sequence[tuple[int, Searched]], shared: bool) -> dict:
    rows = [
        {
            "server_workers": workers,
            "max_sustainable_rps": s.found.max_sustainable_rps,
            "limiting_factor": s.found.limiting_factor.get("name"),
            "search_ended": s.found.ended,
            "steps": s.found.steps,
        }
        for workers, s in runs
    ]
    return {"by_workers": rows, "factor": scaling_factor(rows), "note": machine_note(shared)}


def scaling_factor(rows: Sequence[dict]) -> float | None:
    """Capacity at the most workers over capacity at the fewest; None unless both searches
    found their knee (a rate capped by --run-time or --max-rps is not a capacity)."""
    ends = (rows[0]["search_ended"], rows[-1]["search_ended"]) if len(rows) > 1 else ()
    if not ends or any(end != plan_search.ENDED_KNEE for end in ends):
        return None
    first, last = rows[0]["max_sustainable_rps"], rows[-1]["max_sustainable_rps"]
    return round(last / first, 2) if first and last is not None else None


def _parameters(opts: Options, s: Searched, workers: Sequence[int] | None) -> dict:
    p, t = opts.plan, opts.timing
    return {
        "mix": opts.mix, "run_time": opts.budget_s, "max_rps": p.max_rps, "start_rps": p.start_rps,
        "growth": p.growth, "precision": p.precision, "warmup_s": t.warmup_s,
        "window_s": t.window_s, "late_tolerance_s": t.late_tolerance_s, "accounts": s.accounts,
        "think_time_s": mix.mean_think_s(), "cycle_time_s": s.found.cycle_time_s,
        "server_workers": list(workers) if workers else None, "server_cores": s.server_cores,
        "rate": s.found.max_sustainable_rps, "seed": opts.seed,
    }  # fmt: skip


def build(runs: Sequence[tuple[int | None, Searched]], opts: Options, *, target: str,
          profile: targets.Profile, started_at: float, limits_note: str,
          shared: bool) -> dict:  # fmt: skip
    """The report: the first search's figures at top level, every worker count's in scaling."""
    main = runs[0][1]
    found = main.found
    workers = [w for w, _ in runs if w is not None]
    minimum = profile.limits("capacity").get("min:max_sustainable_rps", 0)
    extra = {
        "max_sustainable_rps": found.max_sustainable_rps,
        "slo": dict(opts.slo),
        "steps": found.steps,
        "limiting_factor": found.limiting_factor,
        "concurrent_therapists": found.concurrent_therapists,
        "search_ended": found.ended,
        "limits": limits_note,
        "machine": machine_note(shared),
        "mix": {
            "kind": opts.mix,
            "actions": main.factory.describe(),
            "note": UPLOADS_NOTE.format(left=", ".join(mix.left_out(opts.mix))),
        },  # fmt: skip
        "charts": list(capacity_charts.CHARTS),
    }
    if len(runs) > 1 or workers:
        extra["scaling"] = _scaling([(w or 1, s) for w, s in runs], shared)
    return schema.build_report(
        test_name=TEST_NAME, tool=TOOL, started_at=started_at,
        duration_s=time.time() - started_at, recorder=found.recorder, target=target,
        profile=profile.name, parameters=_parameters(opts, main, workers),
        interrupted=found.ended == "interrupted", resources=main.watch.server.summary(),
        db_pool=main.watch.pool.summary() if main.watch.pool else None,
        server_series=_series(main),
        thresholds=targets.check({"max_sustainable_rps": found.max_sustainable_rps},
                                 {"min:max_sustainable_rps": minimum}),
        extra=extra,
    )  # fmt: skip


def _series(s: Searched) -> list[dict]:
    from loadkit.watch import monitor

    return monitor.server_series(s.watch.server, s.watch.pool)


def write(report: dict, run_dir: Path) -> Path:
    """capacity.json (atomic, redacted) and its two charts in the run folder."""
    path = writer.write_report(report, run_dir)
    capacity_charts.draw_all(report, run_dir)
    return path
