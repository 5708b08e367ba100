"""The Locust plugin's state for one process: the run, its folder, CSV
writer and parameters, and the constants the hooks share."""

from __future__ import annotations

import logging
from pathlib import Path

import gevent
from locust.stats import StatsCSVFileWriter

from loadkit.locust_plugin.run import LocustRun

logger = logging.getLogger("loadkit.locust")
EXIT_FAILED = 1
EXIT_USAGE = 2
WORKER_REPORT_WAIT_S = 3.5  # a worker's stats message comes every 3 s
DATA_KEY = "loadkit"


class _State:
    run: LocustRun | None = None
    environment: object = None
    directory: Path | None = None
    csv: StatsCSVFileWriter | None = None
    csv_greenlet: gevent.Greenlet | None = None
    parameters: dict | None = None
    profiler: object = None  # loadkit.watch.server_profile.ServerProfiler while a test runs
    last_logged: str | None = None  # the report is written at stop and again at quit: log once
    forced_exit: int | None = None  # an exit code the verdict must not replace (no usable account)


STATE = _State()
