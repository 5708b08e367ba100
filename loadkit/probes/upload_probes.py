"""Upload-trust probes: bodies the contract says the server must refuse
(wrong type, fake audio, empty, oversized) and the verdict on each answer."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from loadkit.contract import api
from loadkit.measure.http import encode_multipart
from loadkit.probes.access_probes import response_ids
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
