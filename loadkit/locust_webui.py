"""The server, in Locust's own web UI: a "Server" tab and a page of live charts, served offline.

The tab uses Locust's extension points (``extended_tabs`` / ``extended_tables`` in the template
arguments, rows added to /stats/requests as ``extended_stats``). The charts page (/server-charts)
and its JSON feed (/server-charts/data) are routes on Locust's Flask app; the page and uPlot are
files in loadkit/webui.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from flask import Blueprint, jsonify, request, send_from_directory

from loadkit import locust_verdict
from loadkit.locust_run import LocustRun

WEBUI_DIR = Path(__file__).resolve().parent / "webui"
TAB_KEY = "server"
CHARTS_PATH = "/server-charts"
_SERIES_KEYS = (
    "server_rss_mb",
    "server_cpu_percent",
    "pool_checked_out",
    "pool_overflow",
    "p95_ms",
    "requests_per_second",
)


def _fmt(value: object, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        value = f"{value:,.1f}"
    return f"{value}{unit}"


def tab_rows(run: LocustRun | None, state: str) -> list[dict]:
    """The Server tab's rows: {metric, value}; figures move while a test runs."""
    if run is None:
        return [{"metric": "Test", "value": "not configured"}]
    live = run.live_row()
    rows, _ = run.thresholds()
    server = run.server.summary() if run.server is not None else {}
    figures = [
        ("Test", state),
        ("Server PID", _fmt(server.get("server_pid"))),
        ("Server RSS now (MB)", _fmt(live["server_rss_mb"])),
        ("Server RSS growth (MB)", _fmt(server.get("memory_growth_mb"))),
        ("Server CPU now (%)", _fmt(live["server_cpu_percent"])),
        ("DB pool checked out", _fmt(live["pool_checked_out"])),
        ("DB pool overflow", _fmt(live["pool_overflow"])),
        (f"p95, last {5} s (ms)", _fmt(live["p95_ms"])),
        ("Requests recorded", _fmt(run.recorder.total)),
        ("Load generator CPU (%)", _fmt(run.generator_cpu_percent())),
        ("Verdict", locust_verdict.verdict_text(rows) if run.recorder.total else "no figures yet"),
    ]
    figures += [
        (
            f"  {r['metric']} <= {r['limit']}",
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

    web_ui.app.register_blueprint(blueprint)
