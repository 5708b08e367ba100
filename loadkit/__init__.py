"""loadkit: the shared library of the TherapyBridge load-testing suite (for Locust and pytest).

Modules, one concept each: `api` (the contract: routes, payloads, accounts, tokens), `metrics`
(latency histograms and the run recorder), `report` (the JSON report and run folder), `slo`
(targets.toml profiles and threshold checks), `monitor` (server process and DB-pool samplers). None
of them imports Locust, gevent or asyncio: they are synchronous, so both gevent and asyncio code
can use them.
"""

__all__ = ["api", "metrics", "monitor", "report", "slo"]
