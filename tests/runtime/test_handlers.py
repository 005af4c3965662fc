"""EnqueueHandler: mapping events to requests, and update predicates that drop updates."""

from __future__ import annotations

from shipyard.client import Object
from shipyard.runtime import Request
from shipyard.runtime.handlers import EnqueueHandler


class Sink:
    def __init__(self) -> None:
        self.items: list[Request] = []

    def add(self, item: Request) -> None:
        self.items.append(item)


def obj(name: str, phase: str) -> Object:
    return {"metadata": {"name": name, "namespace": "ns"}, "status": {"phase": phase}}


def test_update_predicate_drops_irrelevant_updates_only() -> None:
    sink = Sink()
    handler = EnqueueHandler(sink, update_predicate=lambda old, new: (
        old["status"]["phase"] != new["status"]["phase"]))
    handler.on_update(obj("a", "Pending"), obj("a", "Pending"))
    assert sink.items == []
    handler.on_update(obj("a", "Pending"), obj("a", "Running"))
    assert sink.items == [Request("ns", "a")]
    handler.on_add(obj("b", "Pending"))
    handler.on_delete(obj("c", "Pending"))
    assert sink.items == [Request("ns", "a"), Request("ns", "b"), Request("ns", "c")]


def test_without_update_predicate_every_update_enqueues_old_and_new() -> None:
    sink = Sink()
    handler = EnqueueHandler(sink)
    handler.on_update(obj("a", "Pending"), obj("a", "Pending"))
    assert sink.items == [Request("ns", "a")]


async def test_delayed_watch_coalesces_a_burst_into_one_request() -> None:
    from shipyard.runtime.controller import _Delayed
    from shipyard.runtime.queueing import WorkQueue

    queue: WorkQueue[Request] = WorkQueue("delayed-test")
    handler = EnqueueHandler(_Delayed(queue, 0.05))
    for phase in ("Pending", "Provisioning", "Running"):
        handler.on_add(obj("a", phase))
    assert len(queue) == 0  # nothing before the delay
    assert await queue.get() == Request("ns", "a")
    queue.done(Request("ns", "a"))
    assert len(queue) == 0  # the three events became one request
