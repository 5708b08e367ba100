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
from loadkit.locust_plugin.options import usage_error
from loadkit.locust_plugin.state import STATE
from loadkit.locust_plugin.users import SHARED, ApiUser, worker_share
from loadkit.measure import transactions
from loadkit.measure.upload_body import StreamedBody, parse_sizes
from loadkit.probes import (
    access_probes,
    auth_findings,
    limit_probes,
    probe_requests,
    prober_findings,
    upload_probes,
)
from loadkit.verdicts import rate_limit
from loadkit.verdicts.defect_tally import DefectTally
from loadkit.verdicts.locust_verdict import PROBER_ENDPOINT
from loadkit.verdicts.rate_limit import LimitProbe, ProbeJudge
from loadkit.watch.loopback import is_loopback

UPLOAD_BYTES = 64 * 1024
PROCESSING_POLL_S = mix.PROCESSING_POLL_S
PROCESSING_POLLS = 60
SESSIONS = api.endpoint("GET", api.SESSIONS)
SESSION = api.endpoint("GET", api.SESSION)
PROBE_SESSIONS = PROBER_ENDPOINT  # the prober's own: not a load persona's read
UPLOAD = api.endpoint("POST", api.SESSION_UPLOAD)
MAX_LOGIN_WAIT_S = 120.0  # the defect prober's own login waits at most this for a budget slot


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


class DefectProber(ApiUser):
    """The contract's weak spots, probed now and then beside the load (logic: loadkit.probes);
    its findings are the report's defects (`loadkit.verdicts.defect_tally`)."""

    opt_in_tag = "probes"  # spends limits on purpose: runs only with --tags probes or when named
    fixed_count = 1
    # The auth probes (a login of their own) once, after the other logins of the first seconds.
    FIRST = ("upload_trust", "access_control", "auth_probes", "login_limit")
    LATER = ("upload_trust", "access_control", "login_limit")

    def wait_time(self) -> float:
        """The first round back to back (a short run sees every probe), then one every 5 s."""
        return 0.1 if self.turn < len(self.FIRST) else 5.0

    def on_start(self) -> None:
        super().on_start()
        self.turn, self.forwarded_done = 0, False
        self.intruder = SHARED.pool.take(
            "general", *worker_share(self.environment.runner, self.environment.parsed_options)
        )

    @tag("probes")
    @task
    def probe(self) -> None:
        """The next probe of the round; the auth probes (they spend a login) only in the first."""
        first = self.turn < len(self.FIRST)
        name = self.FIRST[self.turn] if first else self.LATER[self.turn % len(self.LATER)]
        self.turn += 1
        getattr(self, name)()

    # Sending and naming ---------------------------------------------------------------------------

    @staticmethod
    def _tally() -> DefectTally:
        return STATE.run.defect_prober if STATE.run is not None else DefectTally()

    @staticmethod
    def _spent(p: probe_requests.ProbeRequest, resp: object) -> bool:
        """Whether an upload's answer is the upload limiter's refusal (no validation result)."""
        headers = {str(k).lower(): str(v) for k, v in (resp.headers or {}).items()}
        status = resp.status_code or None
        return p.endpoint == UPLOAD and upload_probes.budget_spent(status, headers, resp.content)

    def _send(self, p: probe_requests.ProbeRequest, judge) -> object:
        """One probe request named ``probe <route>``; ``judge(status, body)`` names a failure. A
        spent upload limit is said, not judged (the request is no failure)."""
        with self.client.request(
            p.method,
            p.path,
            name=f"probe {p.endpoint}",
            headers=p.headers,
            data=p.body,
            catch_response=True,
        ) as resp:
            if self._spent(p, resp):
                self._tally().say(upload_probes.spent_reason(1, 1, [p.label]))
                resp.success()
                return resp
            message = judge(resp.status_code or None, resp.content or b"")
            resp.failure(message) if message else resp.success()
        return resp

    def _name(self, found: auth_findings.Finding | None, failed: int = 1) -> None:
        if found is not None:
            self._tally().name(found.id, found.route, found.message, failed=failed,
                               **found.evidence)  # fmt: skip

    def _fail(self, name: str, message: str) -> None:
        self.environment.events.request.fire(
            request_type="PROBE",
            name=name,
            response_time=0,
            response_length=0,
            exception=Exception(message),
            context=self.context(),
        )

    def _victim(self) -> probe_requests.Victim | None:
        headers = api.auth_headers(self.access_token())
        listed = self.api("GET", f"{api.SESSIONS}?limit=1", name=SESSIONS)
        try:
            session = listed.json()[0]
        except Exception:  # no session yet (or a failure, recorded already)
            return None
        return probe_requests.Victim(str(session["patient_id"]), str(session["id"]), headers)

    def _intruder_headers(self) -> dict[str, str]:
        """Another therapist's valid token ({} when there is no second account)."""
        if self.intruder == self.account:
            return {}
        return api.auth_headers(self.token_of(self.intruder).access_token)

    # The probes -----------------------------------------------------------------------------------

    def access_control(self) -> None:
        victim, intruder = self._victim(), self._intruder_headers()
        if victim is None:
            return
        for p in access_probes.access_requests(victim, intruder):
            if intruder or "another therapist" not in p.label:
                resp = self._send(p, lambda s, b, p=p: access_probes.judge_access(p, s, b))
                if not self._spent(p, resp):
                    records, _ = prober_findings.access(p, resp.status_code or None, resp.content)
                    self._tally().add_records(records, failed=len(records))

    def login_limit(self) -> None:
        """Wrong logins on a made-up email past the login limit; then, once per run on a
        loopback target, the same login claiming another address (X-Forwarded-For)."""
        route, email, seen = limit_probes.LIMITED_ROUTES["login"], probe_requests.probe_email(), []
        for _ in range(route.limit + route.extra):
            at = time.time()
            resp = self._send(probe_requests.wrong_login(email), lambda s, b: None)
            status = resp.status_code or None
            seen.append(LimitProbe(at, status, resp.headers.get("Retry-After") if status else None))
        SHARED.tokens.budget.note_sent(len(seen))
        records, problems = prober_findings.login_limit(route, seen)
        for problem in problems:
            self._fail(f"probe {route.endpoint}", problem)
        self._tally().add_records(records, failed=len(problems) if records else 0)
        sent = prober_findings.logins_to_limit([p.status for p in seen])
        if sent and not self.forwarded_done and is_loopback(self.environment.host or ""):
            self.forwarded_done = True
            judge = lambda s, b: access_probes.judge_forwarded(s)  # noqa: E731
            resp = self._send(access_probes.forwarded_login(email), judge)
            SHARED.tokens.budget.note_sent(1)
            self._name(auth_findings.forwarded(resp.status_code or None, sent))

    def upload_trust(self) -> None:
        victim, cases = self._victim(), upload_probes.upload_cases(8192, valid=1)
        for i, case in enumerate(cases):
            if victim is None or not SHARED.uploads.try_take(self.account):
                return
            p = upload_probes.upload_request(case, victim.patient_id, victim.headers)
            resp = self._send(
                p, lambda s, b, c=case: upload_probes.judge_upload(c.label, c.expect, s, b)
            )
            if self._spent(p, resp):  # the rest would get the same: not sent, said
                left = [c.label for c in cases[i:]]
                self._tally().say(upload_probes.spent_reason(len(cases), 1, left))
                return
            records, _ = prober_findings.upload(case, resp.status_code or None, resp.content)
            self._tally().add_records(records, failed=len(records))

    def auth_probes(self) -> None:
        """The pytest suite's four authentication probes but X-Forwarded-For (`login_limit`
        sends that one): a missing header, the token after logout, whom an upload is credited to."""
        judge = lambda s, b: access_probes.judge_missing_auth(s)  # noqa: E731
        resp = self._send(
            access_probes.me_request({}, f"GET {api.ME} with no Authorization header"), judge
        )
        self._name(auth_findings.missing_auth(resp.status_code or None)[0])
        self._after_logout()
        self._credit()

    def _after_logout(self) -> None:
        """A fresh login in a slot of the login budget, its logout, then GET /api/v1/me with the
        logged-out access token (the cached tokens live on)."""
        gevent.sleep(min(SHARED.tokens.budget.reserve(), MAX_LOGIN_WAIT_S))
        sent_at = time.time()
        login = self._send(access_probes.login_request(self.account), lambda s, b: None)
        try:
            token = api.parse_token_response(login.json(), sent_at)
        except Exception:  # no token in the answer: nothing to log out
            if access_probes.limit_refused(login.status_code or None):
                SHARED.tokens.budget.refused()  # the other logins pace from here
            self._tally().say(f"the probe's own login got {login.status_code}: logout not probed")
            return
        out = self._send(access_probes.logout_request(token), lambda s, b: None)
        if out.status_code != 200:
            self._tally().say(
                f"logout answered {out.status_code}: the token after logout not probed"
            )
            return
        p = access_probes.me_request(api.auth_headers(token.access_token),
                                     f"GET {api.ME} with a logged-out access token")  # fmt: skip
        resp = self._send(p, lambda s, b: access_probes.judge_after_logout(s))
        self._name(auth_findings.after_logout(resp.status_code or None)[0])

    def _credit(self) -> None:
        """One upload into the account's own patient, and the newest sessions listed, against
        their patients' therapists: ``upload-credited-to-another``."""
        owner, headers = self.therapist_id(), api.auth_headers(self.access_token())
        patient = self._own_patient(owner) if owner else None
        if owner is None or patient is None:
            self._tally().say("no patient of the probe's own account: upload credit not probed")
            return
        bodies = []
        if SHARED.uploads.try_take(self.account):
            p = access_probes.own_upload(patient, headers)
            resp = self._send(p, lambda s, b: None if s == 200 else f"{p.label} answered {s}")
            bodies += [resp.content] if resp.status_code == 200 else []
        rows = self._json(f"{api.SESSIONS}?limit=50", SESSIONS) or []
        owners = {}
        for pid in access_probes.patients_of(rows):
            got = self._json(api.path(api.PATIENT, id=pid), api.endpoint("GET", api.PATIENT))
            if isinstance(got, dict) and got.get("therapist_id"):
                owners[pid] = str(got["therapist_id"])
        judged = auth_findings.judged_sessions(rows, owners)
        self._name(auth_findings.credit(bodies, judged, owners, owner), failed=0)

    def _json(self, path: str, name: str) -> object:
        try:
            return self.api("GET", path, name=name).json()
        except Exception:  # a failed request was recorded already
            return None

    def _own_patient(self, owner: str | None) -> str | None:
        """One patient of the account's own (lists are everyone's on the deployed service)."""
        rows = self._json(
            f"{api.PATIENTS}?therapist_id={owner}&limit=100", api.endpoint("GET", api.PATIENTS)
        )
        mine = [
            r for r in rows or [] if isinstance(r, dict) and str(r.get("therapist_id")) == owner
        ]
        return str(mine[0]["id"]) if mine else None
