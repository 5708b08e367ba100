"""The web UI's report: when a test stops, render the run folder; /server-report shows it.

`render_on_stop` listens to Locust's ``test_stop`` (after loadkit.locust_plugin.hooks's listener
wrote the JSON report, or the master's delayed write) and runs ``python -m loadkit.render RUN_DIR``
in a child process, so report.md and charts exist as soon as a test stops, not when Locust quits.
/server-report names the run folder and links report.md, the server's flame graph and each
chart; `STATUS` feeds the Server tab's "Run folder" and "Report" rows.
"""

from __future__ import annotations

import html
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import gevent
from flask import Blueprint, abort, send_from_directory
from locust.runners import MasterRunner

from loadkit.report.server_profile import SVG_NAME, read_profile

REPORT_PATH = "/server-report"
RENDER_TIMEOUT_S = 180.0
MASTER_WAIT_S = 4.0  # loadkit.locust_plugin.hooks writes a master's report 3.5 s after the stop


@dataclass
class RenderStatus:
    """Where the run folder is and how its latest rendering went."""

    state: str = "written when a test stops"
    rendered_at: float | None = None

    @staticmethod
    def folder() -> Path | None:
        """This run's folder (loadkit.report.run_folder.run_dir exports it as LOADTEST_RUN_DIR)."""
        shared = os.environ.get("LOADTEST_RUN_DIR", "").strip()
        return Path(shared) if shared else None

    def folder_text(self) -> str:
        folder = self.folder()
        return str(folder) if folder is not None else "not created yet"

    def text(self) -> str:
        """The Server tab's Report row."""
        if self.rendered_at is None:
            return self.state
        stamp = time.strftime("%H:%M:%S", time.localtime(self.rendered_at))
        return f"{REPORT_PATH} (report.md and charts, rendered {stamp})"


STATUS = RenderStatus()


def render_now(folder: Path) -> None:
    """Render the folder in a child process (cooperative under gevent); record how it went."""
    STATUS.state = "rendering..."
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "loadkit.render", str(folder)],
            capture_output=True,
            text=True,
            timeout=RENDER_TIMEOUT_S,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        STATUS.state = f"not rendered: {exc}"
        return
    if (folder / "report.md").is_file() and proc.returncode in (0, 1):
        STATUS.rendered_at, STATUS.state = time.time(), "rendered"
    else:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        STATUS.state = f"not rendered: {lines[-1] if lines else f'exit {proc.returncode}'}"


def render_on_stop(environment: object) -> None:
    """Render the run folder each time a test stops (after its JSON report is written)."""

    def on_stop(**_kw: object) -> None:
        folder = STATUS.folder()
        if folder is None:
            return
        wait = MASTER_WAIT_S if isinstance(environment.runner, MasterRunner) else 0.2
        STATUS.state = "rendering..."
        gevent.spawn_later(wait, render_now, folder)

    environment.events.test_stop.add_listener(on_stop)


def page() -> str:
    """The report page: the run folder, the report's state, report.md and every chart."""
    folder = STATUS.folder()
    if folder is None or not (folder / "report.md").is_file():
        body = f"<p>No report yet: {html.escape(STATUS.text())}.</p>"
    else:
        charts = sorted((folder / "charts").glob("*.png"))
        body = f'<p><a href="{REPORT_PATH}/report.md">report.md</a> · {len(charts)} charts'
        body += f" · {profile_link(folder)}</p>"
        body += "".join(
            f'<figure><img src="{REPORT_PATH}/charts/{c.name}" alt="{c.stem}">'
            f"<figcaption>{html.escape(c.name)}</figcaption></figure>"
            for c in charts
        )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>Run report</title></head>"
        f"<body><h1>Run report</h1><p>Run folder: <code>{html.escape(STATUS.folder_text())}"
        f'</code></p><p>{html.escape(STATUS.text())} · <a href="/">back to Locust</a></p>'
        f"{body}</body></html>"
    )


def profile_link(folder: Path | None) -> str:
    """The latest flame graph's link (HTML), or why the run has none."""
    data = read_profile(folder) if folder is not None else None
    if data is None:
        return "server profile: written when a test stops"
    if not data.get("recorded"):
        return f"no server profile: {html.escape(str(data.get('reason')))}"
    link = f'<a href="{REPORT_PATH}/{SVG_NAME}">server flame graph</a>'
    return f"{link} ({data.get('samples')} busy samples)"


def _folder() -> Path:
    folder = STATUS.folder()
    if folder is None:
        abort(404)
    return folder


def add_routes(blueprint: Blueprint, web_ui: object) -> None:
    """/server-report, its report.md (as text) and its charts, on the loadkit blueprint."""

    @blueprint.route(REPORT_PATH)
    @web_ui.auth_required_if_enabled
    def server_report():  # noqa: ANN202 - Flask view
        return page()

    @blueprint.route(REPORT_PATH + "/report.md")
    @web_ui.auth_required_if_enabled
    def server_report_md():  # noqa: ANN202 - Flask view
        return send_from_directory(_folder(), "report.md", mimetype="text/plain")

    @blueprint.route(REPORT_PATH + "/" + SVG_NAME)
    @web_ui.auth_required_if_enabled
    def server_report_profile():  # noqa: ANN202 - Flask view
        return send_from_directory(_folder(), SVG_NAME, mimetype="image/svg+xml")

    @blueprint.route(REPORT_PATH + "/charts/<path:name>")
    @web_ui.auth_required_if_enabled
    def server_report_chart(name: str):  # noqa: ANN202 - Flask view
        return send_from_directory(_folder() / "charts", name, mimetype="image/png")
