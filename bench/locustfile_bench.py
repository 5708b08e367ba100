"""Locust user classes for the benchmarks (pick one by name on the command line).

- ``TrivialUser``: a FastHttpUser sending ``GET $BENCH_PATH`` (default ``/``), waiting
  ``$BENCH_WAIT_S`` seconds (default 0) between requests;
- ``PersonaUser``: the personas' machinery (`loadkit.locust_plugin.users.ApiUser`: an account, one
login
  per account, the token on every request, responses checked by status) sending the same request.

With ``BENCH_HOOKS=1`` (default) `loadkit.locust_plugin.hooks` is imported, so our recorder,
monitors and JSON report are active exactly as with ``load_test.py``; ``BENCH_HOOKS=0`` is bare
Locust (``PersonaUser`` needs the hooks: they load its accounts).
"""

from __future__ import annotations

import os

from locust import FastHttpUser, constant, task

from loadkit.locust_plugin.users import ApiUser

if os.environ.get("BENCH_HOOKS", "1") == "1":
    from loadkit.locust_plugin import hooks  # noqa: F401 - registers the event hooks

PATH = os.environ.get("BENCH_PATH", "/")
WAIT_S = float(os.environ.get("BENCH_WAIT_S", "0"))


class TrivialUser(FastHttpUser):
    """One GET, then a constant wait."""

    wait_time = constant(WAIT_S)

    @task
    def get(self) -> None:
        self.client.get(PATH, name=f"GET {PATH}")


class PersonaUser(ApiUser):
    """The personas' base class with one authenticated GET as its task."""

    wait_time = constant(WAIT_S)

    @task
    def get(self) -> None:
        self.api("GET", PATH, name=f"GET {PATH}")
