"""Background processing stand-in: deterministic transcript and notes, with a configurable delay.

The deployed service calls speech and language models; here each stage waits
PROCESSING_DELAY_SECONDS and derives its output from the upload's name and size, so the same input
always gives the same transcript and notes and no outside service is needed.
"""

import asyncio
import hashlib
import logging
import random
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from reference_backend import crud
from reference_backend.core.config import Settings
from reference_backend.core.db import Database
from reference_backend.core.errors import ApiError
from reference_backend.models import TherapySession, utcnow

log = logging.getLogger("reference_backend.processing")

LINES = (
    ("Therapist", "How have things been since our last session?"),
    ("Client", "Work has been stressful, and I have not been sleeping well."),
    ("Therapist", "What do you notice in your body when the stress builds up?"),
    ("Client", "My shoulders get tight and my thoughts start racing at night."),
    ("Therapist", "Let's try the breathing exercise we practised last time."),
    ("Client", "I used it twice this week and it helped a little."),
    ("Therapist", "That is real progress. What got in the way on the other days?"),
    ("Client", "I forgot about it when I was already overwhelmed."),
    ("Therapist", "Could we set a reminder for the evenings?"),
    ("Client", "Yes, I think an evening reminder would help."),
)
TOPICS = ("work stress", "sleep", "anxiety", "family", "self-care", "boundaries", "motivation")
MOODS = ("low", "neutral", "positive", "anxious", "hopeful")
BYTES_PER_SECOND = 16_000
MISSING_KEY = "OPENAI_API_KEY not found in environment"
TRANSCRIBED = ("transcribed", "extracting_notes", "processed")


def _rng(*parts: object) -> random.Random:
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def make_transcript(name: str, size: int) -> tuple[str, list[dict[str, Any]], int]:
    """Transcript text, timed segments and duration (seconds) for an upload."""
    rng = _rng(name, size)
    count = rng.randint(6, len(LINES))
    segments, start = [], 0.0
    for speaker, text in LINES[:count]:
        end = start + rng.uniform(3, 12)
        segments.append(
            {"start": round(start, 2), "end": round(end, 2), "speaker": speaker, "text": text}
        )
        start = end
    text = " ".join(f"{s['speaker']}: {s['text']}" for s in segments)
    return text, segments, max(1, size // BYTES_PER_SECOND)


def make_notes(transcript: str) -> dict[str, Any]:
    """Structured clinical notes derived from a transcript."""
    rng = _rng(transcript)
    topics = rng.sample(TOPICS, 3)
    return {
        "key_topics": topics,
        "topic_summary": f"The session focused on {', '.join(topics)}.",
        "strategies": [
            {
                "name": "Diaphragmatic breathing",
                "category": "breathing",
                "status": "practiced",
                "context": "used for evening stress",
            }
        ],
        "emotional_themes": rng.sample(["overwhelm", "hope", "frustration", "relief"], 2),
        "triggers": [{"trigger": "work deadlines", "context": "evenings", "severity": "moderate"}],
        "action_items": [
            {
                "task": "Set an evening reminder for breathing practice",
                "category": "homework",
                "details": "daily, 10 minutes",
            }
        ],
        "significant_quotes": [{"quote": LINES[5][1], "context": "progress with practice"}],
        "session_mood": rng.choice(MOODS),
        "mood_trajectory": rng.choice(["improving", "stable", "declining"]),
        "follow_up_topics": [topics[0]],
        "unresolved_concerns": ["sleep quality"],
        "risk_flags": [],
        "therapist_notes": f"Client engaged well; continue work on {topics[0]}.",
        "patient_summary": f"We talked about {topics[0]} and practised a breathing exercise.",
    }


def notes_fields(notes: dict[str, Any]) -> dict[str, Any]:
    """Session columns filled from a set of notes."""
    return {
        "extracted_notes": notes,
        "therapist_summary": notes["therapist_notes"],
        "patient_summary": notes["patient_summary"],
        "risk_flags": notes["risk_flags"],
    }


class Processor:
    """Runs each upload's stages as a background task in this process."""

    def __init__(self, database: Database, *, delay: float, model: str = "local") -> None:
        self.database = database
        self.delay = delay
        self.model = model  # "missing-key": every job fails at once, as with no model key
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, session_id: uuid.UUID, audio_path: Path) -> None:
        """Schedule processing of one uploaded session."""
        task = asyncio.create_task(self._run(session_id, audio_path))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, session_id: uuid.UUID, audio_path: Path) -> None:
        try:
            await self._stages(session_id, audio_path)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a failed job is recorded on the session, not raised
            log.log(self._level(exc), "processing %s failed: %s", session_id, exc)
            try:
                await self._set(session_id, status="failed", error_message=str(exc)[:500])
            except Exception as again:  # the database itself is failing: log and give up
                log.error("could not mark %s failed: %s", session_id, again)

    async def _stages(self, session_id: uuid.UUID, audio_path: Path) -> None:
        if self.model == "missing-key":
            raise RuntimeError(MISSING_KEY)
        await asyncio.sleep(self.delay)
        await self._set(session_id, status="transcribing")
        await asyncio.sleep(self.delay)
        if not audio_path.is_file():
            raise FileNotFoundError(f"audio file {audio_path.name} is missing")
        text, segments, duration = make_transcript(audio_path.name, audio_path.stat().st_size)
        await self._set(
            session_id,
            status="transcribed",
            transcript_text=text,
            transcript_segments=segments,
            duration_seconds=duration,
        )
        await asyncio.sleep(self.delay)
        await self._set(session_id, status="extracting_notes")
        await asyncio.sleep(self.delay)
        fields = notes_fields(make_notes(text))
        await self._set(session_id, status="processed", processed_at=utcnow(), **fields)

    def _level(self, exc: Exception) -> int:
        return logging.INFO if str(exc) == MISSING_KEY else logging.WARNING

    async def _set(self, session_id: uuid.UUID, **fields: Any) -> None:
        async with self.database.sessionmaker() as session:
            await crud.update_session(session, session_id=session_id, **fields)
            await session.commit()

    async def shutdown(self) -> None:
        """Cancel unfinished jobs (their sessions keep their last status)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def simulate_model_call(delay: float) -> None:
    """Stand in for a language-model call: wait without blocking the event loop."""
    await asyncio.sleep(delay)


async def extract_notes_now(
    session: AsyncSession, row: TherapySession, *, settings: Settings
) -> dict[str, Any]:
    """Notes from a transcribed session's transcript, stored on it (a `transcribed` one becomes
    `processed`); 400 before a transcript exists, 500 with PROCESSING_MODEL=missing-key."""
    if settings.processing_model == "missing-key":
        raise ApiError(500, MISSING_KEY, code="INTERNAL_SERVER_ERROR")
    if row.status not in TRANSCRIBED or not row.transcript_text:
        message = f"Session is not transcribed yet (status {row.status})"
        raise ApiError(400, message, code="not_transcribed")
    session_id, transcript, status = row.id, row.transcript_text, row.status
    await session.rollback()  # do not hold a connection during the simulated model call
    await simulate_model_call(settings.processing_delay_seconds)
    notes = make_notes(transcript)
    fields = notes_fields(notes)
    if status == "transcribed":
        fields.update(status="processed", processed_at=utcnow())
    await crud.update_session(session, session_id=session_id, **fields)
    await session.commit()
    return notes
