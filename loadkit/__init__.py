"""loadkit: the shared library of the TherapyBridge load-testing suite (for Locust and pytest).

The parts (ARCHITECTURE.md has the map and one request's way to the report):
- `contract`: the API in code: routes, payloads, the WAV factory, accounts and tokens;
- `measure`: HTTP client, engine, the one send-and-record path, recorder, histogram;
- `watch`: server and pool monitors, the /live canary, the target and its loopback check;
- `verdicts`: targets.toml and thresholds, the rate-limit verdict, pool visibility, cost, findings;
- `report`: the run folder, report schema and writer, redaction, render, charts, compare;
- `probes`: the defect probes and their asyncio driver;
- `suite`: the pytest harness and scenarios, the outcome, the suite's accounts;
- `locust_plugin`: the only part that imports Locust or gevent (hooks, users, shapes, web UI).
`render` and `compare` are the entry modules of ``python -m loadkit.render`` and
``python -m loadkit.compare``. This package imports nothing: importing a part costs only that part.
"""
