"""Benchmark: the load generator's own RSS over a long soak (issue 17, item 3).

Runs ``./run_load_tests.sh soak --run-time MINUTESm`` (moderate's 20 users, the bundled reference
backend on loopback, a fresh SQLite file) and samples the Locust process's RSS every
``--sample-every`` seconds, from outside it (psutil). Prints RSS at fixed points, the peak, and the
least-squares slope (MB per hour, with its 95% interval) after the first ``--settle`` minutes, and
the run's request, refresh and 401 counts from its report. Samples go to ``--out`` (JSON).

    timeout 3900 .venv/bin/python bench/soak_bench.py --minutes 60 --out /tmp/soak-rss.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _common as c  # noqa: E402

from loadkit.verdicts.drift import fit  # noqa: E402

MB = 1e6


def _locust_process(runner: psutil.Process) -> psutil.Process | None:
    """The Locust process under the runner (its cmdline runs bin/locust)."""
    try:
        for proc in runner.children(recursive=True):
            if any(part.endswith("/locust") for part in proc.cmdline()[:2]):
                return proc
    except psutil.Error:
        return None
    return None


def _sample(proc: psutil.Process | None) -> float | None:
    try:
        return proc.memory_info().rss / MB if proc is not None else None
    except psutil.Error:
        return None


def sample_run(cmd: list[str], env: dict, log: Path, minutes: float, every: float) -> list:
    """Start the runner, sample its Locust child's RSS until it ends (bounded); [(t_s, rss_mb)]."""
    deadline = time.monotonic() + minutes * 60 + 600
    with log.open("w") as out:
        runner = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    started, samples, proc = time.monotonic(), [], None
    try:
        while runner.poll() is None and time.monotonic() < deadline:
            proc = (
                proc
                if proc is not None and proc.is_running()
                else _locust_process(psutil.Process(runner.pid))
            )
            rss = _sample(proc)
            if rss is not None:
                samples.append((round(time.monotonic() - started, 1), round(rss, 2)))
            time.sleep(every)
    finally:
        if runner.poll() is None:
            runner.terminate()  # the runner this function started, by its pid
            runner.wait(timeout=120)
    return samples


def _report(results: Path) -> dict:
    reports = sorted(results.glob("*_soak/locust_*.json"))
    return json.loads(reports[-1].read_text()) if reports else {}


def _at(samples: list, t_s: float) -> float | None:
    later = [rss for t, rss in samples if t >= t_s]
    return later[0] if later else None


def summarize(samples: list, settle_s: float, report: dict) -> list[str]:
    """The lines to write down: RSS at points, peak, slope after settling, the run's counts."""
    lines = []
    last = samples[-1][0] if samples else 0
    points = [p for p in (60, 300, 900, 1800, 2700, 3600) if p <= last] + [last]
    lines.append("RSS MB at " + ", ".join(f"{p / 60:.0f} min: {_at(samples, p)}" for p in points))
    lines.append(f"peak {max(r for _, r in samples):.1f} MB over {len(samples)} samples")
    steady = [(t, r) for t, r in samples if t >= settle_s]
    line = fit([t / 3600 for t, _ in steady], [r for _, r in steady])
    if line is not None:
        low, high = line.ci95()
        lines.append(
            f"slope after {settle_s / 60:.0f} min: {line.slope:+.2f} MB/h "
            f"(95% CI {low:+.2f}..{high:+.2f}, n={line.n})"
        )
    codes = report.get("status_codes") or {}
    refresh = (report.get("tokens") or {}).get("refreshes")
    lines.append(
        f"report: {report.get('total_requests')} requests, {report.get('error_rate_percent')}% "
        f"errors, 401s {codes.get('401', 0)}, refreshes {refresh}, "
        f"timeseries_interval_s {(report.get('parameters') or {}).get('timeseries_interval_s')}"
    )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--sample-every", type=float, default=10)
    parser.add_argument("--settle", type=float, default=5, help="minutes left out of the slope")
    parser.add_argument("--out", type=Path, default=Path("soak-rss.json"))
    parser.add_argument("--keep", type=Path, default=None, help="results root to keep the run in")
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.sample_every <= 0:
        parser.exit(2, "soak_bench: --minutes and --sample-every must be positive\n")
    load_before = c.load_average()
    with c.scratch("soak-bench-") as scratch:
        tmp = args.keep or scratch
        tmp.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LOCUST_", "LOADTEST_"))}
        env.update(LOADTEST_RESULTS_ROOT=str(tmp), NO_COLOR="1")
        cmd = [str(c.ROOT / "run_load_tests.sh"), "soak", "--run-time", f"{int(args.minutes)}m"]
        samples = sample_run(cmd, env, tmp / "runner.log", args.minutes, args.sample_every)
        report = _report(tmp)
        tail = (tmp / "runner.log").read_text().splitlines()[-8:]
    if not samples:
        parser.exit(
            1, "soak_bench: no Locust process was sampled; runner said:\n" + "\n".join(tail)
        )
    lines = [
        c.machine_line(load_before, c.load_average()),
        *summarize(samples, args.settle * 60, report),
    ]
    args.out.write_text(json.dumps({"samples": samples, "summary": lines, "runner_tail": tail}))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
