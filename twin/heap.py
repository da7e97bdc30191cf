"""Giving the C heap's free memory back to the operating system during a long run.

A live run makes many short-lived large allocations (the fault detector's frames, forecasts, the
optimizer's matrices and solver, pandas temporaries). The C library's allocator keeps what they free
in its heaps, and a fragmented heap is not shrunk on its own: the run's resident memory ratchets up
towards the largest it ever needed although nothing the run holds grows (tracemalloc over a live run:
Python's own allocations flat from day to day; glibc's ``malloc_trim(0)`` gives the surplus back).
:class:`HeapTrimmer` calls it now and then. On a C library without it (macOS, musl) it does nothing.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

DEFAULT_TRIM_EVERY_S = 30.0
"""Wall-clock seconds between trims: during a trim, which walks the whole heap,
the process's other threads wait for the allocator."""


def malloc_trim() -> Callable[[], bool] | None:
    """glibc's ``malloc_trim(0)`` as a function returning whether memory was given back; None without glibc."""
    try:
        trim = ctypes.CDLL(None).malloc_trim  # the C library the process runs on
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return lambda: bool(trim(0))


class HeapTrimmer:
    """Gives the C heap's free pages back to the operating system every ``every_s`` wall-clock seconds, on a
    thread of its own, from :meth:`start` until :meth:`stop` (both do nothing without glibc)."""

    def __init__(self, every_s: float = DEFAULT_TRIM_EVERY_S):
        if every_s <= 0:
            raise ValueError(f"every_s must be positive, got {every_s}")
        self.every_s = every_s
        self.trim = malloc_trim()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.trim is None:
            log.info("no malloc_trim in this C library: freed heap memory stays with the process")
            return
        self._thread = threading.Thread(target=self._run, args=(self.trim,), name="heap-trimmer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self, trim: Callable[[], bool]) -> None:
        while not self._stop.wait(self.every_s):
            trim()
