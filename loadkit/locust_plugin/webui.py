"""The server, in Locust's own web UI: a "Server" tab, live charts and the run's report.

The tab uses Locust's extension points (``extended_tabs`` / ``extended_tables`` in the template
arguments, rows added to /stats/requests as ``extended_stats``). The charts page (/server-charts)
and its JSON feed (/server-charts/data) are routes on Locust's Flask app; the page and uPlot are
files in loadkit/locust_plugin/webui. When a test stops, the run folder is rendered (``python -m
loadkit.render`` in a child process) and /server-report shows report.md and its charts; the tab
names the folder. Opt-in personas (DefectProber) start unticked in the class picker
(webui/picker.js).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from flask import Blueprint, jsonify, request, send_from_directory

from loadkit.locust_plugin import report_page
from loadkit.locust_plugin.run import LocustRun
from loadkit.report.server_profile import SVG_NAME, read_profile
from loadkit.verdicts import locust_verdict

WEBUI_DIR = Path(__file__).resolve().parent / "webui"
TAB_KEY = "server"
CHARTS_PATH = "/server-charts"
_SERIES_KEYS = (
    "server_rss_mb",
    "server_cpu_percent",
    "pool_checked_out",
    "p95_ms",
    "requests_per_second",
)


def _fmt(value: object, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        value = f"{value:,.1f}"
    return f"{value}{unit}"


def pool_now(run: LocustRun) -> dict:
    """The pool in connections now: in use, open (size + overflow) and capacity; None unknown."""
    pool = run.pool.summary() if run.pool is not None else {}
    last = run.pool.samples()[-1:] if run.pool is not None else []
    size, overflow = pool.get("size"), last[0].get("overflow") if last else None
    return {
        "in_use": last[0].get("checked_out") if last else None,
        "open": size + overflow if None not in (size, overflow) else None,
        "capacity": pool.get("capacity"),
    }


def _profile_text() -> str:
    """The Server tab's flame graph row: its link, or why there is none."""
    data = read_profile(report_page.STATUS.folder()) if report_page.STATUS.folder() else None
    if data is None:
        return "written when a test stops"
    if not data.get("recorded"):
        return f"none: {data.get('reason')}"
    return f"{report_page.REPORT_PATH}/{SVG_NAME} ({data.get('samples')} busy samples)"


def tab_rows(run: LocustRun | None, state: str) -> list[dict]:
    """The Server tab's rows: {metric, value}; figures move while a test runs."""
    if run is None:
        return [{"metric": "Test", "value": "not configured"}]
    live, pool = run.live_row(), pool_now(run)
    rows, _ = run.thresholds()
    server = run.server.summary() if run.server is not None else {}
    figures = [
        ("Test", state),
        ("Run folder", report_page.STATUS.folder_text()),
        ("Report", report_page.STATUS.text()),
        ("Server profile", _profile_text()),
        ("Server PID", _fmt(server.get("server_pid"))),
        ("Server RSS now (MB)", _fmt(live["server_rss_mb"])),
        ("Server RSS growth (MB)", _fmt(server.get("memory_growth_mb"))),
        ("Server CPU now (%)", _fmt(live["server_cpu_percent"])),
        ("DB pool connections in use", _fmt(pool["in_use"])),
        ("DB pool connections open", _fmt(pool["open"])),
        ("DB pool capacity (size + max_overflow)", _fmt(pool["capacity"])),
        (f"p95, last {5} s (ms)", _fmt(live["p95_ms"])),
        ("Requests recorded", _fmt(run.recorder.total)),
        ("Load generator CPU (%)", _fmt(run.generator_cpu_percent())),
        ("Verdict", locust_verdict.verdict_text(rows) if run.recorder.total else "no figures yet"),
    ]
    figures += [
        (
            f"  {r['metric']} <= {r['limit']}"
            + (f" ({r['endpoint']})" if r.get("endpoint") else ""),
            f"{_fmt(r['actual'])} {'pass' if r['passed'] else 'FAIL'}",
        )
        for r in rows
    ]
    figures.append(("Live charts", CHARTS_PATH))
    return [{"metric": m, "value": v} for m, v in figures]


def chart_data(run: LocustRun | None, state: str) -> dict:
    """The charts page's feed: per-second series and the verdict."""
    rows = list(run.live) if run is not None else []
    series = {"t": [r["t"] for r in rows]}
    for key in _SERIES_KEYS:
        series[key] = [r[key] for r in rows]
    pool = (run.pool.summary() if run is not None and run.pool is not None else {}) or {}
    size = pool.get("size")
    series["pool_open"] = [
        size + r["pool_overflow"] if None not in (size, r.get("pool_overflow")) else None
        for r in rows
    ]
    series["pool_capacity"] = [pool.get("capacity") for _ in rows]
    verdict = {"passed": None, "text": "no figures yet"}
    if run is not None and run.recorder.total:
        checks, _ = run.thresholds()
        verdict = {
            "passed": all(c["passed"] for c in checks),
            "text": locust_verdict.verdict_text(checks),
        }
    return {"state": state, "series": series, "verdict": verdict, "now": time.time()}


def install(environment: object, get_run: Callable[[], LocustRun | None]) -> None:
    """Add the Server tab, the charts page and its feed to Locust's web UI."""
    web_ui = environment.web_ui
    web_ui.template_args["extended_tabs"] = [{"title": "Server", "key": TAB_KEY}]
    web_ui.template_args["extended_tables"] = [
        {
            "key": TAB_KEY,
            "structure": [{"key": "metric", "title": "Figure"}, {"key": "value", "title": "Value"}],
        }
    ]

    def state() -> str:
        runner = environment.runner
        return str(getattr(runner, "state", "unknown"))

    @web_ui.app.after_request
    def add_server_stats(response):  # noqa: ANN001, ANN202 - Flask hook
        if request.path.rstrip("/").endswith("/stats/requests") and response.is_json:
            body = response.get_json()
            body["extended_stats"] = [{"key": TAB_KEY, "data": tab_rows(get_run(), state())}]
            response.set_data(json.dumps(body))
        elif request.path == "/" and response.mimetype == "text/html":
            response.set_data(_with_picker_script(response.get_data(as_text=True), environment))
        return response

    blueprint = Blueprint(
        "loadkit_webui",
        __name__,
        static_folder=str(WEBUI_DIR),
        static_url_path="/loadkit-webui",
    )

    @blueprint.route(CHARTS_PATH)
    @web_ui.auth_required_if_enabled
    def server_charts():  # noqa: ANN202 - Flask view
        return send_from_directory(WEBUI_DIR, "charts.html")

    @blueprint.route(CHARTS_PATH + "/data")
    @web_ui.auth_required_if_enabled
    def server_charts_data():  # noqa: ANN202 - Flask view
        return jsonify(chart_data(get_run(), state()))

    report_page.add_routes(blueprint, web_ui)
    web_ui.app.register_blueprint(blueprint)
    report_page.render_on_stop(environment)


def unticked_classes(environment: object) -> list[str]:
    """Personas the picker offers but a default test does not run (opt-in: DefectProber)."""
    chosen = {cls.__name__ for cls in environment.user_classes}
    return sorted(set(environment.available_user_classes or {}) - chosen)


def _with_picker_script(html: str, environment: object) -> str:
    """Locust's page with the script that unticks the opt-in personas in its class picker."""
    names = json.dumps(unticked_classes(environment))
    script = (
        f"<script>window.LOADKIT_UNTICKED = {names};</script>"
        '<script src="/loadkit-webui/picker.js"></script>'
    )
    return html.replace("</body>", script + "</body>", 1)
