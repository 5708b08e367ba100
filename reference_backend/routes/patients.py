"""Patients: create, list and read, each limited to the signed-in therapist's own."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from reference_backend import crud
from reference_backend.deps import CurrentUser, SessionDep
from reference_backend.errors import ApiError
from reference_backend.schemas import PatientCreate, PatientPublic

router = APIRouter(prefix="/api/patients", tags=["patients"])


def _not_found() -> ApiError:
    return ApiError(404, "Patient not found")


@router.post("/")
async def create_patient(
    data: PatientCreate, user: CurrentUser, session: SessionDep
) -> PatientPublic:
    """Add a patient for the caller (another therapist's id is 404)."""
    if data.therapist_id is not None and data.therapist_id != user.id:
        raise ApiError(404, "Therapist not found")
    patient = await crud.create_patient(session, data=data, therapist_id=user.id)
    return PatientPublic.model_validate(patient)


@router.get("/")
async def list_patients(
    user: CurrentUser,
    session: SessionDep,
    therapist_id: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[PatientPublic]:
    """The caller's patients, newest first (another therapist's id is 404)."""
    if therapist_id is not None and therapist_id != user.id:
        raise ApiError(404, "Therapist not found")
    patients = await crud.list_patients(session, therapist_id=user.id, limit=limit)
    return [PatientPublic.model_validate(p) for p in patients]


@router.get("/{patient_id}")
async def get_patient(
    patient_id: uuid.UUID, user: CurrentUser, session: SessionDep
) -> PatientPublic:
    """One patient, only if it is the caller's."""
    patient = await crud.get_patient(session, patient_id=patient_id, therapist_id=user.id)
    if patient is None:
        raise _not_found()
    return PatientPublic.model_validate(patient)
