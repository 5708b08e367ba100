"""The monitors' background thread: a sample every ``interval_s``, bounded in count.

A monitor left running stops after ``MAX_SAMPLES`` samples; the list it keeps is bounded by
``KEEP_SAMPLES`` (`loadkit.watch.thinning` merges adjacent pairs at that count).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

MAX_SAMPLES = 100_000  # bounds a monitor left running: 27 hours at 1 s
KEEP_SAMPLES = 3600  # samples held (an hour at 1 s); then pairs merge


class Sampler:
    """A daemon thread calling ``sample`` every ``interval_s`` until stopped (bounded)."""

    def __init__(self, interval_s: float, sample: Callable[[], None], name: str) -> None:
        self.interval_s = interval_s
        self._sample = sample
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        for _ in range(MAX_SAMPLES):
            if self._stop.wait(self.interval_s):
                return
            self._sample()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=max(5.0, 2 * self.interval_s))
