"""Leader election on a coordination.k8s.io/v1 Lease, with client-go's semantics.

Several replicas of a manager run; the one holding the Lease runs the controllers. A candidate
acquires the Lease when it does not exist, when it names no holder, or when the record has not
changed for `leaseDurationSeconds` of the candidate's *own* clock (time of observing the record,
not the holder's renewTime, so clock skew between replicas does not matter). The holder renews
every `retry_period`; if no renewal succeeded for `renew_deadline` it has lost the Lease and must
stop acting. Every write is an update carrying the resourceVersion that was read, so of two
candidates racing only one wins (the other gets Conflict). On a graceful stop the holder may
release the Lease (empty holderIdentity, 1 s duration) so a successor need not wait it out.

Defaults are controller-runtime's: lease 15 s, renew deadline 10 s, retry 2 s.
"""

from __future__ import annotations

import asyncio
import math
import random
import socket
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shipyard.apimachinery.errors import AlreadyExists, Conflict, NotFound
from shipyard.client.interfaces import ReaderWriter
from shipyard.runtime import logs
from shipyard.runtime.metrics import Metrics, default_metrics

log = logs.get_logger(__name__)

LEASE = ("coordination.k8s.io/v1", "Lease")


def default_identity() -> str:
    return f"{socket.gethostname()}_{uuid.uuid4()}"


def micro_time() -> str:
    """metav1.MicroTime's wire format."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class LeaderElectionConfig:
    name: str
    namespace: str
    identity: str = field(default_factory=default_identity)
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    release_on_cancel: bool = False

    def __post_init__(self) -> None:
        if not self.lease_duration > self.renew_deadline > self.retry_period > 0:
            raise ValueError("need lease_duration > renew_deadline > retry_period > 0")


class LeaderElector:
    def __init__(self, client: ReaderWriter, config: LeaderElectionConfig,
                 metrics: Metrics | None = None) -> None:
        self.client = client
        self.config = config
        self._gauge = (metrics or default_metrics()).leader.labels(name=config.name)
        self._observed: dict[str, Any] | None = None
        self._observed_at = 0.0
        self.is_leader = False

    async def acquire(self) -> None:
        """Return once we hold the Lease (retrying every jittered retry_period)."""
        log.info("attempting to acquire leader lease %s/%s", self.config.namespace,
                 self.config.name)
        while not await self._try_acquire_or_renew():
            await asyncio.sleep(self.config.retry_period * (1 + random.random() * 0.2))
        self._set_leader(True)
        log.info("successfully acquired lease %s/%s as %s", self.config.namespace,
                 self.config.name, self.config.identity)

    async def hold(self) -> None:
        """Renew until a renewal has failed for renew_deadline; then return (leadership lost)."""
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await asyncio.sleep(self.config.retry_period)
            remaining = self.config.renew_deadline - (loop.time() - last)
            try:
                async with asyncio.timeout(max(remaining, 0.001)):
                    renewed = await self._try_acquire_or_renew()
            except Exception as e:  # noqa: BLE001 - a failed renewal is only a failed try
                log.warning("failed to renew lease: %s", e)
                renewed = False
            if renewed:
                last = loop.time()
            elif loop.time() - last >= self.config.renew_deadline:
                self._set_leader(False)
                log.error("leader election lost: %s/%s", self.config.namespace,
                          self.config.name)
                return

    async def release(self) -> None:
        """Give the Lease up if we hold it (best effort)."""
        if not self.is_leader:
            return
        self._set_leader(False)
        try:
            lease = await self.client.get(*LEASE, self.config.name, self.config.namespace)
            spec = lease.get("spec") or {}
            if spec.get("holderIdentity") != self.config.identity:
                return
            now = micro_time()
            lease["spec"] = {"holderIdentity": "", "leaseDurationSeconds": 1,
                             "acquireTime": now, "renewTime": now,
                             "leaseTransitions": spec.get("leaseTransitions", 0)}
            await self.client.update(lease)
            log.info("released lease %s/%s", self.config.namespace, self.config.name)
        except Exception as e:  # noqa: BLE001 - the lease then simply expires
            log.warning("failed to release lease: %s", e)

    def _set_leader(self, leading: bool) -> None:
        self.is_leader = leading
        self._gauge.set(1 if leading else 0)

    def _spec(self, acquire_time: str, transitions: int) -> dict[str, Any]:
        return {"holderIdentity": self.config.identity,
                "leaseDurationSeconds": math.ceil(self.config.lease_duration),
                "acquireTime": acquire_time, "renewTime": micro_time(),
                "leaseTransitions": transitions}

    async def _try_acquire_or_renew(self) -> bool:
        loop = asyncio.get_running_loop()
        cfg = self.config
        try:
            lease = await self.client.get(*LEASE, cfg.name, cfg.namespace)
        except NotFound:
            spec = self._spec(micro_time(), 0)
            try:
                await self.client.create({
                    "apiVersion": LEASE[0], "kind": LEASE[1],
                    "metadata": {"name": cfg.name, "namespace": cfg.namespace}, "spec": spec})
            except (AlreadyExists, Conflict):
                return False
            self._observed, self._observed_at = spec, loop.time()
            return True
        spec = dict(lease.get("spec") or {})
        if spec != self._observed:
            self._observed, self._observed_at = spec, loop.time()
        holder = spec.get("holderIdentity") or ""
        duration = float(spec.get("leaseDurationSeconds") or cfg.lease_duration)
        if holder and holder != cfg.identity and self._observed_at + duration > loop.time():
            return False
        if holder == cfg.identity:
            new = self._spec(spec.get("acquireTime") or micro_time(),
                             int(spec.get("leaseTransitions") or 0))
        else:
            new = self._spec(micro_time(), int(spec.get("leaseTransitions") or 0) + 1)
        lease["spec"] = new
        try:
            await self.client.update(lease)
        except (Conflict, NotFound):
            return False
        self._observed, self._observed_at = new, loop.time()
        return True
