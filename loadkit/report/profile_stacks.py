"""Read a py-spy recording (collapsed stacks, `--format raw`) and say where the server's CPU went.

One line of the recording is `frame;frame;...;leaf COUNT`, outermost first; a frame is
`function (file:line)`, `function (library.so)` or, for a native frame without a symbol,
`0xADDR (library.so)`. With `--subprocesses` the first frame names the process. Samples whose leaf
is a wait (epoll, a lock, a condition variable) are idle threads, not CPU: they are counted apart.

`aggregate` gives, per function, its own samples (the function was running) and its total samples
(on the stack from the handler or thread-pool job down; the server's own machinery is counted in
its group, not there), and the same per route group: the handler frame that FastAPI's
`run_endpoint_function` called, else the function a thread-pool worker ran, else "other".
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

# Leaf functions of a thread that waits rather than runs.
IDLE_FUNCTIONS = frozenset(
    {
        "epoll_wait",
        "epoll_pwait",
        "select",
        "poll",
        "pthread_cond_wait",
        "pthread_cond_timedwait",
        "sem_wait",
        "sem_timedwait",
        "sem_clockwait",
        "PyThread_acquire_lock_timed",
        "lock_PyThread_acquire_lock",
        "nanosleep",
        "clock_nanosleep",
        "accept",
        "accept4",
        "take_gil",
        "futex_wait",
        "do_futex_wait",
    }
)
IDLE_DEPTH = 4  # a wait function this close to the leaf makes the sample idle
HANDLER_CALLERS = ("run_endpoint_function",)
THREAD_RUNNERS = ("WorkerThread.run", "_worker")
OTHER = "other (no handler frame)"
_FRAME = re.compile(r"^(?P<name>.*?) \((?P<where>[^()]*)\)$")
_RUST_HASH = re.compile(r"::h[0-9a-f]{16}$")
_ADDRESS = re.compile(r"^0x[0-9a-f]+$")


@dataclass(frozen=True)
class Frame:
    """One stack frame: function name and the file or library it is in (line dropped)."""

    name: str
    where: str

    @property
    def anonymous(self) -> bool:
        """A native frame with no symbol: only its library is known."""
        return bool(_ADDRESS.match(self.name))

    @property
    def label(self) -> str:
        """How the frame is printed: `function (file)`, or `native code (library)`."""
        name = "native code" if self.anonymous else self.name
        return f"{name} ({self.where})" if self.where else name


def _demangle(name: str) -> str:
    name = _RUST_HASH.sub("", name)
    return name.replace("$LT$", "<").replace("$GT$", ">").replace("$u20$", " ")


def parse_frame(text: str) -> Frame:
    """A frame from its recorded text; the line number is dropped, Rust symbols tidied."""
    match = _FRAME.match(text.strip())
    if not match:
        return Frame(_demangle(text.strip()), "")
    where = match["where"]
    file, _, line = where.rpartition(":")
    if file and line.isdigit():
        where = file
    return Frame(_demangle(match["name"]), where)


@dataclass(frozen=True)
class Stack:
    """One distinct stack and how many samples saw it."""

    frames: tuple[Frame, ...]
    count: int


def parse_raw(text: str) -> list[Stack]:
    """Every stack of a raw recording; malformed lines are skipped."""
    stacks = []
    for line in text.splitlines():
        body, _, count = line.rstrip().rpartition(" ")
        if not body or not count.isdigit():
            continue
        names = [part for part in body.split(";") if not part.startswith("process ")]
        stacks.append(Stack(tuple(parse_frame(part) for part in names), int(count)))
    return stacks


def is_idle(frames: Sequence[Frame]) -> bool:
    """True when the thread was waiting: a wait function near the leaf."""
    return any(frame.name in IDLE_FUNCTIONS for frame in frames[-IDLE_DEPTH:])


def _runtime(frame: Frame) -> bool:
    """A frame of the C runtime (libc, libpython, an inlined header): not where the work is."""
    return frame.where.startswith(("libc", "libpython", "ld-linux")) or frame.where.endswith(".h")


def own_frame(frames: Sequence[Frame]) -> Frame | None:
    """The frame that was running: the leaf, passing over the C runtime's frames."""
    for frame in reversed(frames):
        if not _runtime(frame):
            return frame
    return frames[-1] if frames else None


def work_start(frames: Sequence[Frame]) -> tuple[str, int]:
    """The stack's route group and the index of its first work frame (the handler or job)."""
    for names, kind in ((HANDLER_CALLERS, "handler"), (THREAD_RUNNERS, "thread pool:")):
        for index, frame in enumerate(frames):
            if frame.name in names:
                callee = _first_python(frames, index + 1)
                if callee is not None:
                    return f"{kind} {frames[callee].label}", callee
    return OTHER, len(frames)


def _first_python(frames: Sequence[Frame], start: int) -> int | None:
    """The index of the first Python frame from ``start`` (native frames can sit between)."""
    return next((i for i in range(start, len(frames)) if frames[i].where.endswith(".py")), None)


@dataclass
class Profile:
    """Sample counts by function (own, total) and by route group, busy samples only."""

    samples: int = 0
    idle_samples: int = 0
    own: Counter = field(default_factory=Counter)
    total: Counter = field(default_factory=Counter)
    groups: dict[str, Profile] = field(default_factory=dict)

    def add(self, frames: Sequence[Frame], count: int, start: int = 0) -> None:
        """Count one stack's samples; totals count the frames from ``start`` (the work) on."""
        self.samples += count
        leaf = own_frame(frames)
        if leaf is not None:
            self.own[leaf.label] += count
        for label in {f.label for f in frames[start:] if not _runtime(f)}:
            self.total[label] += count

    def top(self, kind: str, n: int) -> list[tuple[str, int, float]]:
        """The ``n`` largest functions by ``own`` or ``total``: (function, samples, share %)."""
        counts = self.own if kind == "own" else self.total
        return [(name, c, _share(c, self.samples)) for name, c in counts.most_common(n)]


def _share(count: int, whole: int) -> float:
    return round(100.0 * count / whole, 1) if whole else 0.0


def aggregate(stacks: Iterable[Stack]) -> Profile:
    """The profile of a recording: idle samples counted apart, the rest by function and group."""
    profile = Profile()
    for stack in stacks:
        if is_idle(stack.frames):
            profile.idle_samples += stack.count
            continue
        name, start = work_start(stack.frames)
        profile.add(stack.frames, stack.count, start)
        group_start = 0 if name == OTHER else start
        profile.groups.setdefault(name, Profile()).add(stack.frames, stack.count, group_start)
    return profile


def summary(profile: Profile, n: int = 10) -> dict:
    """The JSON-ready figures: totals, top functions (own, total), and the groups by size."""
    groups = sorted(profile.groups.items(), key=lambda item: -item[1].samples)
    return {
        "samples": profile.samples,
        "idle_samples": profile.idle_samples,
        "top_own": [list(row) for row in profile.top("own", n)],
        "top_total": [list(row) for row in profile.top("total", n)],
        "groups": [
            {
                "group": name,
                "samples": group.samples,
                "share_percent": _share(group.samples, profile.samples),
                "top_own": [list(row) for row in group.top("own", 5)],
                "top_total": [list(row) for row in group.top("total", 5)],
            }
            for name, group in groups
        ],
    }
