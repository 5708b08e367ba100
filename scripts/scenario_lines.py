"""The `all` preset's terminal lines beside each scenario's one line (scripts/runner_helper.py).

``follow_waiting`` copies a running scenario's waiting lines ("the login budget is reached ...:
about 3 min") from its log to the terminal as they are written, so a wait of minutes is never
silent; ``tally`` prints the count of the scenarios by run.json's verdicts (the rows report.md
lists), so the runner's count and the report's are one. Standard library and loadkit only.
"""

from __future__ import annotations

import codecs
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from loadkit.report.run_folder import safe_test_name
from loadkit.report.run_lock import process_alive
from loadkit.report.scenario_verdict import FAILED, NOT_RUN, PASSED, SKIPPED

# The scenario's lines that say it waits (loadkit.contract.accounts, loadkit.suite.session); one
# may follow pytest's "file.py::test_x " on the same line.
WAITING = re.compile(
    r"(?:^|\s)loadtest: ((?:the login budget is reached|logging in \d+ accounts)\b.*)"
)
FOLLOW_INTERVAL_S = 0.25


def follow_waiting(log: Path, pid: int, prefix: str) -> int:
    """Print each waiting line of ``log`` as "PREFIXwaiting: ..." while it is being written, until
    process ``pid`` ends (the runner kills this follower once the scenario is done)."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    offset, partial = 0, ""
    while True:
        alive = process_alive(pid)
        chunk = _read_from(log, offset)
        offset += len(chunk)
        *lines, partial = (partial + decoder.decode(chunk)).split("\n")
        if not _print_waiting(lines, prefix) or not alive:
            return 0
        time.sleep(FOLLOW_INTERVAL_S)


def _read_from(path: Path, offset: int) -> bytes:
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            return handle.read()
    except OSError:
        return b""


def _print_waiting(lines: Sequence[str], prefix: str) -> bool:
    """Print the waiting lines among ``lines``; False once the terminal is gone."""
    for found in filter(None, (WAITING.search(line.rstrip("\r")) for line in lines)):
        try:
            print(f"{prefix}waiting: {found.group(1)}", flush=True)
        except OSError:  # the line is in the log all the same
            return False
    return True


def tally(info: Mapping[str, Any], nodes: Sequence[str]) -> int:
    """Print the count of ``nodes`` by run.json's ``verdicts`` (``info``), then the failed and the
    not-run ones; 1 when one failed, 2 when one did not run, else 0."""
    verdicts = info.get("verdicts") or {}
    of = {node: verdicts.get(safe_test_name(node), NOT_RUN) for node in nodes}
    counts = {v: sum(1 for x in of.values() if x == v) for v in (FAILED, PASSED, SKIPPED, NOT_RUN)}
    if not counts[FAILED] and not counts[NOT_RUN]:
        skipped = f" ({counts[SKIPPED]} skipped)" if counts[SKIPPED] else ""
        print(f"{counts[PASSED]} of {len(nodes)}{skipped} scenarios passed")
        return 0
    for verdict in (FAILED, NOT_RUN):
        if counts[verdict]:
            rest = [f"{n} {v.replace('_', ' ')}" for v, n in counts.items() if n and v != verdict]
            also = f" ({', '.join(rest)})" if rest else ""
            print(f"{counts[verdict]} of {len(nodes)} scenarios {verdict.replace('_', ' ')}{also}:")
            print("\n".join(f"  {node}" for node, v in of.items() if v == verdict))
    return 1 if counts[FAILED] else 2
