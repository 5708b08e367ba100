"""A planted memory leak (LEAK_BYTES_PER_REQUEST): proves the suite's memory test catches one."""

from starlette.types import ASGIApp, Receive, Scope, Send


class LeakMiddleware:
    """Keeps ``size`` bytes for good on every HTTP request."""

    def __init__(self, app: ASGIApp, size: int) -> None:
        self.app = app
        self.size = size
        self.kept: list[bytes] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.kept.append(b"\x01" * self.size)  # written, so the pages count in RSS
        await self.app(scope, receive, send)
