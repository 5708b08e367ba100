"""Serving: uvicorn with a config that hands the parent's Settings to every worker process.

uvicorn pickles its config into each worker it spawns; BackendConfig rides along with the
settings the parent read (the JWT secret it made included) and installs them in the worker before
the app factory runs, so no worker reads the environment again and nothing is written into it.
"""

import uvicorn
from uvicorn.supervisors import Multiprocess

from reference_backend.core.config import Settings, install_settings
from reference_backend.protocol import BoundedHttpToolsProtocol

APP = "reference_backend.app:create_app"


class BackendConfig(uvicorn.Config):
    """uvicorn's config carrying the parent's Settings; pickled into each worker with it."""

    def __init__(self, settings: Settings, **options: object) -> None:
        self.settings = settings
        super().__init__(APP, factory=True, **options)  # type: ignore[arg-type]

    def load(self) -> None:
        """Install the parent's settings in this process, then build the app."""
        install_settings(self.settings)
        super().load()


def serve(settings: Settings, *, host: str, port: int, workers: int) -> int:
    """Run uvicorn as `uvicorn.run` does, with a config that carries the settings; exit status."""
    config = BackendConfig(
        settings,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http=BoundedHttpToolsProtocol,  # httptools, with a bound on the request head
        access_log=False,
        log_level=settings.log_level,
        proxy_headers=settings.trust_proxy_headers,  # uvicorn trusts 127.0.0.1 only
        server_header=False,
    )
    server = uvicorn.Server(config)
    try:
        if config.workers > 1:
            Multiprocess(config, sockets=[config.bind_socket()]).run()
            return 0
        server.run()
    except KeyboardInterrupt:
        pass
    return 0 if server.started or config.workers > 1 else 1
