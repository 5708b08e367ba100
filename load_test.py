"""Locust personas for the TherapyBridge API: `locust -f load_test.py --host=http://localhost:8000`.

Four personas; tags select scenarios (``--tags realistic|upload|health|rate_limit|db_pool``):
- RealisticTherapist: weighted tasks over the whole contract, now and then a real audio upload
  followed to ``processed`` (within an upload budget per account), and /health;
- RateLimitProber: drives GET /api/sessions/ past its limit on reserved accounts; a 429 with an
  integer Retry-After is its success, anything else past the limit a failure; it honours
  Retry-After; its requests are named ``probe GET /api/sessions/`` (not a load persona's read);
  its findings are the report's defects (`loadkit.verdicts.prober_tally`), not service errors;
- DbPoolStressor: DB-heavy list reads at high concurrency, paced under the per-user limit;
- DefectProber (tag ``probes``, opt-in: only with ``--tags probes`` or when named, since it
  spends limits on purpose): the defect probes of `loadkit.probes` beside the other load:
  access control (no, bad and another's token), the login limit on a made-up email, upload
  trust within the account's upload budget, and once per run the pytest suite's auth probes
  (missing header, token after logout, upload credit, X-Forwarded-For on loopback); a wrong
  answer is a failure, and a finding is the report's defect record with the pytest probe's id
  (`loadkit.verdicts.defect_tally`), not a service error; a spent upload limit is said, not judged.
Options, metrics, monitors, the report and the web UI come from `loadkit.locust_plugin.hooks` (see
its docstring).
"""

from __future__ import annotations

import random
import time

import gevent
from locust import between, constant, constant_pacing, events, tag, task

from loadkit.contract import api, mix
from loadkit.locust_plugin import hooks  # noqa: F401 - registers the event hooks
from loadkit.locust_plugin.defect_prober import DefectProber  # noqa: F401 - a persona Locust finds here
from loadkit.locust_plugin.options import usage_error
from loadkit.locust_plugin.state import STATE
from loadkit.locust_plugin.users import SHARED, ApiUser
from loadkit.measure import transactions
from loadkit.measure.upload_body import StreamedBody, parse_sizes
from loadkit.verdicts import rate_limit
from loadkit.verdicts.locust_verdict import PROBER_ENDPOINT
from loadkit.verdicts.rate_limit import ProbeJudge

UPLOAD_BYTES = 64 * 1024
PROCESSING_POLL_S = mix.PROCESSING_POLL_S
PROCESSING_POLLS = 60
SESSIONS = api.endpoint("GET", api.SESSIONS)
SESSION = api.endpoint("GET", api.SESSION)
PROBE_SESSIONS = PROBER_ENDPOINT  # the prober's own: not a load persona's read


def upload_sizes(options: object) -> list[int]:
    """--upload-size as bytes: one size or a mix drawn from per upload (default UPLOAD_BYTES)."""
    text = getattr(options, "upload_size", None)
    sizes = parse_sizes(text) if text else [UPLOAD_BYTES]
    if min(sizes) < 1024:
        raise ValueError(f"a WAV upload needs at least 1024 bytes, got {text!r}")
    return sizes


@events.init.add_listener
def _check_upload_size(environment, **_kw) -> None:
    """A malformed --upload-size is one line and exit 2, before any load."""
    try:
        upload_sizes(environment.parsed_options)
    except ValueError as exc:
        usage_error(f"--upload-size: {exc}")


class RealisticTherapist(ApiUser):
    """A therapist going about their day: reads mostly, some writes, an occasional upload."""

    weight = 10
    wait_time = between(*mix.THINK_TIME_S)  # weights and think time: loadkit.contract.mix

    def on_start(self) -> None:
        super().on_start()
        self.rng = random.Random()
        self.session_ids: list[str] = []
        self.patient_ids: list[str] = []

    def _ids(self, resp: object) -> list[str]:
        try:
            return [item["id"] for item in resp.json()][:50]
        except Exception:  # a failed request was recorded already
            return []

    @tag("realistic")
    @task(mix.weight("list_sessions"))
    def list_sessions(self) -> None:
        self.session_ids = (
            self._ids(self.api("GET", api.SESSIONS, name=SESSIONS)) or self.session_ids
        )

    @tag("realistic")
    @task(mix.weight("view_session"))
    def view_session(self) -> None:
        if self.session_ids:
            sid = self.rng.choice(self.session_ids)
            self.api("GET", api.path(api.SESSION, id=sid), name=SESSION)

    @tag("realistic")
    @task(mix.weight("list_patients"))
    def list_patients(self) -> None:
        resp = self.api("GET", api.PATIENTS, name=api.endpoint("GET", api.PATIENTS))
        self.patient_ids = self._ids(resp) or self.patient_ids

    @tag("realistic")
    @task(mix.weight("patient_sessions"))
    def patient_sessions(self) -> None:
        if self.patient_ids:
            pid = self.rng.choice(self.patient_ids)
            self.api("GET", f"{api.SESSIONS}?patient_id={pid}", name=SESSIONS)

    @tag("realistic")
    @task(mix.weight("view_notes"))
    def view_notes(self) -> None:
        if self.session_ids:
            sid = self.rng.choice(self.session_ids)
            name = api.endpoint("GET", api.SESSION_NOTES)
            self.api("GET", api.path(api.SESSION_NOTES, id=sid), name=name, expect=(200, 404))

    @tag("realistic")
    @task(mix.weight("create_patient"))
    def create_patient(self) -> None:
        body = api.patient_payload(self.rng)
        therapist = self.therapist_id()  # the deployed service requires it (422 without)
        if therapist:
            body["therapist_id"] = therapist
        resp = self.api("POST", api.PATIENTS, name=api.endpoint("POST", api.PATIENTS), json=body)
        self.patient_ids = (self._ids_of_one(resp) + self.patient_ids)[:50]

    def _ids_of_one(self, resp: object) -> list[str]:
        try:
            return [resp.json()["id"]]
        except Exception:  # a failed request was recorded already
            return []

    @tag("realistic", "upload")
    @task(mix.weight("upload_and_follow"))
    def upload_and_follow(self) -> None:
        if not self.patient_ids:
            self.list_patients()
        if not self.patient_ids or not SHARED.uploads.try_take(self.account):
            return
        size = self.rng.choice(upload_sizes(self.environment.parsed_options))
        body = StreamedBody(size, seed=self.rng.randrange(8))  # sent in reused pieces
        started = time.time()
        resp = self.api(
            "POST",
            api.upload_path(self.rng.choice(self.patient_ids)),
            name=api.endpoint("POST", api.SESSION_UPLOAD),
            data=body,
            headers={"Content-Type": body.content_type},
        )
        if STATE.run is not None:  # bytes and MB/s: the report's uploads block
            seconds = (resp.request_meta.get("response_time") or 0) / 1000
            ok = resp.status_code == 200
            STATE.run.record_upload(size, len(body), seconds, ok=ok, at=started)
        sid = self._ids_of_one(resp)
        if sid:
            self._follow(sid[0], started)

    def _follow(self, sid: str, started: float) -> None:
        """Poll the new session until it is processed or failed (bounded); upload -> processed
        goes to the report's transactions block, never into the requests."""
        for _ in range(PROCESSING_POLLS):
            gevent.sleep(PROCESSING_POLL_S)
            resp = self.api("GET", api.path(api.SESSION, id=sid), name=SESSION)
            status = self._status(resp)
            if status in ("processed", "failed", None):
                break
        else:
            status = "unfinished"
        if STATE.run is not None and status is not None:
            session = resp.json() if status != "unfinished" else {}
            seconds, timing = transactions.to_processed(session, started, time.time())
            STATE.run.record_transaction(started, status, seconds, timing,
                                         session.get("error_message"))  # fmt: skip

    @staticmethod
    def _status(resp: object) -> str | None:
        try:
            return resp.json()["status"]
        except Exception:  # a failed request was recorded already
            return None

    @tag("realistic", "health")
    @task(mix.weight("health"))
    def health(self) -> None:
        self.client.get(api.HEALTH, name=api.endpoint("GET", api.HEALTH))


class RateLimitProber(ApiUser):
    """Past the limit on purpose, on an account nobody else uses; honours Retry-After."""

    fixed_count = 1
    account_kind = "reserved"
    wait_time = constant(0.05)

    def on_start(self) -> None:
        super().on_start()
        limit, window_s = (
            rate_limit.limit_of(STATE.run.profile)  # targets.toml, as in the pytest suite
            if STATE.run is not None
            else (rate_limit.DEFAULT_LIMIT, rate_limit.DEFAULT_WINDOW_S)
        )
        self.judge = ProbeJudge(limit=limit, window_s=window_s)

    @tag("rate_limit")
    @task
    def probe(self) -> None:
        headers = {"Authorization": f"Bearer {self.access_token()}"}
        at = time.time()
        with self.client.get(
            api.SESSIONS, name=PROBE_SESSIONS, headers=headers, catch_response=True
        ) as resp:
            status = resp.status_code or None
            verdict = self.judge.judge(
                at, status, resp.headers.get("Retry-After") if status else None
            )
            resp.failure(verdict.failure) if verdict.failure else resp.success()
        if STATE.run is not None:  # its findings: the report's defects (prober_tally)
            STATE.run.prober.record(status, failed=verdict.failure is not None)
        if verdict.wait_s:
            gevent.sleep(verdict.wait_s)


class DbPoolStressor(ApiUser):
    """Large list reads, many users at once: does the connection pool hold?"""

    weight = 3
    wait_time = constant_pacing(1.25)  # 48/minute per user: two users per account stay under 100

    @tag("db_pool")
    @task(2)
    def all_sessions(self) -> None:
        self.api("GET", f"{api.SESSIONS}?limit=1000", name=SESSIONS)

    @tag("db_pool")
    @task(1)
    def all_patients(self) -> None:
        self.api("GET", f"{api.PATIENTS}?limit=1000", name=api.endpoint("GET", api.PATIENTS))
