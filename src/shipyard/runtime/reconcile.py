"""The reconcile contract, as controller-runtime's `pkg/reconcile`.

Reconciliation is level-based: a `Request` names an object, never the event that woke the
controller, so a reconciler reads the current state (from the cache) and drives the world towards
it. Its outcome is one of:

- return `Result()`: done; the item's backoff is forgotten;
- return `Result(requeue_after=s)`: run again in `s` seconds (backoff forgotten);
- raise any exception: retried with the per-item exponential backoff of the work queue;
- raise `TerminalError`: logged and counted, never retried until a new event arrives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Request:
    """The object to reconcile; `namespace` is "" for cluster-scoped objects."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


@dataclass(frozen=True, slots=True)
class Result:
    requeue_after: float | None = None
    requeue: bool = False
    """Rate-limited requeue without an error (deprecated upstream; prefer requeue_after)."""


class TerminalError(Exception):
    """An error retrying cannot fix (invalid spec, ...): not requeued."""


class Reconciler(Protocol):
    async def reconcile(self, req: Request) -> Result: ...
