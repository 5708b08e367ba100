"""State shared by every process of a run, and by later runs: cached tokens and the login budget.

Both live in files under the user's cache directory (``$XDG_CACHE_HOME`` or ``~/.cache``,
``therapybridge-loadtest/``), never under results/ (which CI uploads). ``LOADTEST_TOKEN_CACHE=PATH``
moves the token file (the budget file sits beside it); ``LOADTEST_NO_TOKEN_CACHE=1``
(``--no-token-cache``) keeps tokens in memory only. Each file is read and rewritten under an
exclusive ``flock`` on a sibling ``.lock`` file, held for milliseconds and taken without blocking
(polled with the caller's ``sleep``), so it works alike in threads, asyncio threads and gevent.
The token file is 0600: it holds bearer tokens. Entries are keyed by target URL and account email;
expiry is wall-clock (``time.time()``), so a token outlives the process that got it.

`LoginBudget` is the login allowance of the client address, ``N/PERIOD`` (``--login-rate``,
``LOADTEST_LOGIN_RATE``, default 5/minute, the deployed service's). Logins go at full speed until a
refusal; from then on each login takes the next free slot: a full period after the refusal, then
one every PERIOD/N, which keeps any window of PERIOD at N or fewer, fixed or moving.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from loadkit.contract.api import Token

DEFAULT_LOGIN_RATE = "5/minute"
PACED_MEMORY_S = 3600.0  # a refusal seen within this long keeps later runs paced from the start
SLOT_MARGIN = 1.05  # a little slower than the budget: clocks and window edges differ
SLOT_PAD_S = 0.25
LOCK_TIMEOUT_S = 60.0
_UNITS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600}


class StoreError(ValueError):
    """A setting of the shared state is unusable (one line)."""


def cache_dir() -> Path:
    """The folder of the token cache and the login budget."""
    file = os.environ.get("LOADTEST_TOKEN_CACHE", "").strip()
    if file:
        return Path(file).expanduser().parent
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or str(Path.home() / ".cache")
    return Path(base) / "therapybridge-loadtest"


def token_file() -> Path | None:
    """The token cache file, None when caching is off (LOADTEST_NO_TOKEN_CACHE)."""
    if os.environ.get("LOADTEST_NO_TOKEN_CACHE", "").strip() not in ("", "0"):
        return None
    file = os.environ.get("LOADTEST_TOKEN_CACHE", "").strip()
    return Path(file).expanduser() if file else cache_dir() / "tokens.json"


@contextlib.contextmanager
def locked(path: Path, sleep: Callable[[float], object] = time.sleep) -> Iterator[None]:
    """Hold an exclusive lock on ``path``.lock (polled, so the caller's ``sleep`` yields)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + LOCK_TIMEOUT_S
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise StoreError(f"{path}: locked by another process for too long") from None
                sleep(0.02)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def read_json(path: Path) -> dict:
    """The JSON object in ``path`` ({} when absent or unreadable)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_json(path: Path, data: dict) -> None:
    """Write ``data`` atomically, readable by the user alone: created 0600 (never chmod after)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.unlink(missing_ok=True)  # a crashed writer's leftover; O_EXCL: never through a link
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle)
    os.replace(temporary, path)


class TokenStore:
    """Tokens by (target, email): in memory, and in the 0600 cache file unless caching is off."""

    def __init__(self, target: str, file: Path | None = None, *, use_file: bool = True) -> None:
        self.target = target.rstrip("/")
        self.file = (file or token_file()) if use_file else None
        self._memory: dict[str, Token] = {}

    def _key(self, email: str) -> str:
        return f"{self.target}|{email}"

    def get(self, email: str) -> Token | None:
        """The freshest known token of the account (memory, else the file)."""
        token = self._memory.get(email)
        if self.file is not None:
            stored = self._from_file(email)
            if stored is not None and (token is None or stored.expires_at > token.expires_at):
                token = self._memory[email] = stored
        return token

    def _from_file(self, email: str) -> Token | None:
        entry = read_json(self.file).get("tokens", {}).get(self._key(email))
        if not isinstance(entry, dict) or not isinstance(entry.get("access_token"), str):
            return None
        return Token(entry["access_token"], entry.get("refresh_token"), float(entry["expires_at"]))

    def put(self, email: str, token: Token, sleep: Callable[[float], object] = time.sleep) -> None:
        """Keep a token (and write it to the file, dropping expired entries)."""
        self._memory[email] = token
        self._update(email, token, sleep)

    def drop(self, email: str, token: Token | None = None, sleep=time.sleep) -> None:
        """Forget the account's token (only ``token``, when given: a newer one stays)."""
        current = self._memory.get(email)
        if token is None or current is None or current.access_token == token.access_token:
            self._memory.pop(email, None)
            self._update(email, None, sleep, only=token)

    def _update(self, email: str, token: Token | None, sleep, only: Token | None = None) -> None:
        if self.file is None:
            return
        with locked(self.file, sleep):
            data = read_json(self.file)
            tokens = {
                k: v
                for k, v in data.get("tokens", {}).items()
                if isinstance(v, dict) and float(v.get("expires_at", 0)) > time.time()
            }
            key = self._key(email)
            if token is not None:
                tokens[key] = {
                    "access_token": token.access_token,
                    "refresh_token": token.refresh_token,
                    "expires_at": token.expires_at,
                }
            elif only is None or tokens.get(key, {}).get("access_token") == only.access_token:
                tokens.pop(key, None)
            write_json(self.file, {"version": 1, "tokens": tokens})

    @contextlib.contextmanager
    def refreshing(self, email: str, sleep=time.sleep) -> Iterator[None]:
        """Held while one process refreshes the account's token (refresh tokens rotate)."""
        if self.file is None:
            yield
            return
        slug = re.sub(r"[^A-Za-z0-9]+", "_", self._key(email))[-120:]
        with locked(self.file.parent / f"refresh-{slug}", sleep):
            yield


@dataclass(frozen=True)
class Rate:
    """N logins per PERIOD seconds."""

    count: int
    period_s: float

    def __str__(self) -> str:
        names = {60.0: "minute", 3600.0: "hour", 1.0: "second"}
        period = names.get(self.period_s) or f"{self.period_s:g}s"
        return f"{self.count}/{period}"

    def seconds_for(self, logins: int) -> float:
        """How long ``logins`` logins take at this rate (after the first window)."""
        return logins * self.period_s / self.count


def parse_rate(text: str | None) -> Rate:
    """ "5/minute", "5/min", "5/10s", "5/60" or "5 per 10 seconds" -> Rate; StoreError if not."""
    raw = (text or DEFAULT_LOGIN_RATE).strip().lower()
    m = re.fullmatch(r"(\d+)\s*(?:/|per)\s*(\d*\.?\d*)\s*([a-z]*)", raw)
    unit = m.group(3).rstrip("s") if m and m.group(3) not in ("s",) else "s"
    if not m or (m.group(3) and unit not in _UNITS) or int(m.group(1)) < 1:
        raise StoreError(f"login rate {text!r} is not N/PERIOD (e.g. 5/minute, 5/10s)")
    amount = float(m.group(2)) if m.group(2) else 1.0
    period = amount * _UNITS[unit] if m.group(3) else amount
    if period <= 0:
        raise StoreError(f"login rate {text!r} has an empty period")
    return Rate(int(m.group(1)), period)


class LoginBudget:
    """The address's login allowance, shared through a file by every process of a run."""

    def __init__(self, target: str, rate: Rate, file: Path | None = None) -> None:
        self.target = target.rstrip("/")
        self.rate = rate
        self.file = file or cache_dir() / "login-budget.json"
        self._local: dict = {}  # used when the file cannot be written

    def _state(self, data: dict) -> dict:
        return data.setdefault("targets", {}).setdefault(self.target, {})

    def _edit(self, change: Callable[[dict, float], object], sleep=time.sleep) -> object:
        now = time.time()
        try:
            with locked(self.file, sleep):
                data = read_json(self.file)
                result = change(self._state(data), now)
                write_json(self.file, data)
                return result
        except (OSError, StoreError):
            return change(self._local, now)

    def paced(self) -> bool:
        """Whether a login refusal was seen recently (logins then take slots)."""
        state = self._state(read_json(self.file)) if self.file.exists() else self._local
        return time.time() - float(state.get("refused_at") or 0) < PACED_MEMORY_S

    def reserve(self, sleep=time.sleep) -> float:
        """Take the next login slot: the seconds to wait before sending (0: now)."""

        def take(state: dict, now: float) -> float:
            refused = float(state.get("refused_at") or 0)
            if now - refused >= PACED_MEMORY_S:
                state["last_sent"] = now
                return 0.0
            gap = self.rate.period_s / self.rate.count * SLOT_MARGIN
            slot = max(now, refused + self.rate.period_s * SLOT_MARGIN + SLOT_PAD_S)
            slot = max(slot, float(state.get("last_slot") or 0) + gap)
            state["last_slot"] = state["last_sent"] = slot
            return slot - now

        return float(self._edit(take, sleep))

    def refused(self, sleep=time.sleep) -> bool:
        """A login was refused now: pace from here. True when this switched pacing on."""

        def mark(state: dict, now: float) -> bool:
            was = now - float(state.get("refused_at") or 0) < PACED_MEMORY_S
            state["refused_at"], state["last_slot"] = now, 0
            return not was

        return bool(self._edit(mark, sleep))

    def answered(self) -> bool:
        """Whether a login on this target succeeded before (in any process of any run)."""
        state = self._state(read_json(self.file)) if self.file.exists() else self._local
        return bool(state.get("answered"))

    def note_answered(self, sleep=time.sleep) -> None:
        """A login succeeded: a later 5xx on login is the limiter, not a broken server."""
        if not self.answered():
            self._edit(lambda state, now: state.update(answered=True), sleep)

    def seed_end(self) -> int | None:
        """The first seed account number the target lacks, as any process found it."""
        state = self._state(read_json(self.file)) if self.file.exists() else self._local
        return int(state["seed_end"]) if state.get("seed_end") else None

    def note_seed_end(self, number: int, sleep=time.sleep) -> None:
        """Seed accounts from ``number`` on do not exist on this target."""

        def note(state: dict, now: float) -> None:
            state["seed_end"] = min(int(state.get("seed_end") or number), number)

        self._edit(note, sleep)

    def note_sent(self, count: int = 1, sleep=time.sleep) -> None:
        """Logins sent outside the manager (the probes' wrong logins) spend the budget too."""

        def note(state: dict, now: float) -> None:
            state["last_sent"] = now
            state["probe_logins"] = int(state.get("probe_logins") or 0) + count

        self._edit(note, sleep)

    def window_clear_in(self) -> float:
        """Seconds until a full period has passed since the last login (0 when not paced)."""
        if not self.paced():
            return 0.0
        state = self._state(read_json(self.file)) if self.file.exists() else self._local
        last = max(float(state.get("last_sent") or 0), float(state.get("refused_at") or 0))
        return max(0.0, last + self.rate.period_s * SLOT_MARGIN + SLOT_PAD_S - time.time())
