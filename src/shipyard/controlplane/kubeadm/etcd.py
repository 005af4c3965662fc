"""Stacked etcd membership, as the control-plane provider needs it: list members, find the
leader, move leadership, remove a member, and the quorum arithmetic that says when removing one
is safe.

Why a seam (`EtcdMembership`): upstream's KCP reaches each control-plane machine's etcd through
the workload cluster (a port-forward to the etcd static Pod) with a client certificate from the
etcd CA. Shipyard's machines run etcd themselves (the node agent), so the controller talks to
etcd's v3 JSON gateway directly; tests of the controller with the in-memory provider, whose
machines run no etcd, use `FakeEtcdMembership` instead. Both implement the same protocol, and
`GatewayEtcdMembership` is checked against a real three-member etcd.

Contract with the node agent / infrastructure provider (what a machine must offer):
- each control-plane machine runs one etcd member named after the machine's Node name (kubeadm
  names members after the node, `--name=<node name>`), joined when the machine joins;
- its client URL is `<scheme>://<address>:<port>` where `<address>` is the first `InternalIP`
  of the Machine's `status.addresses` (copied by the Machine controller from the
  infrastructure machine's `status.addresses`), `<port>` is 2379 and `<scheme>` `https` unless
  the controller is configured otherwise (`EtcdEndpoints`); the controller trusts the cluster's
  etcd CA and presents a client certificate it signs (`EtcdClientCertificates`). The annotation
  `controlplane.cluster.x-k8s.io/etcd-client-url` on the Machine overrides all of this (a
  provider whose machines share one address uses it to give each its own port).

The JSON gateway speaks protobuf's JSON mapping: uint64 IDs are decimal strings, zero-valued
fields are omitted (a member's `isLearner: false`, an empty `clientURLs`).
"""

from __future__ import annotations

import ssl
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, Protocol, TypedDict

import aiohttp
import orjson

from shipyard.apimachinery.errors import NotFound
from shipyard.bootstrap.kubeadm import certs
from shipyard.client.interfaces import Object, Reader

ETCD_CLIENT_URL_ANNOTATION: Final = "controlplane.cluster.x-k8s.io/etcd-client-url"
DEFAULT_CLIENT_PORT: Final = 2379


class EtcdMember(TypedDict):
    id: str
    name: str
    client_urls: list[str]
    is_learner: bool


@dataclass(frozen=True)
class EtcdTarget:
    """One workload cluster's etcd: which cluster, and each member's client URL by machine
    (Node) name, for the machines that exist now."""
    namespace: str
    cluster: str
    endpoints: dict[str, str] = field(default_factory=dict)


class EtcdUnavailable(Exception):
    """No endpoint answered, or etcd refused the request."""


class EtcdMembership(Protocol):
    async def members(self, target: EtcdTarget) -> list[EtcdMember]: ...

    async def leader(self, target: EtcdTarget) -> str | None:
        """The leader's member ID, or None if there is none (no quorum)."""
        ...

    async def move_leader(self, target: EtcdTarget, to_member: str) -> None: ...

    async def remove_member(self, target: EtcdTarget, member: str) -> None: ...


@dataclass(frozen=True)
class EtcdEndpoints:
    scheme: str = "https"
    port: int = DEFAULT_CLIENT_PORT

    def client_url(self, machine: Object) -> str | None:
        annotations = (machine.get("metadata") or {}).get("annotations") or {}
        if annotations.get(ETCD_CLIENT_URL_ANNOTATION):
            return str(annotations[ETCD_CLIENT_URL_ANNOTATION])
        for address in (machine.get("status") or {}).get("addresses") or []:
            if address.get("type") == "InternalIP" and address.get("address"):
                return f"{self.scheme}://{address['address']}:{self.port}"
        return None


def quorum(members: int) -> int:
    return members // 2 + 1


def can_remove(members: list[str], healthy: set[str], removing: str) -> bool:
    """Whether the cluster keeps quorum after `removing` leaves: the members left must have a
    healthy majority of their own (upstream's `targetEtcdClusterHealthy`)."""
    remaining = [m for m in members if m != removing]
    if not remaining:
        return False
    return sum(1 for m in remaining if m in healthy) >= quorum(len(remaining))


def _member(raw: dict[str, Any]) -> EtcdMember:
    return {"id": str(raw.get("ID", "0")), "name": str(raw.get("name", "")),
            "client_urls": [str(u) for u in raw.get("clientURLs") or []],
            "is_learner": bool(raw.get("isLearner", False))}


SSLFactory = Callable[[EtcdTarget], Awaitable[ssl.SSLContext | None]]

CLIENT_COMMON_NAME: Final = "cluster-api.x-k8s.io"
CLIENT_CERT_VALIDITY: Final = timedelta(days=7)
SECRET_RECHECK: Final = 60.0


class EtcdClientCertificates:
    """`SSLFactory` for machines that run etcd as kubeadm does (TLS, client certificates from
    the cluster's etcd CA): trust the CA in the cluster's ``<cluster>-etcd`` Secret and present
    a client certificate signed by it, as upstream's KCP generates one for its etcd client.
    The context is kept per cluster, re-read once a minute, renewed when the CA changes or the
    certificate is past half its life; no Secret means no context (plain ``http`` members)."""

    def __init__(self, client: Reader) -> None:
        self.client = client
        self._cache: dict[tuple[str, str], tuple[float, bytes, datetime, ssl.SSLContext]] = {}

    async def __call__(self, target: EtcdTarget) -> ssl.SSLContext | None:
        key = (target.namespace, target.cluster)
        cached = self._cache.get(key)
        now = time.monotonic()
        if cached is not None and now - cached[0] < SECRET_RECHECK:
            return cached[3]
        try:
            secret = await self.client.get("v1", "Secret", f"{target.cluster}-etcd",
                                           target.namespace)
        except NotFound:
            self._cache.pop(key, None)
            return None
        ca = certs.keypair_from_secret(secret)
        if cached is not None and cached[1] == ca.cert and datetime.now(UTC) < cached[2]:
            self._cache[key] = (now, *cached[1:])
            return cached[3]
        leaf = certs.issue(ca, CLIENT_COMMON_NAME, client=True, validity=CLIENT_CERT_VALIDITY)
        context = ssl.create_default_context(cadata=ca.cert.decode())
        with tempfile.TemporaryDirectory() as scratch:  # load_cert_chain reads files only
            cert_file, key_file = Path(scratch, "tls.crt"), Path(scratch, "tls.key")
            cert_file.write_bytes(leaf.cert)
            key_file.write_bytes(leaf.key)
            key_file.chmod(0o600)
            context.load_cert_chain(str(cert_file), str(key_file))
        renew = datetime.now(UTC) + CLIENT_CERT_VALIDITY / 2
        self._cache[key] = (now, ca.cert, renew, context)
        return context


class GatewayEtcdMembership:
    """`EtcdMembership` over etcd's JSON gateway. Read requests go to the first endpoint that
    answers; leadership moves are sent to the leader, as etcd requires."""

    def __init__(self, ssl_context: SSLFactory | None = None, timeout: float = 5.0) -> None:
        self.ssl_context = ssl_context
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        return self._session

    async def _post(self, target: EtcdTarget, path: str, body: dict[str, Any],
                    urls: list[str] | None = None) -> dict[str, Any]:
        context = await self.ssl_context(target) if self.ssl_context else None
        errors: list[str] = []
        for url in urls if urls is not None else list(target.endpoints.values()):
            try:
                async with self._http().post(url.rstrip("/") + path, data=orjson.dumps(body),
                                             ssl=context if context else False) as resp:
                    payload = await resp.read()
                    if resp.status >= 400:
                        raise EtcdUnavailable(f"{url}{path}: {resp.status} {payload[:200]!r}")
                    out: dict[str, Any] = orjson.loads(payload) if payload else {}
                    return out
            except (aiohttp.ClientError, TimeoutError, OSError) as e:
                errors.append(f"{url}: {e}")
        raise EtcdUnavailable("no etcd endpoint answered: " + "; ".join(errors or ["none"]))

    async def members(self, target: EtcdTarget) -> list[EtcdMember]:
        out = await self._post(target, "/v3/cluster/member/list", {})
        return [_member(m) for m in out.get("members") or []]

    async def _status(self, target: EtcdTarget, url: str) -> dict[str, Any]:
        return await self._post(target, "/v3/maintenance/status", {}, [url])

    async def leader(self, target: EtcdTarget) -> str | None:
        out = await self._post(target, "/v3/maintenance/status", {})
        leader = str(out.get("leader") or "0")
        return None if leader == "0" else leader

    async def move_leader(self, target: EtcdTarget, to_member: str) -> None:
        leader = await self.leader(target)
        if leader is None or leader == to_member:
            return
        urls = [u for m in await self.members(target) if m["id"] == leader
                for u in m["client_urls"]]
        await self._post(target, "/v3/maintenance/transfer-leadership",
                         {"targetID": to_member}, urls or None)

    async def remove_member(self, target: EtcdTarget, member: str) -> None:
        # Through the members that stay: the member being removed stops its server as the
        # removal commits, and may answer "server stopped" for a removal that went through.
        urls = [u for m in await self.members(target) if m["id"] != member
                for u in m["client_urls"]]
        await self._post(target, "/v3/cluster/member/remove", {"ID": member}, urls or None)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


class FakeEtcdMembership:
    """An in-process stand-in for machines that run no etcd (the in-memory provider): every
    machine named in a target's `endpoints` is a member once seen (as `kubeadm join` would add
    it), unless it was removed; the first member leads until leadership moves. Records every
    removal and leadership move, in order, in `log`."""

    def __init__(self) -> None:
        self._members: dict[tuple[str, str], dict[str, str]] = {}
        self._removed: set[tuple[str, str, str]] = set()
        self._leader: dict[tuple[str, str], str] = {}
        self._next = 1
        self.log: list[tuple[str, str]] = []

    def _sync(self, target: EtcdTarget) -> dict[str, str]:
        key = (target.namespace, target.cluster)
        members = self._members.setdefault(key, {})
        for name in target.endpoints:
            if name not in members and (*key, name) not in self._removed:
                members[name] = str(self._next)
                self._next += 1
        if members and self._leader.get(key) not in members.values():
            self._leader[key] = next(iter(members.values()))
        return members

    def add_member(self, target: EtcdTarget, name: str) -> str:
        """A member no machine knows of (test set-up: a machine lost without cleanup)."""
        members = self._sync(target)
        members[name] = str(self._next)
        self._next += 1
        return members[name]

    async def members(self, target: EtcdTarget) -> list[EtcdMember]:
        return [{"id": i, "name": n, "client_urls": [target.endpoints.get(n, "")],
                 "is_learner": False} for n, i in self._sync(target).items()]

    async def leader(self, target: EtcdTarget) -> str | None:
        self._sync(target)
        return self._leader.get((target.namespace, target.cluster))

    async def move_leader(self, target: EtcdTarget, to_member: str) -> None:
        members = self._sync(target)
        if to_member not in members.values():
            raise EtcdUnavailable(f"no member {to_member}")
        self._leader[(target.namespace, target.cluster)] = to_member
        self.log.append(("move-leader", to_member))

    async def remove_member(self, target: EtcdTarget, member: str) -> None:
        key = (target.namespace, target.cluster)
        members = self._sync(target)
        for name, i in list(members.items()):
            if i == member:
                del members[name]
                self._removed.add((*key, name))
                self.log.append(("remove", name))
                return
        raise EtcdUnavailable(f"no member {member}")
