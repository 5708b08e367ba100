"""Settings read from the environment; a bad value stops start-up with one clear message."""

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from reference_backend.core.security import new_jwt_secret

DEFAULT_DATABASE_URL = "sqlite:///./therapybridge.db"
RATE_PATTERN = re.compile(
    r"^\s*(\d+)\s*(?:/|per)\s*(\d*)\s*(second|minute|hour|day)s?\s*$", re.IGNORECASE
)
PERIOD_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
RateLimitText = Annotated[str, Field(min_length=3)]


NO_LIMIT = "none"
STATUS_CHOICES = {"limit_response": (429, 500), "missing_auth_status": (401, 403)}
# What REFERENCE_BEHAVIOUR=deployed sets, for every setting not given explicitly
# (../shared/deployed-behaviour.md lists the behaviours these reproduce).
DEPLOYED: dict[str, Any] = {
    "limit_key": "address",
    "limit_response": 500,
    "rate_limit_default": NO_LIMIT,
    "allow_per_worker_limits": True,
    "trust_proxy_headers": True,
    "auth_on_data_routes": False,
    "missing_auth_status": 403,
    "logout_revokes_access": False,
    "ownership_checks": False,
    "patient_therapist_id": "required",
    "phone_check": "deployed",
    "upload_magic_check": False,
    "upload_row_before_check": True,
    "upload_size_check": "after-body",
    "upload_session_therapist": "first",
    "processing_model": "missing-key",
    "db_pool_size": 20,
    "db_max_overflow": 10,
}


def parse_rate(text: str) -> tuple[int, int] | None:
    """Parse ``"100/minute"`` (also ``"5 per 10 seconds"``) into (count, window seconds).

    ``"none"`` means no limit and gives None.
    """
    if text.strip().lower() == NO_LIMIT:
        return None
    match = RATE_PATTERN.match(text)
    if not match:
        raise ValueError(f"invalid rate limit {text!r}; expected e.g. '100/minute'")
    count, multiplier, unit = match.groups()
    seconds = PERIOD_SECONDS[unit.lower()] * int(multiplier or 1)
    if int(count) < 1:
        raise ValueError(f"invalid rate limit {text!r}: the count must be at least 1")
    return int(count), seconds


def normalise_database_url(url: str) -> str:
    """Map any SQLAlchemy URL form for SQLite or PostgreSQL onto its async driver."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"invalid DATABASE_URL {url!r}")
    base = scheme.split("+", 1)[0].lower()
    if base == "sqlite":
        return f"sqlite+aiosqlite://{rest}"
    if base in ("postgresql", "postgres"):
        return f"postgresql+asyncpg://{rest}"
    raise ValueError(f"unsupported DATABASE_URL scheme {scheme!r} (use sqlite or postgresql)")


def sqlite_path(async_url: str) -> Path | None:
    """The file behind a SQLite URL, or None for PostgreSQL and in-memory SQLite."""
    if not async_url.startswith("sqlite"):
        return None
    path = async_url.split(":///", 1)[1] if ":///" in async_url else ""
    path = path.split("?", 1)[0]
    if not path or path == ":memory:":
        return None
    return Path(path)


class Settings(BaseSettings):
    """Every knob of the reference backend; names are the environment variables."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore")

    reference_behaviour: Literal["contract", "deployed"] = "contract"

    database_url: str = DEFAULT_DATABASE_URL
    db_pool_size: int = Field(5, ge=1)
    db_max_overflow: int = Field(10, ge=0)
    db_pool_timeout: float = Field(30.0, gt=0)
    db_pool_recycle: int = 3600

    jwt_secret: SecretStr = SecretStr("")  # empty: a random one, made once, handed to workers
    access_token_expire_seconds: int = Field(1800, ge=1)
    refresh_token_expire_seconds: int = Field(7 * 86400, ge=1)
    bcrypt_rounds: int = Field(12, ge=4, le=31)

    rate_limit_enabled: bool = True
    rate_limit_storage: str = "memory://"
    rate_limit_key_prefix: str = "tb-limits:"
    rate_limit_default: RateLimitText = "100/minute"
    rate_limit_login: RateLimitText = "5/minute"
    rate_limit_signup: RateLimitText = "3/hour"
    rate_limit_refresh: RateLimitText = "10/minute"
    rate_limit_upload: RateLimitText = "10/hour"
    rate_limit_extract: RateLimitText = "20/hour"
    limit_key: Literal["user", "address"] = "user"
    limit_response: int = 429
    allow_per_worker_limits: bool = False
    trust_proxy_headers: bool = False

    auth_on_data_routes: bool = True
    missing_auth_status: int = 401
    logout_revokes_access: bool = True
    ownership_checks: bool = True
    patient_therapist_id: Literal["optional", "required"] = "optional"

    upload_dir: Path | None = None
    upload_magic_check: bool = True
    upload_row_before_check: bool = False
    upload_size_check: Literal["streaming", "after-body"] = "streaming"
    upload_session_therapist: Literal["patient", "first"] = "patient"
    processing_model: Literal["local", "missing-key"] = "local"
    phone_check: Literal["none", "deployed"] = "none"
    max_upload_bytes: int = Field(500 * 1024 * 1024, ge=1024)
    upload_body_timeout_seconds: float = Field(30.0, gt=0)
    processing_delay_seconds: float = Field(0.2, ge=0)

    # Planted defects: no deployed service does these; tests prove the suite catches them.
    limit_retry_after: bool = True
    password_hash_on_loop: bool = False
    leak_bytes_per_request: int = Field(0, ge=0, le=16 * 1024 * 1024)
    upload_buffering: Literal["stream", "whole-body"] = "stream"

    seed_accounts: int = Field(100, ge=0)
    seed_password: str = "LoadTest@2026"
    log_level: str = "info"

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        return normalise_database_url(value)

    @field_validator(
        "rate_limit_default",
        "rate_limit_login",
        "rate_limit_signup",
        "rate_limit_refresh",
        "rate_limit_upload",
        "rate_limit_extract",
    )
    @classmethod
    def _valid_rate(cls, value: str) -> str:
        parse_rate(value)
        return value

    @field_validator("limit_response", "missing_auth_status")
    @classmethod
    def _known_status(cls, value: int, info: ValidationInfo) -> int:
        allowed = STATUS_CHOICES[info.field_name]
        if value not in allowed:
            raise ValueError(f"must be one of {' or '.join(map(str, allowed))}")
        return value

    @field_validator("rate_limit_storage")
    @classmethod
    def _known_storage(cls, value: str) -> str:
        if not value.startswith(("memory://", "redis://", "rediss://")):
            raise ValueError("RATE_LIMIT_STORAGE must be memory:// or redis://host:port/db")
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.lower() not in ("critical", "error", "warning", "info", "debug", "trace"):
            raise ValueError("LOG_LEVEL must be one of critical, error, warning, info, debug")
        return value.lower()

    @model_validator(mode="after")
    def _preset_then_defaults(self) -> "Settings":
        if self.reference_behaviour == "deployed":
            for name, value in DEPLOYED.items():
                if name not in self.model_fields_set:
                    setattr(self, name, value)
        if not self.jwt_secret.get_secret_value():
            self.jwt_secret = SecretStr(new_jwt_secret())
        if self.upload_dir is None:
            db_file = sqlite_path(self.database_url)
            base = db_file.parent if db_file else Path(".")
            self.upload_dir = base / "uploads"
        return self

    @property
    def limiter_in_memory(self) -> bool:
        """Whether the rate limiter keeps its counters inside one process."""
        return self.rate_limit_storage.startswith("memory://")


_PROCESS: dict[str, Settings] = {}


def install_settings(settings: Settings) -> None:
    """Make ``settings`` this process's settings (each uvicorn worker installs its parent's)."""
    _PROCESS["settings"] = settings


def get_settings() -> Settings:
    """This process's settings: the installed ones, else read from the environment once."""
    if "settings" not in _PROCESS:
        install_settings(Settings())
    return _PROCESS["settings"]
