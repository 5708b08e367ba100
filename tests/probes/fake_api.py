"""A small TherapyBridge fake (aiohttp) with at most one defect, for proving the probes catch it.

Run as ``python tests/probes/fake_api.py --defect NAME``; it binds 127.0.0.1 on a free port and
prints ``PORT <n>`` first. Any account whose email starts with ``acct-`` logs in with any password
(and gets one patient with one processed session); other emails are unknown (401). Limits as the
contract says, moving windows; uploads checked as the contract says (size limit 1 MB).

Defects (each breaks one rule, the rest stays sound):
- ``no_auth``: GET /api/sessions/{id} answers without a token (a data route without auth);
- ``cross_tenant``: GET /api/patients/{id} returns any therapist's patient;
- ``limiter500``: over any limit it answers 500 instead of 429;
- ``name_trusting``: the upload check trusts the file name and type, never the bytes;
- ``blocking``: login and upload handlers call time.sleep(0.3) on the event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import time
import uuid
from collections import defaultdict, deque
from datetime import UTC, datetime

import jwt
from aiohttp import web

DEFECTS = ("none", "no_auth", "cross_tenant", "limiter500", "name_trusting", "blocking")
SECRET = uuid.uuid4().hex
LIMITS = {
    "default": (100, 60),
    "login": (5, 60),
    "signup": (3, 3600),
    "refresh": (10, 60),
    "upload": (10, 3600),
    "extract": (20, 3600),
}
EXTENSIONS = (".mp3", ".wav", ".m4a", ".mp4", ".mpeg", ".mpga", ".webm")
TYPES = ("audio/mpeg", "audio/wav", "audio/x-wav", "audio/mp4", "video/mp4", "audio/webm")
MAX_UPLOAD = 1024 * 1024
BLOCK_S = 0.3


def now() -> str:
    return datetime.now(UTC).isoformat()


def error(status: int, message: str, headers: dict | None = None) -> web.Response:
    body = {
        "error": {
            "code": str(status),
            "message": message,
            "retriable": status == 429,
            "request_id": uuid.uuid4().hex,
        }
    }
    return web.json_response(body, status=status, headers=headers)


class State:
    """Users, data, tokens and limit windows of one fake."""

    def __init__(self, defect: str) -> None:
        self.defect = defect
        self.users: dict[str, str] = {}  # email -> user id
        self.patients: dict[str, dict] = {}
        self.sessions: dict[str, dict] = {}
        self.refresh: dict[str, str] = {}  # refresh token -> user id
        self.hits: dict[str, deque] = defaultdict(deque)

    def limited(self, names: list[str], key: str) -> web.Response | None:
        """None when allowed (hit recorded on each limit), else the refusal."""
        t, waits = time.monotonic(), []
        for name in names:
            count, window = LIMITS[name]
            hits = self.hits[f"{name}:{key}"]
            while hits and hits[0] <= t - window:
                hits.popleft()
            if len(hits) >= count:
                waits.append(int(hits[0] + window - t) + 1)
        if waits:
            if self.defect == "limiter500":
                return error(500, "Internal Server Error")
            return error(429, "Rate limit exceeded", {"Retry-After": str(max(waits))})
        for name in names:
            self.hits[f"{name}:{key}"].append(t)
        return None

    def user(self, email: str) -> str:
        if email not in self.users:
            uid = self.users[email] = str(uuid.uuid4())
            pid = str(uuid.uuid4())
            self.patients[pid] = {
                "id": pid,
                "name": "Pat",
                "email": None,
                "phone": None,
                "therapist_id": uid,
                "created_at": now(),
                "updated_at": now(),
            }
            self.add_session(pid, uid, "seed.wav")
        return self.users[email]

    def add_session(self, pid: str, uid: str, filename: str) -> dict:
        sid = str(uuid.uuid4())
        self.sessions[sid] = {
            "id": sid,
            "patient_id": pid,
            "therapist_id": uid,
            "audio_filename": filename,
            "status": "processed",
            "transcript_text": "hello",
            "extracted_notes": None,
            "created_at": now(),
            "updated_at": now(),
        }
        return self.sessions[sid]

    def tokens(self, uid: str) -> dict:
        access = jwt.encode({"sub": uid, "exp": int(time.time()) + 1800}, SECRET, "HS256")
        refresh = uuid.uuid4().hex
        self.refresh[refresh] = uid
        return {
            "access_token": access,
            "refresh_token": refresh,
            "token_type": "bearer",
            "expires_in": 1800,
        }


def who(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    try:
        return jwt.decode(token, SECRET, algorithms=["HS256"])["sub"]
    except jwt.PyJWTError:
        return None


def routes(state: State) -> web.RouteTableDef:  # noqa: C901 - one fake, one table
    r = web.RouteTableDef()
    addr = "127.0.0.1"

    def authed(*limits: str):
        def wrap(handler):
            async def inner(request: web.Request) -> web.StreamResponse:
                uid = who(request)
                if uid is None:
                    open_route = state.defect == "no_auth" and request.match_info.get("sid")
                    if not open_route or request.method != "GET":
                        return error(401, "Not authenticated", {"WWW-Authenticate": "Bearer"})
                else:
                    refused = state.limited(["default", *limits], f"user:{uid}")
                    if refused is not None:
                        return refused
                return await handler(request, uid)

            return inner

        return wrap

    @r.get("/")
    async def root(_: web.Request) -> web.Response:
        return web.json_response({"service": "fake", "version": "0", "status": "running"})

    @r.get("/live")
    async def live(_: web.Request) -> web.Response:
        return web.json_response({"status": "alive", "timestamp": int(time.time())})

    @r.get("/health")
    async def health(_: web.Request) -> web.Response:
        pool = {"size": 5, "checked_in": 5, "checked_out": 0, "overflow": -5}
        return web.json_response(
            {
                "status": "healthy",
                "timestamp": int(time.time()),
                "checks": {"database": {"status": "healthy", "pool": pool}},
            }
        )

    @r.post("/api/v1/login")
    async def login(request: web.Request) -> web.Response:
        body = await request.json()
        email = str(body.get("email", "")).lower()
        refused = state.limited(["login"], f"{addr}:{email}")
        if refused is not None:
            return refused
        if state.defect == "blocking":
            time.sleep(BLOCK_S)  # the defect: a synchronous call on the event loop
        if not email.startswith("acct-") and email not in state.users:
            return error(401, "Incorrect email or password")
        return web.json_response(state.tokens(state.user(email)))

    @r.post("/api/v1/signup")
    async def signup(request: web.Request) -> web.Response:
        body = await request.json()
        refused = state.limited(["signup"], addr)
        if refused is not None:
            return refused
        email = str(body.get("email", "")).lower()
        if email in state.users:
            return error(409, "exists")
        return web.json_response(state.tokens(state.user(email)), status=201)

    @r.post("/api/v1/refresh")
    async def refresh(request: web.Request) -> web.Response:
        body = await request.json()
        refused = state.limited(["refresh"], addr)
        if refused is not None:
            return refused
        uid = state.refresh.pop(str(body.get("refresh_token")), None)
        if uid is None:
            return error(401, "Invalid refresh token")
        return web.json_response(state.tokens(uid))

    @r.get("/api/patients/")
    @authed()
    async def patients(request: web.Request, uid: str) -> web.Response:
        mine = [p for p in state.patients.values() if p["therapist_id"] == uid]
        return web.json_response(mine)

    @r.get("/api/patients/{pid}")
    @authed()
    async def patient(request: web.Request, uid: str) -> web.Response:
        p = state.patients.get(request.match_info["pid"])
        if p is None or (p["therapist_id"] != uid and state.defect != "cross_tenant"):
            return error(404, "Patient not found")
        return web.json_response(p)

    @r.get("/api/sessions/")
    @authed()
    async def sessions(request: web.Request, uid: str) -> web.Response:
        pid = request.query.get("patient_id")
        if pid and state.patients.get(pid, {}).get("therapist_id") != uid:
            return error(404, "Patient not found")
        rows = [
            s
            for s in state.sessions.values()
            if s["therapist_id"] == uid and (not pid or s["patient_id"] == pid)
        ]
        return web.json_response(rows)

    @r.get("/api/sessions/{sid}")
    @authed()
    async def session(request: web.Request, uid: str | None) -> web.Response:
        s = state.sessions.get(request.match_info["sid"])
        if s is None or (uid is not None and s["therapist_id"] != uid):
            return error(404, "Session not found")
        return web.json_response(s)

    @r.post("/api/sessions/{sid}/extract-notes")
    @authed("extract")
    async def extract(request: web.Request, uid: str) -> web.Response:
        s = state.sessions.get(request.match_info["sid"])
        if s is None or s["therapist_id"] != uid:
            return error(404, "Session not found")
        s["extracted_notes"], s["updated_at"] = {"summary": "ok"}, now()
        return web.json_response({"extracted_notes": s["extracted_notes"], "processing_time": 0})

    @r.post("/api/sessions/upload")
    @authed("upload")
    async def upload(request: web.Request, uid: str) -> web.Response:
        if state.defect == "blocking":
            time.sleep(BLOCK_S)  # the defect: a synchronous call on the event loop
        pid = request.query.get("patient_id", "")
        if state.patients.get(pid, {}).get("therapist_id") != uid:
            return error(404, "Patient not found")
        if (request.content_length or 0) > MAX_UPLOAD:
            return error(413, "Upload too large", {"Connection": "close"})
        return await check_upload(state, request, pid, uid)

    return r


def magic_ok(head: bytes) -> bool:
    return head.startswith((b"RIFF", b"ID3", b"OggS")) or head[4:8] == b"ftyp"


async def check_upload(state: State, request: web.Request, pid: str, uid: str) -> web.Response:
    reader = await request.multipart()
    part = await reader.next()
    if part is None or part.name != "file":
        return error(422, "file missing")
    data = await part.read()
    ctype = part.headers.get("Content-Type", "")
    if not (part.filename or "").lower().endswith(EXTENSIONS):
        return error(400, "bad extension")
    if ctype not in TYPES:
        return error(400 if not ctype.startswith(("audio/", "video/")) else 415, "bad type")
    if len(data) < 1024:
        return error(400, "too small")
    if state.defect != "name_trusting" and not magic_ok(bytes(data[:12])):
        return error(400, "not audio")
    return web.json_response(state.add_session(pid, uid, part.filename))


async def main(defect: str) -> None:
    app = web.Application(client_max_size=4 * MAX_UPLOAD)
    app.add_routes(routes(State(defect)))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    site = web.SockSite(runner, sock)
    await site.start()
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--defect", choices=DEFECTS, default="none")
    asyncio.run(main(parser.parse_args().defect))
