"""Reference TherapyBridge backend: a FastAPI + SQLAlchemy service implementing the API contract,
or, with REFERENCE_BEHAVIOUR=deployed, behaving like the deployed service.

Layout (after fastapi/full-stack-fastapi-template):
- ``api/``: ``deps.py`` (Annotated dependencies: session, settings, caller, limits), ``routes/``
  (thin: check, call crud or a service, answer), ``leak.py`` (a planted-defect middleware);
- ``core/``: ``config.py`` (Settings, the deployed preset), ``security.py``, ``db.py``,
  ``errors.py``;
- ``services/``: ``uploads.py`` (an upload to a stored row), ``multipart.py`` (the streaming body
  and its checks), ``processing.py`` (background stages, extract-notes), ``limits.py``;
- ``crud.py``, ``models.py``, ``schemas.py``, ``seed.py``; ``app.py`` builds the app,
  ``server.py`` and ``protocol.py`` serve it, ``__main__.py`` is the command line and
  ``process.py`` starts it as a subprocess.
"""

__version__ = "1.0.0"
