"""Garbage-collector settings for a long-running API server process.

The server keeps every stored object in memory, so CPython's full (generation 2) collections
walk a heap that grows with the store: measured at 140-150 ms each with ~40,000 objects stored,
which is what pushed write p99 at 64 clients past 100 ms (benchmarks/README.md). The objects
that survive a full collection are the store, indexes and caches, which live as long as the
process; freezing them after each full collection (``gc.freeze``, as pre-fork servers do) moves
them out of every later collection, so a full collection costs ~1.5 ms. Cyclic garbage that is
alive at the moment of a freeze (in-flight requests) is never collected; reference counting
still frees everything acyclic, which is nearly everything here.

Process-wide, so only the `shipyard apiserver` command calls it, never a library import.
"""

from __future__ import annotations

import gc
from typing import Any

GEN0_THRESHOLD = 20_000  # fewer young collections; requests allocate in bursts


def _freeze_after_full_collection(phase: str, info: dict[str, Any]) -> None:
    if phase == "stop" and info.get("generation") == 2:
        gc.freeze()


def tune_for_server() -> None:
    """Call once, after start-up; idempotent."""
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)
    if _freeze_after_full_collection not in gc.callbacks:
        gc.callbacks.append(_freeze_after_full_collection)
    gc.collect()
