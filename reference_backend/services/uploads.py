"""An upload from checked body to stored session row, and the processing it starts.

The route only authenticates and finds the patient; this module names the file, writes the row
and, per the settings, gives the session the patient's therapist or the first one, and leaves a
`failed` row for a refused file's bytes (UPLOAD_ROW_BEFORE_CHECK) as the deployed service does.
"""

import uuid
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from reference_backend import crud
from reference_backend.core.config import Settings
from reference_backend.models import Patient, TherapySession
from reference_backend.services.multipart import (
    ContentRefused,
    UploadRules,
    check_filename,
    receive_upload,
)


def upload_rules(settings: Settings) -> UploadRules:
    """The upload checks the settings ask for."""
    return UploadRules(
        max_bytes=settings.max_upload_bytes,
        timeout=settings.upload_body_timeout_seconds,
        magic_check=settings.upload_magic_check,
        size_after_body=settings.upload_size_check == "after-body",
        whole_body=settings.upload_buffering == "whole-body",
    )


async def session_therapist(
    session: AsyncSession, *, patient: Patient, settings: Settings
) -> uuid.UUID:
    """The patient's therapist, or (UPLOAD_SESSION_THERAPIST=first) the first in the database."""
    if settings.upload_session_therapist == "first":
        first = await crud.first_therapist_id(session)
        if first is not None:
            return first
    return patient.therapist_id


async def accept_upload(
    request: Request, session: AsyncSession, *, patient: Patient, settings: Settings
) -> tuple[TherapySession, Path]:
    """Receive the file, rename it into place and insert its `uploading` row; nothing on refusal."""
    fields = {
        "id": uuid.uuid4(),
        "patient_id": patient.id,
        "therapist_id": await session_therapist(session, patient=patient, settings=settings),
    }
    await session.rollback()  # release the connection while the body streams
    assert settings.upload_dir is not None
    part = settings.upload_dir / f"{fields['id']}.part"
    try:
        stored = await receive_upload(request, path=part, rules=upload_rules(settings))
    except ContentRefused as refused:
        if settings.upload_row_before_check:
            await crud.create_session(
                session, **fields, audio_filename=refused.filename, status="failed",
                error_message=refused.message,
            )  # fmt: skip
            await session.commit()
        raise
    final_path = stored.path.with_suffix(check_filename(stored.filename))
    try:
        stored.path.rename(final_path)
        row = await crud.create_session(
            session, **fields, audio_filename=stored.filename, status="uploading",
            audio_url=f"file://{final_path.resolve()}",
        )  # fmt: skip
        await session.commit()
    except BaseException:
        final_path.unlink(missing_ok=True)
        stored.path.unlink(missing_ok=True)
        raise
    return row, final_path
