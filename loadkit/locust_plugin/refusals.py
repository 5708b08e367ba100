"""Accounts whose login was refused with HTTP 401 (a wrong password, no such user): one warning
line and the account is dropped once another works; else the run stops at once, one line, exit 2.

A refusal is final for the account in this process: it never logs in again, and its users move to
another account of their kind (`users.ApiUser.access_token`). Its warning waits until an account
logged in (a list that is all wrong gives the one stop line, not a warning per account). The run
stops when every account of this process failed to log in; when the first
``REFUSED_BEFORE_ONE_WORKS`` accounts tried were all refused and none logged in (a wrong password
for the whole list, say, where trying a hundred accounts would spend the login budget of a
deployment that allows 5 logins a minute); or when every account of one kind (general, reserved)
was refused and still none logged in ``EXHAUSTED_WAIT_S`` later. Stopping writes one line naming
the accounts and the status, sets exit code 2 (`state.EXIT_USAGE`, kept over the report's verdict)
and quits the runner; the report of what was sent is still written. A Locust worker stops its own
users and tells its master (`NO_ACCOUNT_MESSAGE`); the master says which worker stopped, and stops
the run the same way, exit 2, once every worker has said so (`WorkersWithoutAccounts`).
"""

from __future__ import annotations

import sys

import gevent
from locust.runners import WorkerRunner

from loadkit.contract.api import LoginError
from loadkit.locust_plugin.state import EXIT_USAGE, STATE, logger

REFUSED_BEFORE_ONE_WORKS = 5
QUIT_DELAY_S = 0.2
EXHAUSTED_WAIT_S = 5.0
NO_ACCOUNT_MESSAGE = "loadtest_no_account"  # worker -> master: {"line": the worker's stop line}


class Refusals:
    """The accounts refused and those that logged in, in this process."""

    def __init__(self) -> None:
        self.refused: dict[str, LoginError] = {}
        self.working: set[str] = set()
        self._unsaid: list[str] = []  # warnings held until an account logs in
        self._exhausted: set[str] = set()

    def worked(self, email: str) -> None:
        """An account logged in: say which were dropped before it."""
        self.working.add(email)
        said, self._unsaid = self._unsaid, []
        for line in said:
            self._say(line)

    def note(self, exc: Exception, accounts: set[str], failed: dict[str, str]) -> None:
        """A failed login (``failed``: every failure so far, by email): a 401 drops its account
        with one warning line; the run stops when nothing usable is left among ``accounts``."""
        email = getattr(exc, "account_email", None)
        refusal = isinstance(exc, LoginError) and exc.status == 401 and email not in self.refused
        if refusal:
            self.refused[email] = exc
        left = accounts - set(failed)
        hopeless = not self.working and len(self.refused) >= REFUSED_BEFORE_ONE_WORKS
        if (not left and not self.working) or (refusal and hopeless):
            stop_run(self._no_account_line(len(accounts), bool(left), failed))
        elif refusal:
            line = f"{exc}: that account is dropped ({len(left)} of {len(accounts)} left)"
            if self.working:
                self._say(line)
            else:
                self._unsaid.append(line)

    def exhausted(self, kind: str, persona: str, accounts: set[str], failed: dict) -> None:
        """Every account of ``kind`` was refused: its ``persona`` users stop (said once when
        another account works); when none has logged in EXHAUSTED_WAIT_S later (the other kind's
        logins had their time), the run stops."""
        if not self.working:
            gevent.spawn_later(EXHAUSTED_WAIT_S, self._stop_unless_working, accounts, failed)
        elif kind not in self._exhausted:
            self._exhausted.add(kind)
            self._say(f"every {kind} account was refused: the {persona} users stop")

    def _stop_unless_working(self, accounts: set[str], failed: dict) -> None:
        if not self.working:
            left = bool(accounts - set(failed))
            stop_run(self._no_account_line(len(accounts), left, failed))

    @staticmethod
    def _say(line: str) -> None:
        logger.warning("%s", line)

    def _no_account_line(self, total: int, untried: bool, failed: dict[str, str]) -> str:
        """One line: which accounts failed, with the first refusal's status and message."""
        emails = list(failed)
        shown = ", ".join(emails[:3]) + (f" and {len(emails) - 3} more" if len(emails) > 3 else "")
        scope = (
            f"{len(emails)} of the {total} accounts tried, every one refused, none logged in"
            if untried
            else f"every account ({total}) failed to log in"
        )
        if self.refused:
            first = next(iter(self.refused.values()))
            said = f" ({' '.join(first.detail.split())[:120]})" if first.detail else ""
            return (
                f"no usable account: {scope}, HTTP {first.status}{said}: {shown}; check --accounts"
            )
        return f"no usable account: {scope}: {failed[emails[0]]}"


def stop_run(line: str) -> None:
    """Stop the run now with ``line`` on stderr and exit code 2 (a worker: its users, and it tells
    its master); once."""
    if STATE.forced_exit is not None:
        return
    sys.stderr.write(f"load_test: {line}\n")
    STATE.forced_exit = EXIT_USAGE
    environment = STATE.environment
    if environment is None:
        return
    if isinstance(environment.runner, WorkerRunner):
        environment.runner.send_message(NO_ACCOUNT_MESSAGE, {"line": line})
        return
    environment.process_exit_code = EXIT_USAGE
    gevent.spawn_later(QUIT_DELAY_S, environment.runner.quit)  # after the users' StopUser


class WorkersWithoutAccounts:
    """Master: the workers that stopped for want of a usable account, each with its line."""

    def __init__(self) -> None:
        self.lines: dict[str, str] = {}

    def heard(self, environment: object, msg: object, **_kw: object) -> None:
        """A worker stopped its users: one warning line; the last of them stops the run."""
        line = str((msg.data or {}).get("line", "no usable account"))
        self.lines[msg.node_id] = line
        workers = max(environment.runner.worker_count, len(self.lines))
        if len(self.lines) >= workers:
            stop_run(f"no worker has a usable account ({len(self.lines)} of {workers}): {line}")
        else:
            logger.warning("worker %s stopped its users (%d of %d workers): %s", msg.node_id,
                           len(self.lines), workers, line)  # fmt: skip
