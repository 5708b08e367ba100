"""Ground-truth HTTP server for the benchmarks: known delays, and a record of what it served.

A raw asyncio protocol on uvloop (HTTP/1.1 keep-alive, GET without a body), meant to run in its own
process pinned to one core. Routes:
- ``/d``: answers after a delay, drawn in arrival order from the chosen distribution (``--mode``);
  the served time (request fully read -> response written to the socket) is recorded;
- ``/z``: answers at once, recorded separately (the client's own overhead on a zero-delay request);
- ``/__served``: JSON ``{"d": [ms, ...], "z": [ms, ...]}``; ``/__reset``: clears both and restarts
  the seeded sequence; anything else (``/health``, ``/``): an immediate 200, not recorded.

Modes: ``heavy`` (default: lognormal body, median 10 ms; 3% Pareto tail, alpha 1.3 from 70 ms,
capped at 1 s: p50 ~10 ms, p99 ~150-200 ms, max 1 s), ``fixed:MS`` (every /d waits MS), and
``serial:MS`` (one /d at a time, each MS long: a one-worker server with a queue, capacity
1000/MS per second).

    .venv/bin/python bench/groundtruth.py --port 8123 --mode heavy --seed 1
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import resource
import time
from collections.abc import Iterator

TAIL_PROBABILITY = 0.03
BODY_MEDIAN_S, BODY_SIGMA = 0.010, 0.45
TAIL_FROM_S, TAIL_ALPHA, CAP_S = 0.070, 1.3, 1.0
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Type: text/plain\r\n\r\nok\n"


def heavy_delays(seed: int) -> Iterator[float]:
    """The seeded sequence of /d delays (seconds) in ``heavy`` mode."""
    rng = random.Random(seed)
    while True:
        if rng.random() < TAIL_PROBABILITY:
            yield min(CAP_S, TAIL_FROM_S * rng.paretovariate(TAIL_ALPHA))
        else:
            yield rng.lognormvariate(math.log(BODY_MEDIAN_S), BODY_SIGMA)


def fixed_delays(seconds: float) -> Iterator[float]:
    """The same delay (seconds) for ever."""
    while True:
        yield seconds


class State:
    """The delay sequence, the serial lock and what was served."""

    def __init__(self, mode: str, seed: int) -> None:
        self.mode, self.seed = mode, seed
        self.lock = asyncio.Lock() if mode.startswith("serial") else None
        self.reset()

    def reset(self) -> None:
        kind, _, arg = self.mode.partition(":")
        self.delays = heavy_delays(self.seed) if kind == "heavy" else fixed_delays(float(arg) / 1e3)
        self.served: dict[str, list[float]] = {"d": [], "z": []}


class Handler(asyncio.Protocol):
    """One connection: parse request heads, answer them in order."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.buffer = b""
        self.queue: asyncio.Queue[tuple[bytes, float]] = asyncio.Queue()
        self.task: asyncio.Task | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.task = asyncio.get_running_loop().create_task(self.serve())

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
            self.queue.put_nowait((head.split(b" ", 2)[1], time.perf_counter()))

    def connection_lost(self, exc: BaseException | None) -> None:
        if self.task is not None:
            self.task.cancel()

    async def serve(self) -> None:
        while True:
            path, read_at = await self.queue.get()
            await self.answer(path.split(b"?")[0], read_at)

    async def answer(self, path: bytes, read_at: float) -> None:
        state = self.state
        if path == b"/d":
            delay = next(state.delays)
            if state.lock is not None:
                async with state.lock:
                    await asyncio.sleep(delay)
            else:
                await asyncio.sleep(delay)
            self.transport.write(OK)
            state.served["d"].append((time.perf_counter() - read_at) * 1e3)
        elif path == b"/z":
            self.transport.write(OK)
            state.served["z"].append((time.perf_counter() - read_at) * 1e3)
        elif path == b"/__served":
            self.json(state.served)
        elif path == b"/__reset":
            state.reset()
            self.transport.write(OK)
        else:
            self.transport.write(OK)

    def json(self, data: object) -> None:
        body = json.dumps(data).encode()
        head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n"
        self.transport.write(head.encode() + b"Content-Type: application/json\r\n\r\n" + body)


async def serve(port: int, mode: str, seed: int) -> None:
    state = State(mode, seed)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Handler(state), "127.0.0.1", port, backlog=8192)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mode", default="heavy", help="heavy | fixed:MS | serial:MS")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    import uvloop

    uvloop.run(serve(args.port, args.mode, args.seed))


if __name__ == "__main__":
    main()
