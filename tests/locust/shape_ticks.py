"""Print the ticks of a Locust load shape as JSON, run as a child process (it imports Locust).

``python -m tests.locust.shape_ticks SHAPE USERS SPAWN_RATE RUN_TIME ELAPSED...``: for each
ELAPSED seconds, the shape's ``tick()`` as it would answer that far into a run sized by
``-u``/``-r``/``-t`` (a USERS of 0 means no options were given).
Only the runner's parsed options are stood in for; the shape, its clock and its schedule are
Locust's and ours.
"""

from __future__ import annotations

import json
import sys
import time
from types import SimpleNamespace

from loadkit.locust_plugin.shapes import SHAPES


def ticks(name: str, users: int, rate: float, run_time: float, elapsed: list[float]) -> list:
    shape = SHAPES[name]()
    if users:
        options = SimpleNamespace(num_users=users, spawn_rate=rate, run_time=run_time)
        shape.runner = SimpleNamespace(environment=SimpleNamespace(parsed_options=options))
    out = []
    for seconds in elapsed:
        shape.start_time = time.perf_counter() - seconds
        out.append(shape.tick())
    return out


if __name__ == "__main__":
    name, users, rate, run_time, *elapsed = sys.argv[1:]
    result = ticks(name, int(users), float(rate), float(run_time), [float(e) for e in elapsed])
    print(json.dumps({"ticks": result, "gevent": "gevent" in sys.modules}))
