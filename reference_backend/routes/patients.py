"""Patients: create, list and read; scoped to the caller's own unless OWNERSHIP_CHECKS=false."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy.ext.asyncio import AsyncSession

from reference_backend import crud
from reference_backend.deps import Caller, DataCaller, LimitsDep, SessionDep
from reference_backend.errors import ApiError
from reference_backend.schemas import PatientCreate, PatientPublic

router = APIRouter(prefix="/api/patients", tags=["patients"])


def _not_found() -> ApiError:
    return ApiError(404, "Patient not found")


def _therapist_missing() -> ApiError:
    detail = {"field": "therapist_id", "message": "Field required", "type": "missing"}
    return ApiError(422, "Request validation failed", details={"validation_errors": [detail]})


async def therapist_for(
    session: AsyncSession, *, caller: Caller, requested: uuid.UUID | None
) -> uuid.UUID:
    """The therapist a new patient belongs to: the one named, else the caller."""
    if requested is None:
        if caller.user is None:
            raise _therapist_missing()
        return caller.user.id
    if caller.scope is not None and requested != caller.scope:
        raise ApiError(404, "Therapist not found")  # another therapist's id, with ownership
    if caller.user is not None and requested == caller.user.id:
        return requested
    therapist = await crud.get_user(session, user_id=requested)
    if therapist is None:
        raise ApiError(404, "Therapist not found")
    if therapist.role != "therapist":
        raise ApiError(400, "User is not a therapist", code="not_a_therapist")
    return requested


@router.post("/")
async def create_patient(
    data: PatientCreate, caller: DataCaller, session: SessionDep, limits: LimitsDep
) -> PatientPublic:
    """Add a patient for the caller or the therapist named (another's, with ownership: 404)."""
    if data.therapist_id is None and limits.settings.patient_therapist_id == "required":
        raise _therapist_missing()
    await limits.hit("default", user=caller.user)
    therapist_id = await therapist_for(session, caller=caller, requested=data.therapist_id)
    patient = await crud.create_patient(session, data=data, therapist_id=therapist_id)
    return PatientPublic.model_validate(patient)


@router.get("/")
async def list_patients(
    caller: DataCaller,
    session: SessionDep,
    limits: LimitsDep,
    therapist_id: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[PatientPublic]:
    """The caller's patients (everyone's without ownership), newest first."""
    await limits.hit("default", user=caller.user)
    if caller.scope is not None and therapist_id not in (None, caller.scope):
        raise ApiError(404, "Therapist not found")
    scope = caller.scope or therapist_id
    patients = await crud.list_patients(session, therapist_id=scope, limit=limit)
    return [PatientPublic.model_validate(p) for p in patients]


@router.get("/{patient_id}")
async def get_patient(
    patient_id: uuid.UUID, caller: DataCaller, session: SessionDep, limits: LimitsDep
) -> PatientPublic:
    """One patient, only if it is the caller's (any, without ownership)."""
    await limits.hit("default", user=caller.user)
    patient = await crud.get_patient(session, patient_id=patient_id, therapist_id=caller.scope)
    if patient is None:
        raise _not_found()
    return PatientPublic.model_validate(patient)
