"""Patients: create, list and read; scoped to the caller's own unless OWNERSHIP_CHECKS=false."""

import re
import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy.ext.asyncio import AsyncSession

from reference_backend import crud
from reference_backend.api.deps import Caller, DataCaller, LimitsDep, SessionDep, SettingsDep
from reference_backend.core.config import Settings
from reference_backend.core.errors import ApiError
from reference_backend.schemas import PatientCreate, PatientPublic

router = APIRouter(prefix="/api/patients", tags=["patients"])
DEPLOYED_PHONE = re.compile(r"^\+?[1-9][\d\s.-]*$")  # "555-123-4567" passes, "(123) 456-7890" not


def _not_found() -> ApiError:
    return ApiError(404, "Patient not found")


def _invalid(field: str, message: str, kind: str) -> ApiError:
    detail = {"field": field, "message": message, "type": kind}
    return ApiError(422, "Request validation failed", details={"validation_errors": [detail]})


def _therapist_missing() -> ApiError:
    return _invalid("therapist_id", "Field required", "missing")


def check_deployed_rules(data: PatientCreate, settings: Settings) -> None:
    """422 for what the deployed service's schema refuses (PATIENT_THERAPIST_ID, PHONE_CHECK)."""
    if data.therapist_id is None and settings.patient_therapist_id == "required":
        raise _therapist_missing()
    if settings.phone_check == "deployed" and data.phone and not DEPLOYED_PHONE.match(data.phone):
        raise _invalid("phone", "Phone must start with + or a digit 1-9", "value_error")


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
    data: PatientCreate,
    caller: DataCaller,
    session: SessionDep,
    settings: SettingsDep,
    limits: LimitsDep,
) -> PatientPublic:
    """Add a patient for the caller or the therapist named (another's, with ownership: 404)."""
    check_deployed_rules(data, settings)
    await limits.hit("default", user=caller.user)
    therapist_id = await therapist_for(session, caller=caller, requested=data.therapist_id)
    patient = await crud.create_patient(session, data=data, therapist_id=therapist_id)
    await session.commit()
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
