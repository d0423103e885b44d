"""Giving freed memory back to the system.

numpy's arrays of a few megabytes come from the C library's heap (glibc raises the size it
maps apart to the largest array freed so far, up to 32 MB), and a heap keeps what is
freed for its next allocations: in the thread that freed it (each thread has its own
arena), and only at the top of the heap for the system to see. A render's notes and
temporaries, freed in its thread, would stay resident while another thread finishes the
track. ``trim`` hands every arena's free pages back.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable

__all__ = ["trim"]


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:  # the process's own symbols: the C library it runs on (no search, no subprocess)
        return ctypes.CDLL(None).malloc_trim  # type: ignore[no-any-return]
    except (OSError, AttributeError, TypeError):  # not glibc (musl, macOS, Windows)
        return None


def trim() -> None:
    """Return the free memory of every heap arena to the system (glibc; elsewhere nothing).

    A few milliseconds: call it after freeing much (a track finished, a cache dropped).
    """
    fn = _malloc_trim()
    if fn is not None:
        fn(0)
