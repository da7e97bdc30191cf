"""Adding an entry to a registry for the length of a block: how a kind, or a room's table by kind name, takes
in one defined outside its package (a test's kind, a plug-in's)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

Entry = TypeVar("Entry")


@contextmanager
def registered_while(entries: list[Entry], entry: Entry, name_of: Callable[[Entry], str],
                     refusal: str) -> Iterator[Entry]:
    """Append ``entry`` to ``entries`` while the block runs, and remove it after, however the block ends.
    Raises ValueError with ``refusal`` (formatted with the name) when an entry of the same name is there."""
    name = name_of(entry)
    if any(name_of(known) == name for known in entries):
        raise ValueError(refusal.format(name=name))
    entries.append(entry)
    try:
        yield entry
    finally:
        entries.remove(entry)
