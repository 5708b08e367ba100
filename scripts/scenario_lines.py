"""The `all` preset's terminal lines beside each scenario's one line (scripts/runner_helper.py).

``tally`` prints the count of the scenarios by run.json's verdicts (the rows report.md lists), so
the runner's count and the report's are one. Standard library and loadkit only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from loadkit.report.run_folder import safe_test_name
from loadkit.report.scenario_verdict import FAILED, NOT_RUN, PASSED, SKIPPED


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
