"""Giving freed C-heap memory back to the operating system (glibc's malloc_trim), as a long live run does."""

from __future__ import annotations

from pathlib import Path

import pytest
from waiting import wait_for

from twin.heap import HeapTrimmer, malloc_trim

BLOCK_BYTES = 4096
"""Below glibc's mmap threshold (128 KiB): blocks come from the heap, not from mappings of their own."""
BLOCKS = 25_000
"""About 100 MB of heap."""


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise AssertionError("no VmRSS")


def fragmented_heap() -> list[bytes]:
    """About 100 MB of 4 KiB blocks freed except every 50th: the heap cannot shrink from its top, so
    without a trim the freed 98 MB stay resident. Returns the blocks kept (they must stay alive)."""
    blocks = [bytes(BLOCK_BYTES) for _ in range(BLOCKS)]
    kept = blocks[::50]
    del blocks
    return kept


@pytest.fixture
def glibc():
    if malloc_trim() is None:
        pytest.skip("no malloc_trim: not glibc")


def test_a_trim_gives_freed_heap_memory_back(glibc):
    kept = fragmented_heap()
    before = rss_mb()
    malloc_trim()()
    assert before - rss_mb() >= 50.0  # of the 98 MB freed
    assert len(kept) == BLOCKS // 50


def test_the_trimmer_gives_it_back_by_itself(glibc):
    base = rss_mb()
    trimmer = HeapTrimmer(every_s=0.05)
    trimmer.start()
    try:
        kept = fragmented_heap()  # 100 MB resident until a trim
        wait_for(lambda: rss_mb() <= base + 50.0, 60, "the freed heap given back")
    finally:
        trimmer.stop()
    assert len(kept) == BLOCKS // 50


def test_a_trimmer_needs_a_positive_period():
    with pytest.raises(ValueError, match="every_s must be positive"):
        HeapTrimmer(every_s=0)
