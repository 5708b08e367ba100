"""Reference TherapyBridge backend: a FastAPI + SQLAlchemy service implementing the API contract."""

__version__ = "1.0.0"
