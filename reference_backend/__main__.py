"""Command line: `python -m reference_backend --host 127.0.0.1 --port 8000 [--workers N]`.

The parent process reads and validates the settings once (a JWT secret included: given, or made
here), creates the schema and seeds an empty database, then serves with uvicorn (uvloop,
httptools, no access log). Every worker gets the parent's settings inside uvicorn's config, so
they all sign tokens with one secret and nothing is written into the environment.
"""

import argparse
import asyncio
import sys

from pydantic import ValidationError

from reference_backend.core.config import Settings
from reference_backend.core.db import create_database
from reference_backend.seed import prepare_database
from reference_backend.server import serve
from reference_backend.services.limits import RedisStorage

PROG = "reference_backend"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command-line options."""
    parser = argparse.ArgumentParser(prog=f"python -m {PROG}", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (needs Redis)")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    return args


def load_settings() -> Settings | str:
    """The settings, or a one-line description of what is wrong with them."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])).upper() or 'settings'}: {e['msg']}"
            for e in exc.errors()
        )
        return f"invalid configuration: {problems}"


async def prepare(settings: Settings) -> int:
    """Schema and seed in the parent, and a reachable Redis when the limiter needs it."""
    if not settings.limiter_in_memory:
        storage = RedisStorage(settings.rate_limit_storage)
        try:
            await storage.ping()
        finally:
            await storage.close()
    database = create_database(settings)
    try:
        return await prepare_database(database, settings)
    finally:
        await database.dispose()


def fail(message: str) -> int:
    """Print one line on stderr; exit status 2."""
    print(f"{PROG}: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    """Validate, prepare the database, then serve."""
    args = parse_args(argv)
    settings = load_settings()
    if isinstance(settings, str):
        return fail(settings)
    if args.workers > 1 and settings.limiter_in_memory and not settings.allow_per_worker_limits:
        return fail(
            f"--workers {args.workers} needs a shared rate-limit store: set "
            "RATE_LIMIT_STORAGE=redis://host:port/db (the in-memory limiter would give each "
            "worker its own quota), or ALLOW_PER_WORKER_LIMITS=true to allow exactly that"
        )
    try:
        asyncio.run(prepare(settings))
    except Exception as exc:  # start-up failure: one line, no traceback
        return fail(f"start-up failed: {type(exc).__name__}: {exc}".splitlines()[0])
    return serve(settings, host=args.host, port=args.port, workers=args.workers)


if __name__ == "__main__":
    sys.exit(main())
