"""A daemon thread that calls ``sample()`` every ``sample_s`` seconds until stopped (the host monitor and
the lab's process watch are both one)."""

from __future__ import annotations

import threading
from typing import Self

__all__ = ["Sampler"]


class Sampler:
    sample_s: float
    thread_name = "sampler"

    def __init__(self, sample_s: float):
        self.sample_s = sample_s
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> None:
        raise NotImplementedError

    def start(self) -> Self:
        self.sample()
        self._thread = threading.Thread(target=self._loop, name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(1.0)

    def _loop(self) -> None:
        while not self._stop.wait(self.sample_s):
            self.sample()
