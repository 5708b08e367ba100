"""Schema creation and the documented load-test accounts, seeded in bulk on an empty database."""

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

import anyio.to_thread
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from reference_backend.core.config import Settings
from reference_backend.core.db import Database
from reference_backend.core.security import hash_password_sync
from reference_backend.models import Base, Patient, TherapySession, User, utcnow
from reference_backend.services.processing import make_notes, make_transcript, notes_fields

log = logging.getLogger("reference_backend.seed")

PATIENTS_PER_THERAPIST = 5
SESSIONS_PER_PATIENT = 12
OTHER_STATUSES = {10: "transcribed", 11: "failed"}  # by session index; the rest are processed


def seed_email(number: int) -> str:
    """The documented address of seed therapist ``number`` (1-based)."""
    return f"loadtest-{number:03d}@example.com"


def _user(number: int, hashed: str, now: datetime) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(), "email": seed_email(number), "hashed_password": hashed,
        "first_name": "Load", "last_name": f"Tester {number:03d}", "role": "therapist",
        "is_active": True, "created_at": now,
    }  # fmt: skip


def _patient(therapist_id: uuid.UUID, index: int, now: datetime) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(), "name": f"Seed Patient {index + 1}", "email": None, "phone": None,
        "therapist_id": therapist_id, "created_at": now, "updated_at": now,
    }  # fmt: skip


def _session(patient: dict[str, Any], index: int, when: datetime) -> dict[str, Any]:
    status = OTHER_STATUSES.get(index, "processed")
    name = f"seed-{patient['id'].hex[:8]}-{index + 1:02d}.mp3"
    text, segments, duration = make_transcript(name, 1_000_000 + 37_000 * index)
    row = {
        "id": uuid.uuid4(), "patient_id": patient["id"], "therapist_id": patient["therapist_id"],
        "session_date": when, "duration_seconds": duration, "audio_filename": name,
        "audio_url": None, "transcript_text": None, "transcript_segments": None,
        "extracted_notes": None, "therapist_summary": None, "patient_summary": None,
        "risk_flags": None, "status": status, "error_message": None, "created_at": when,
        "updated_at": when, "processed_at": None,
    }  # fmt: skip
    if status == "failed":
        row["error_message"] = "Transcription failed: audio could not be decoded"
        return row
    row.update(transcript_text=text, transcript_segments=segments)
    if status == "processed":
        row.update(notes_fields(make_notes(text)), processed_at=when)
    return row


def build_seed_rows(count: int, hashed: str) -> tuple[list[dict], list[dict], list[dict]]:
    """Users, patients and sessions for ``count`` seed therapists."""
    now = utcnow()
    users = [_user(n, hashed, now) for n in range(1, count + 1)]
    patients = [_patient(u["id"], i, now) for u in users for i in range(PATIENTS_PER_THERAPIST)]
    sessions = []
    for p_index, patient in enumerate(patients):
        for s_index in range(SESSIONS_PER_PATIENT):
            minutes = (p_index % PATIENTS_PER_THERAPIST) * SESSIONS_PER_PATIENT + s_index
            sessions.append(_session(patient, s_index, now - timedelta(hours=6 * minutes + 1)))
    return users, patients, sessions


async def _is_empty(connection: AsyncConnection) -> bool:
    return not await connection.scalar(select(func.count()).select_from(User))


async def seed_if_empty(database: Database, settings: Settings) -> int:
    """Seed SEED_ACCOUNTS therapists when there are no users; the number seeded."""
    async with database.engine.begin() as connection:
        if settings.seed_accounts == 0 or not await _is_empty(connection):
            return 0
        hashed = await anyio.to_thread.run_sync(
            hash_password_sync, settings.seed_password, settings.bcrypt_rounds
        )
        users, patients, sessions = build_seed_rows(settings.seed_accounts, hashed)
        await connection.execute(insert(User), users)
        await connection.execute(insert(Patient), patients)
        await connection.execute(insert(TherapySession), sessions)
    log.info("seeded %d therapists, %d sessions", len(users), len(sessions))
    return len(users)


async def prepare_database(database: Database, settings: Settings) -> int:
    """Create the schema and seed it when empty; the number of therapists seeded."""
    async with database.engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    return await seed_if_empty(database, settings)
