"""Upload-trust probes: bodies the contract says the server must refuse
(wrong type, fake audio, empty, oversized) and the verdict on each answer.

An answer the upload limiter gave (a 429, or the deployed limiter's 500: `limit_probes.limiter_500`)
is no validation result: the case is left unjudged and the probe says the upload limit is spent.
Two deployed defects are named from what the probe sees anyway: a 413 that came only after the
whole oversized body was sent (`oversize-checked-late`), and accepted uploads whose processing
flipped to ``failed`` (`processing-failed`, the server's error_message quoted)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from loadkit.contract import api
from loadkit.measure.http import encode_multipart
from loadkit.probes.access_probes import response_ids
from loadkit.probes.limit_probes import limiter_500
from loadkit.probes.probe_requests import ProbeRequest

# Upload trust ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UploadCase:
    """One upload: a label, the file part, and the statuses the contract gives it."""

    label: str
    filename: str
    content_type: str
    content: bytes
    expect: frozenset[int]

    @property
    def valid(self) -> bool:
        return 200 in self.expect


def upload_cases(size: int, valid: int = 3) -> list[UploadCase]:
    """``valid`` real WAV uploads and one of each refusal the contract names (oversize apart)."""
    not_audio = (b"%PDF-1.4 not audio at all\n" * (size // 26 + 1))[:size]
    wav = api.wav_bytes(size, seed=11)
    cases = [
        UploadCase(
            f"valid upload {i + 1}",
            f"probe-{i}.wav",
            api.UPLOAD_CONTENT_TYPE,
            api.wav_bytes(size, seed=20 + i),
            frozenset({200}),
        )
        for i in range(valid)
    ]
    cases += [
        UploadCase(
            "non-audio bytes named probe.wav (audio/wav)",
            "probe.wav",
            api.UPLOAD_CONTENT_TYPE,
            not_audio,
            frozenset({400}),
        ),
        UploadCase(
            "WAV bytes sent as text/plain", "probe.wav", "text/plain", wav, frozenset({400})
        ),
        UploadCase(
            "an unlisted audio type (audio/ogg)", "probe.wav", "audio/ogg", wav, frozenset({415})
        ),
        UploadCase("an empty file", "probe.wav", api.UPLOAD_CONTENT_TYPE, b"", frozenset({400})),
    ]
    return cases


def upload_request(case: UploadCase, patient_id: str, headers: dict[str, str]) -> ProbeRequest:
    """The multipart upload of one case (any status is recorded; the verdict is `judge_upload`)."""
    body, ctype = encode_multipart(
        {}, {api.UPLOAD_FIELD: (case.filename, case.content, case.content_type)}
    )
    return ProbeRequest(
        case.label,
        "POST",
        api.upload_path(patient_id),
        api.endpoint("POST", api.SESSION_UPLOAD),
        case.expect,
        {**headers, "Content-Type": ctype},
        body,
    )


def judge_upload(label: str, expect: frozenset[int], status: int | None, body: bytes) -> str | None:
    """None when the upload got its contract status; else a message (session id, never content)."""
    if status in expect:
        return None
    got = "no response" if status is None else f"answered {status}"
    wanted = "/".join(str(s) for s in sorted(expect))
    if status is not None and 200 <= status < 300 and 200 not in expect:
        ids = response_ids(body)
        made = f", session {ids[0]} created" if ids else ""
        return f"upload-trust defect: {label} was accepted ({status}{made}); expected {wanted}"
    return f"upload-trust defect: {label} {got}, expected {wanted}"


def oversize_head(path: str, headers: dict[str, str], declared: int) -> tuple[bytes, bytes, str]:
    """(multipart preamble, closing boundary, Content-Type) of an upload declared ``declared``
    bytes long; the caller streams filler bytes between them."""
    boundary = uuid.uuid4().hex
    preamble = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{api.UPLOAD_FIELD}"; '
        f'filename="oversized.wav"\r\nContent-Type: {api.UPLOAD_CONTENT_TYPE}\r\n\r\n'
    ).encode() + api.wav_bytes(1024, seed=3)[:44]
    closing = f"\r\n--{boundary}--\r\n".encode()
    return preamble, closing, f"multipart/form-data; boundary={boundary}"


def oversize_filler(declared: int) -> int:
    """How many filler bytes follow the head of an oversized upload declared ``declared`` long."""
    return declared - len(oversize_head("", {}, declared)[0])


def session_count_problem(before: int | None, after: int | None, accepted: int) -> str | None:
    """A problem when the session count did not grow by exactly the accepted uploads."""
    if before is None or after is None:
        return "the session count could not be read before and after the uploads"
    if after - before == accepted:
        return None
    return (
        f"upload-trust defect: sessions went from {before} to {after} for {accepted} accepted "
        f"uploads: a refused upload left {after - before - accepted} session(s) behind"
    )


# The upload limit, the oversized body and processing --------------------------------------------


def budget_spent(status: int | None, headers: dict[str, str], body: bytes = b"") -> bool:
    """Whether an upload's answer is the upload limiter's refusal (429, or the limiter's 500)."""
    return status == 429 or limiter_500(status, headers, body)


def spent_reason(need: int, refused: int, not_judged: list[str]) -> str:
    """Why the probe could not judge ``not_judged`` (case labels): the upload limiter refused
    ``refused`` of its uploads (with one, the first upload: the limit was spent before it)."""
    how = "429, or 500 with no Retry-After and the connection closed"
    if refused == 1 and len(not_judged) == need:
        return (
            f"the upload limit is spent: {need} needed, and the first upload already got the "
            f"limiter's refusal ({how}), so none was judged; rerun after the limit's window"
        )
    shown = "; ".join(not_judged[:4]) + (
        f"; ... {len(not_judged) - 4} more" if len(not_judged) > 4 else ""
    )
    return (
        f"the upload limit is spent: {need} needed, {refused} refused by the limiter ({how}), so "
        f"{len(not_judged)} were not judged: {shown}; rerun after the limit's window"
    )


def oversize_defect(status: int | None, sent: int, body_bytes: int) -> tuple[str, str] | None:
    """(id, message) of the oversized upload's answer: not a 413, or a 413 only after the whole
    body (``body_bytes`` past the head) was sent although its declared length was already over."""
    if status != 413:
        got = "no answer" if status is None else f"{status}"
        return "oversize-not-refused", f"an oversized body got {got}, expected 413"
    if sent < body_bytes:
        return None
    return "oversize-checked-late", (
        f"the 413 came only after the whole oversized body was sent ({sent} bytes): the declared "
        "Content-Length was already over the limit, and the contract refuses while streaming"
    )


def processing_defect(final: dict[str, str], messages: dict[str, str]) -> tuple[str, dict] | None:
    """(message, evidence) when accepted uploads' sessions flipped to ``failed`` (``final``:
    session id -> end status; ``messages``: session id -> the server's error_message)."""
    failed = [sid for sid, status in final.items() if status == "failed"]
    if not failed:
        return None
    said: dict[str, int] = {}
    for sid in failed:
        text = str(messages.get(sid) or "no error_message")[:200]
        said[text] = said.get(text, 0) + 1
    quoted = "; ".join(f"{m} (x{n})" for m, n in said.items())
    message = (
        f"{len(failed)} of {len(final)} accepted uploads flipped to failed in processing; "
        f"the server said: {quoted}"
    )
    return message, {"failed": len(failed), "finished": len(final), "error_messages": said}
