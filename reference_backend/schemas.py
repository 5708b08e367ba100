"""Request and response bodies: XCreate for input, XPublic for output."""

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    create_model,
)

EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
PASSWORD_SPECIALS = "@$!%*?&"
BCRYPT_MAX_BYTES = 72
ZERO = timedelta(0)


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is None:  # SQLite keeps no offset; every stored time is UTC
        return value.replace(tzinfo=UTC)
    return value if value.utcoffset() == ZERO else value.astimezone(UTC)


def _valid_email(value: str) -> str:
    value = value.strip().lower()
    if not EMAIL_PATTERN.match(value):
        raise ValueError("value is not a valid email address")
    return value


def _strong_password(value: str) -> str:
    checks = (
        (len(value) >= 12, "at least 12 characters"),
        (len(value.encode()) <= BCRYPT_MAX_BYTES, f"at most {BCRYPT_MAX_BYTES} bytes"),
        (any(c.islower() for c in value), "a lowercase letter"),
        (any(c.isupper() for c in value), "an uppercase letter"),
        (any(c.isdigit() for c in value), "a digit"),
        (any(c in PASSWORD_SPECIALS for c in value), f"one of {PASSWORD_SPECIALS}"),
    )
    missing = [text for ok, text in checks if not ok]
    if missing:
        raise ValueError("password needs " + ", ".join(missing))
    return value


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]  # pydantic writes UTC as "...Z"
Email = Annotated[str, Field(max_length=320), AfterValidator(_valid_email)]
Password = Annotated[str, Field(max_length=128), AfterValidator(_strong_password)]
Name = Annotated[str, Field(min_length=1, max_length=100)]


class UserCreate(BaseModel):
    """Signup body."""

    email: Email
    password: Password
    first_name: Name
    last_name: Name
    role: Literal["therapist", "patient", "admin"] = "therapist"


class LoginRequest(BaseModel):
    """Login body."""

    email: Annotated[str, Field(min_length=1, max_length=320)]
    password: Annotated[str, Field(min_length=1, max_length=1024)]


class RefreshRequest(BaseModel):
    """Refresh and logout body."""

    refresh_token: Annotated[str, Field(min_length=1, max_length=512)]


class Tokens(BaseModel):
    """An access token and the refresh token that renews it."""

    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int


class Message(BaseModel):
    """A plain confirmation."""

    message: str


class UserPublic(BaseModel):
    """The signed-in user."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    first_name: str
    last_name: str
    full_name: str
    role: str
    is_active: bool
    created_at: UtcDatetime


class PatientCreate(BaseModel):
    """New patient body."""

    name: Annotated[str, Field(min_length=1, max_length=255)]
    email: Email | None = None
    phone: Annotated[str, Field(max_length=50)] | None = None
    therapist_id: uuid.UUID | None = None


class PatientPublic(BaseModel):
    """A patient as the API returns it."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    email: str | None
    phone: str | None
    therapist_id: uuid.UUID
    created_at: UtcDatetime
    updated_at: UtcDatetime


class SessionPublic(BaseModel):
    """A therapy session as the API returns it."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    patient_id: uuid.UUID
    therapist_id: uuid.UUID
    session_date: UtcDatetime
    duration_seconds: int | None
    audio_filename: str | None
    audio_url: str | None
    transcript_text: str | None
    transcript_segments: list[Any] | None
    extracted_notes: dict[str, Any] | None
    therapist_summary: str | None
    patient_summary: str | None
    risk_flags: list[Any] | None
    status: str
    error_message: str | None
    created_at: UtcDatetime
    updated_at: UtcDatetime
    processed_at: UtcDatetime | None


class ExtractNotesPublic(BaseModel):
    """Result of extract-notes."""

    extracted_notes: dict[str, Any]
    processing_time: float


SESSION_JSON_FIELDS = ("transcript_segments", "extracted_notes", "risk_flags")
_SessionScalars = create_model(
    "SessionScalars",
    __base__=SessionPublic,
    **{name: (Any, None) for name in SESSION_JSON_FIELDS},
)
_SCALARS = TypeAdapter(_SessionScalars)


def _raw_json(value: Any) -> bytes:
    if value is None:
        return b"null"
    if isinstance(value, str):
        return value.encode()
    return json.dumps(value).encode()  # a driver that decoded it anyway


def session_list_json(rows: Sequence[Mapping[str, Any]]) -> bytes:
    """A JSON array of sessions from rows whose JSON columns hold the stored JSON text.

    The stored text (written by SQLAlchemy's JSON type) is spliced in as it is, instead of being
    parsed into Python objects and serialised again.
    """
    items = []
    for row in rows:
        scalars = _SCALARS.dump_json(
            _SessionScalars.model_validate(row), exclude=set(SESSION_JSON_FIELDS)
        )
        raw = b"".join(
            b',"%s":%s' % (name.encode(), _raw_json(row[name])) for name in SESSION_JSON_FIELDS
        )
        items.append(scalars[:-1] + raw + b"}")
    return b"[" + b",".join(items) + b"]"
