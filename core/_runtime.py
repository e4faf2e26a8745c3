"""Small process-level helpers shared by the hot paths of the core."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for a burst of short-lived, acyclic allocations.

    Each burst otherwise triggers collections that re-traverse the caller's large live data (a
    syntax tree, a parsed JSON input). The previous state is restored, also on error.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
