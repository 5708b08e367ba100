"""Therapy sessions: streaming upload, list, read, notes and on-demand note extraction."""

import time
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response

from reference_backend import crud
from reference_backend.api.deps import DataCaller, LimitsDep, ProcessorDep, SessionDep, SettingsDep
from reference_backend.core.errors import ApiError
from reference_backend.schemas import ExtractNotesPublic, SessionPublic, session_list_json
from reference_backend.services import processing
from reference_backend.services.uploads import accept_upload

router = APIRouter(prefix="/api/sessions", tags=["sessions"])
Status = Literal[
    "pending", "uploading", "transcribing", "transcribed", "extracting_notes", "processed", "failed"
]


def _not_found() -> ApiError:
    return ApiError(404, "Session not found")


@router.post("/upload")
async def upload(
    patient_id: uuid.UUID,
    request: Request,
    caller: DataCaller,
    session: SessionDep,
    settings: SettingsDep,
    processor: ProcessorDep,
    limits: LimitsDep,
) -> SessionPublic:
    """Stream an audio file to disk and start processing; refusals leave nothing behind."""
    await limits.hit("default", "upload", user=caller.user)
    patient = await crud.get_patient(session, patient_id=patient_id, therapist_id=caller.scope)
    if patient is None:
        raise ApiError(404, "Patient not found")
    row, final_path = await accept_upload(request, session, patient=patient, settings=settings)
    processor.start(row.id, final_path)
    return SessionPublic.model_validate(row)


@router.get("/", response_model=list[SessionPublic])
async def list_sessions(
    caller: DataCaller,
    session: SessionDep,
    limits: LimitsDep,
    patient_id: uuid.UUID | None = None,
    status: Status | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> Response:
    """The caller's sessions (everyone's without ownership), newest first."""
    await limits.hit("default", user=caller.user)
    if patient_id is not None and not await crud.get_patient(
        session, patient_id=patient_id, therapist_id=caller.scope
    ):
        raise ApiError(404, "Patient not found")
    rows = await crud.list_sessions(
        session, therapist_id=caller.scope, patient_id=patient_id, status=status, limit=limit
    )
    return Response(session_list_json(rows), media_type="application/json")


@router.get("/{session_id}")
async def get_session(
    session_id: uuid.UUID, caller: DataCaller, session: SessionDep, limits: LimitsDep
) -> SessionPublic:
    """One session, only if it is the caller's (any, without ownership)."""
    await limits.hit("default", user=caller.user)
    row = await crud.get_session(session, session_id=session_id, therapist_id=caller.scope)
    if row is None:
        raise _not_found()
    return SessionPublic.model_validate(row)


@router.get("/{session_id}/notes")
async def get_notes(
    session_id: uuid.UUID, caller: DataCaller, session: SessionDep, limits: LimitsDep
) -> dict[str, Any]:
    """The session's extracted notes; 404 until they exist."""
    await limits.hit("default", user=caller.user)
    row = await crud.get_session(session, session_id=session_id, therapist_id=caller.scope)
    if row is None:
        raise _not_found()
    if not row.extracted_notes:
        raise ApiError(404, "Notes not available yet", code="notes_not_ready")
    return row.extracted_notes


@router.post("/{session_id}/extract-notes")
async def extract_notes(
    session_id: uuid.UUID,
    caller: DataCaller,
    session: SessionDep,
    settings: SettingsDep,
    limits: LimitsDep,
) -> ExtractNotesPublic:
    """Derive notes from the transcript now; 400 when there is no transcript yet."""
    started = time.perf_counter()
    await limits.hit("default", "extract", user=caller.user)
    row = await crud.get_session(session, session_id=session_id, therapist_id=caller.scope)
    if row is None:
        raise _not_found()
    notes = await processing.extract_notes_now(session, row, settings=settings)
    return ExtractNotesPublic(
        extracted_notes=notes, processing_time=round(time.perf_counter() - started, 3)
    )
