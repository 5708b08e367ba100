"""DefectProber, the opt-in persona (tag ``probes``): the defect probes of `loadkit.probes` beside
the load: access control (no, bad and another's token), the login limit on a made-up email,
upload trust within the account's upload budget, and once per run the pytest suite's auth probes
(missing header, token after logout, upload credit, X-Forwarded-For on loopback). A wrong answer is
a failed request named ``probe <route>``; a finding is the report's defect record with the pytest
probe's id (`loadkit.verdicts.defect_tally`), not a service error; a spent upload limit is said, not
judged. `load_test.py` imports it, so Locust finds it there beside the other personas.
"""

from __future__ import annotations

import time

import gevent
from locust import tag, task

from loadkit.contract import api
from loadkit.locust_plugin.state import STATE
from loadkit.locust_plugin.users import SHARED, ApiUser, worker_share
from loadkit.probes import (
    access_probes,
    auth_findings,
    limit_probes,
    probe_requests,
    prober_findings,
    upload_probes,
)
from loadkit.verdicts.defect_tally import DefectTally
from loadkit.verdicts.rate_limit import LimitProbe
from loadkit.watch.loopback import is_loopback

SESSIONS = api.endpoint("GET", api.SESSIONS)
UPLOAD = api.endpoint("POST", api.SESSION_UPLOAD)
MAX_LOGIN_WAIT_S = 120.0  # the defect prober's own login waits at most this for a budget slot


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
