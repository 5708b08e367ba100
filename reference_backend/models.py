"""Database tables: users, refresh tokens, patients and therapy sessions."""

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SESSION_STATUSES = (
    "pending",
    "uploading",
    "transcribing",
    "transcribed",
    "extracting_notes",
    "processed",
    "failed",
)


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base shared by every table."""

    type_annotation_map = {datetime: DateTime(timezone=True), dict[str, Any]: JSON}


class User(Base):
    """An account: therapist, patient or admin."""

    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(320), unique=True, index=True)
    hashed_password: Mapped[str] = mapped_column(String(100))
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(20), default="therapist")
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def full_name(self) -> str:
        """First and last name joined."""
        return f"{self.first_name} {self.last_name}".strip()


class RefreshToken(Base):
    """A refresh token, stored as a SHA-256 digest; used or revoked tokens are refused."""

    __tablename__ = "refresh_tokens"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Patient(Base):
    """A therapist's patient."""

    __tablename__ = "patients"
    __table_args__ = (Index("ix_patients_therapist_created", "therapist_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320), default=None)
    phone: Mapped[str | None] = mapped_column(String(50), default=None)
    therapist_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class TherapySession(Base):
    """One recorded session: its audio, processing state, transcript and notes."""

    __tablename__ = "sessions"
    __table_args__ = (
        Index("ix_sessions_therapist_created", "therapist_id", "created_at"),
        Index("ix_sessions_patient_created", "patient_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    therapist_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    session_date: Mapped[datetime] = mapped_column(default=utcnow)
    duration_seconds: Mapped[int | None] = mapped_column(Integer, default=None)
    audio_filename: Mapped[str | None] = mapped_column(String(255), default=None)
    audio_url: Mapped[str | None] = mapped_column(String(1024), default=None)
    transcript_text: Mapped[str | None] = mapped_column(Text, default=None)
    transcript_segments: Mapped[list[Any] | None] = mapped_column(JSON, default=None)
    extracted_notes: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    therapist_summary: Mapped[str | None] = mapped_column(Text, default=None)
    patient_summary: Mapped[str | None] = mapped_column(Text, default=None)
    risk_flags: Mapped[list[Any] | None] = mapped_column(JSON, default=None)
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    error_message: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(default=None)
