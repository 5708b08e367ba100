"""Data functions: keyword-only, one query or write each, ownership in the WHERE clause.

One commit policy: these functions never commit. A write adds or updates and flushes; the owner
of the unit of work (a route or a service) commits once, so a signup's user and its tokens, or a
login's token, land together or not at all.

``therapist_id`` scopes a read to one therapist's rows; None (OWNERSHIP_CHECKS=false, or a caller
without a token on open data routes) reads everyone's.
"""

import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import JSON, RowMapping, Text, cast, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from reference_backend.core.security import new_refresh_token, token_digest
from reference_backend.models import Patient, RefreshToken, TherapySession, User, utcnow
from reference_backend.schemas import PatientCreate, UserCreate


async def get_user(session: AsyncSession, *, user_id: uuid.UUID) -> User | None:
    """The user with this id."""
    return await session.get(User, user_id)


async def get_user_by_email(session: AsyncSession, *, email: str) -> User | None:
    """The user with this email (lower-cased)."""
    result = await session.execute(select(User).where(User.email == email.strip().lower()))
    return result.scalar_one_or_none()


async def create_user(session: AsyncSession, *, data: UserCreate, hashed_password: str) -> User:
    """Insert a user (a duplicate email raises IntegrityError)."""
    user = User(
        email=data.email,
        hashed_password=hashed_password,
        first_name=data.first_name,
        last_name=data.last_name,
        role=data.role,
    )
    session.add(user)
    await session.flush()
    return user


async def add_refresh_token(session: AsyncSession, *, user_id: uuid.UUID, lifetime: int) -> str:
    """Store a new refresh token's digest and return the token itself."""
    token = new_refresh_token()
    expires_at = utcnow() + timedelta(seconds=lifetime)
    session.add(
        RefreshToken(user_id=user_id, token_hash=token_digest(token), expires_at=expires_at)
    )
    return token


async def consume_refresh_token(
    session: AsyncSession, *, token: str, user_id: uuid.UUID | None = None
) -> uuid.UUID | None:
    """Revoke a live refresh token in one atomic UPDATE; its user id, or None if not live."""
    now = utcnow()
    statement = (
        update(RefreshToken)
        .where(RefreshToken.token_hash == token_digest(token))
        .where(RefreshToken.revoked_at.is_(None))
        .where(RefreshToken.expires_at > now)
        .values(revoked_at=now)
        .returning(RefreshToken.user_id)
    )
    if user_id is not None:
        statement = statement.where(RefreshToken.user_id == user_id)
    result = await session.execute(statement)
    return result.scalar_one_or_none()


async def first_therapist_id(session: AsyncSession) -> uuid.UUID | None:
    """The id of the first therapist created (the deployed service's owner of every upload)."""
    statement = (
        select(User.id)
        .where(User.role == "therapist")
        .order_by(User.created_at, User.email)
        .limit(1)
    )
    return await session.scalar(statement)


async def create_patient(
    session: AsyncSession, *, data: PatientCreate, therapist_id: uuid.UUID
) -> Patient:
    """Insert a patient for this therapist."""
    patient = Patient(name=data.name, email=data.email, phone=data.phone, therapist_id=therapist_id)
    session.add(patient)
    await session.flush()
    return patient


async def list_patients(
    session: AsyncSession, *, therapist_id: uuid.UUID | None, limit: int
) -> list[Patient]:
    """This therapist's patients (everyone's for None), newest first."""
    statement = select(Patient)
    if therapist_id is not None:
        statement = statement.where(Patient.therapist_id == therapist_id)
    statement = statement.order_by(Patient.created_at.desc()).limit(limit)
    return list((await session.scalars(statement)).all())


async def get_patient(
    session: AsyncSession, *, patient_id: uuid.UUID, therapist_id: uuid.UUID | None
) -> Patient | None:
    """The patient, only if it belongs to this therapist (any therapist for None)."""
    statement = select(Patient).where(Patient.id == patient_id)
    if therapist_id is not None:
        statement = statement.where(Patient.therapist_id == therapist_id)
    return (await session.scalars(statement)).one_or_none()


async def list_sessions(
    session: AsyncSession,
    *,
    therapist_id: uuid.UUID | None,
    patient_id: uuid.UUID | None,
    status: str | None,
    limit: int,
) -> Sequence[RowMapping]:
    """This therapist's (everyone's for None) sessions, newest first; one patient or status.

    A Core query returning plain rows, with JSON columns left as the stored JSON text (see
    ``schemas.session_list_json``): the list route is the hot read path.
    """
    table = TherapySession.__table__
    columns = [cast(c, Text).label(c.name) if isinstance(c.type, JSON) else c for c in table.c]
    statement = select(*columns)
    if therapist_id is not None:
        statement = statement.where(table.c.therapist_id == therapist_id)
    if patient_id is not None:
        statement = statement.where(table.c.patient_id == patient_id)
    if status is not None:
        statement = statement.where(table.c.status == status)
    statement = statement.order_by(table.c.created_at.desc()).limit(limit)
    return (await session.execute(statement)).mappings().all()


async def get_session(
    session: AsyncSession, *, session_id: uuid.UUID, therapist_id: uuid.UUID | None
) -> TherapySession | None:
    """The therapy session, only if it belongs to this therapist (any therapist for None)."""
    statement = select(TherapySession).where(TherapySession.id == session_id)
    if therapist_id is not None:
        statement = statement.where(TherapySession.therapist_id == therapist_id)
    return (await session.scalars(statement)).one_or_none()


async def create_session(session: AsyncSession, **fields: Any) -> TherapySession:
    """Insert a therapy session row."""
    row = TherapySession(**fields)
    session.add(row)
    await session.flush()
    return row


async def update_session(session: AsyncSession, *, session_id: uuid.UUID, **fields: Any) -> None:
    """Set fields on a therapy session."""
    fields.setdefault("updated_at", utcnow())
    statement = update(TherapySession).where(TherapySession.id == session_id).values(**fields)
    await session.execute(statement)
