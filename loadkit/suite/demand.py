"""What each test of the pytest suite will take before it runs: general accounts, account roles
and uploads, read from the targets profile's sizes (the accounts fixture logs the accounts in ahead
and registers the uploads with `loadkit.contract.upload_budget`). Unknown sizes count as none: the
test says what is missing when it runs.
"""

from __future__ import annotations

from loadkit.probes import upload_probes
from loadkit.suite.session import PROBE_ACCOUNTS, accounts_needed
from loadkit.verdicts import slo


def account_demand(name: str, param: str | None, profile: slo.Profile) -> tuple[int, list[str]]:
    """(general accounts, roles) a test takes: the accounts it needs logged in before it runs
    (0 general when the profile lacks the test's sizes: it will say so when it runs)."""
    roles = {"rate_limit_enforcement": {"default_limit": ["reserved:0"],
                                        "upload_limit": ["reserved:1"]}.get(param or "", []),
             "limiter_semantics_probe": [param] if param in PROBE_ACCOUNTS else [],
             "upload_trust_probe": ["upload_trust"]}  # fmt: skip
    try:
        general = _general_demand(name, profile)
    except (KeyError, TypeError, ValueError, ZeroDivisionError, slo.TargetsError):
        general = 0
    return general, roles.get(name, [])


def _general_demand(name: str, profile: slo.Profile) -> int:
    size = profile.scenario
    limit = int(size("rate_limit").get("limit", 100))
    need = lambda requests: accounts_needed(requests, limit=limit)  # noqa: E731

    def sustained() -> int:
        s = size("sustained")
        window = min(60.0, float(s["duration_s"]) + float(s.get("warmup_s", 0)))
        return need(int(float(s["requests"]) / float(s["duration_s"]) * window) + 1)

    def memory() -> int:
        n = int(size("memory")["requests"])
        return need(n + max(10, n // 10))

    general = {
        "concurrent_sessions": lambda: need(2 * int(size("sessions")["concurrent"])),
        "concurrent_uploads": lambda: int(size("uploads")["concurrent"]),
        "database_pool_stress": lambda: need(2 * int(size("pool")["concurrent"])),
        "sustained_load": sustained,
        "memory_leak_detection": memory,
        "access_control_probe": lambda: 2 + need(int(size("probes")["load_requests"])),
        "event_loop_probe": lambda: int(size("event_loop")["uploads"]),
    }
    return general[name]() if name in general else 0


def upload_demand(name: str, param: str | None, profile: slo.Profile) -> int:
    """Uploads a test sends (each counts toward an address-keyed upload limit; 0 when unknown)."""
    size = profile.scenario
    needs = {
        "concurrent_uploads": lambda: int(size("uploads")["concurrent"]),
        "event_loop_probe": lambda: int(size("event_loop")["uploads"]),
        "upload_trust_probe": lambda: len(upload_probes.upload_cases(1024)) + 1,
        "access_control_probe": lambda: int(size("probes")["access_rounds"]) * ACCESS_CREDENTIALS,
        "rate_limit_enforcement[upload_limit]": lambda: int(size("upload_rate_limit")["requests"]),
        "limiter_semantics_probe[upload]": lambda: int(size("probes").get("upload_limit", 10)) + 2,
        "limiter_semantics_probe[extract]": lambda: 1,
    }
    key = f"{name}[{param}]" if param else name
    try:
        return needs[key]() if key in needs else 0
    except (KeyError, TypeError, ValueError, slo.TargetsError):
        return 0


ACCESS_CREDENTIALS = 5  # no, tampered, expired, unsigned and another's token (probes.py)
