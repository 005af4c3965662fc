"""`GatewayEtcdMembership` against a real three-member etcd on loopback: members listed by name,
leadership moved off a member, the member removed while the others keep serving; and the quorum
arithmetic the controller relies on. `FakeEtcdMembership` is held to the same observable
behaviour for the steps the controller uses."""

from __future__ import annotations

import asyncio
import random
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from shipyard.apimachinery.errors import NotFound
from shipyard.bootstrap.kubeadm import certs
from shipyard.controlplane.kubeadm.etcd import (
    EtcdClientCertificates,
    EtcdEndpoints,
    EtcdMembership,
    EtcdTarget,
    EtcdUnavailable,
    FakeEtcdMembership,
    GatewayEtcdMembership,
    can_remove,
    quorum,
)
from shipyard.node import etcdmember, services
from shipyard.storage.etcd_process import EtcdNotFoundError, find_etcd, free_ports

NAMES = ("cp-a", "cp-b", "cp-c")


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=1) as resp:
            return b'"true"' in resp.read()
    except OSError:
        return False


@pytest.fixture(scope="module")
def etcd_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    try:
        binary = find_etcd()
    except EtcdNotFoundError as e:
        pytest.skip(str(e))
    root: Path = tmp_path_factory.mktemp("etcd3")
    ports = free_ports(6)
    clients = {n: f"http://127.0.0.1:{ports[i]}" for i, n in enumerate(NAMES)}
    peers = {n: f"http://127.0.0.1:{ports[3 + i]}" for i, n in enumerate(NAMES)}
    initial = ",".join(f"{n}={u}" for n, u in peers.items())
    processes = []
    try:
        for n in NAMES:
            with (root / f"{n}.log").open("wb") as log:
                processes.append(subprocess.Popen(
                    [str(binary), f"--name={n}", f"--data-dir={root / n}",
                     f"--listen-client-urls={clients[n]}",
                     f"--advertise-client-urls={clients[n]}",
                     f"--listen-peer-urls={peers[n]}",
                     f"--initial-advertise-peer-urls={peers[n]}",
                     f"--initial-cluster={initial}", "--initial-cluster-state=new",
                     "--initial-cluster-token=kcp-test", "--log-level=warn"],
                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    start_new_session=True))
        deadline = time.monotonic() + 30
        while not all(_healthy(u) for u in clients.values()):
            assert time.monotonic() < deadline, "etcd cluster not healthy"
            time.sleep(0.1)
        yield clients
    finally:
        for p in processes:  # throw-away data: no graceful leader hand-over needed
            p.kill()
        for p in processes:
            p.wait(10)


async def test_gateway_moves_leadership_and_removes_a_member(
        etcd_cluster: dict[str, str]) -> None:
    etcd = GatewayEtcdMembership()
    target = EtcdTarget("ns", "c1", dict(etcd_cluster))
    try:
        members = await etcd.members(target)
        assert sorted(m["name"] for m in members) == sorted(NAMES)
        assert all(m["client_urls"] == [etcd_cluster[m["name"]]] for m in members)
        leader = await etcd.leader(target)
        by_id = {m["id"]: m["name"] for m in members}
        assert leader in by_id
        # Move leadership off the current leader, to another member.
        other = next(i for i in by_id if i != leader)
        await etcd.move_leader(target, other)
        assert await etcd.leader(target) == other
        # Remove the former leader (no longer leading); the other two keep quorum and serve.
        # etcd refuses a removal ("unhealthy cluster") until the remaining members have been
        # connected to the (new) leader for its health interval: callers retry, as KCP does.
        deadline = time.monotonic() + 20
        while True:
            try:
                await etcd.remove_member(target, str(leader))
                break
            except EtcdUnavailable as e:
                assert "unhealthy cluster" in str(e)
                assert time.monotonic() < deadline, e
                await asyncio.sleep(0.5)
        gone = by_id[str(leader)]
        left = {n: u for n, u in etcd_cluster.items() if n != gone}
        # etcd 3.4 answers member/list from the member's own applied state: the member that
        # answers may apply the committed removal a moment later than the leader did.
        deadline = time.monotonic() + 10
        while True:
            remaining = await etcd.members(EtcdTarget("ns", "c1", left))
            if sorted(m["name"] for m in remaining) == sorted(left):
                break
            assert time.monotonic() < deadline, remaining
            await asyncio.sleep(0.2)
        assert await etcd.leader(EtcdTarget("ns", "c1", left)) in {m["id"] for m in remaining}
    finally:
        await etcd.aclose()


async def test_gateway_reports_no_endpoint_answering() -> None:
    etcd = GatewayEtcdMembership(timeout=1)
    port = free_ports(1)[0]
    try:
        with pytest.raises(EtcdUnavailable, match="no etcd endpoint answered"):
            await etcd.members(EtcdTarget("ns", "c", {"m": f"http://127.0.0.1:{port}"}))
    finally:
        await etcd.aclose()


async def test_fake_follows_the_same_steps() -> None:
    etcd: EtcdMembership = FakeEtcdMembership()
    target = EtcdTarget("ns", "c1", {n: f"http://{n}:2379" for n in NAMES})
    members = await etcd.members(target)
    assert [m["name"] for m in members] == list(NAMES)
    leader = await etcd.leader(target)
    assert leader == members[0]["id"]
    await etcd.move_leader(target, members[1]["id"])
    assert await etcd.leader(target) == members[1]["id"]
    await etcd.remove_member(target, members[0]["id"])
    # A removed machine does not come back as a member even if still listed.
    assert [m["name"] for m in await etcd.members(target)] == list(NAMES[1:])


def test_quorum_arithmetic() -> None:
    assert [quorum(n) for n in (1, 2, 3, 4, 5)] == [1, 2, 2, 3, 3]
    three = ["a", "b", "c"]
    assert can_remove(three, {"a", "b", "c"}, "a")
    assert can_remove(three, {"b", "c"}, "a")  # removing the unhealthy one: 2 of 2 healthy
    assert not can_remove(three, {"a", "b"}, "a")  # b alone of b, c: no majority
    assert not can_remove(["a"], {"a"}, "a")
    assert can_remove(["a", "b"], {"b"}, "a")


def test_client_url_contract() -> None:
    endpoints = EtcdEndpoints()
    machine = {"metadata": {}, "status": {"addresses": [
        {"type": "Hostname", "address": "m"}, {"type": "InternalIP", "address": "127.0.0.7"}]}}
    assert endpoints.client_url(machine) == "https://127.0.0.7:2379"
    machine["metadata"]["annotations"] = {
        "controlplane.cluster.x-k8s.io/etcd-client-url": "http://127.0.0.1:32379"}
    assert endpoints.client_url(machine) == "http://127.0.0.1:32379"
    assert EtcdEndpoints().client_url({"metadata": {}, "status": {}}) is None


class SecretReader:
    """Just enough of a client for `EtcdClientCertificates`: the clusters' etcd CA Secrets."""

    def __init__(self, secrets: dict[tuple[str, str], dict[str, Any]]) -> None:
        self.secrets = secrets
        self.reads = 0

    async def get(self, api_version: str, kind: str, name: str,
                  namespace: str | None = None) -> dict[str, Any]:
        self.reads += 1
        found = self.secrets.get((namespace or "", name))
        if found is None:
            raise NotFound(f'secrets "{name}" not found')
        return found


@pytest.mark.filterwarnings(r"ignore:subprocess \d+ is still running:ResourceWarning")
async def test_kcp_reaches_tls_members_with_a_certificate_from_the_etcd_ca(
    tmp_path: Path,
) -> None:
    ca = certs.generate_ca("etcd-ca")
    address = f"127.{random.randint(100, 250)}.{random.randint(0, 255)}.1"
    pki = etcdmember.issue_certificates(tmp_path, ca, "m0", address, "m0")
    url = await asyncio.to_thread(etcdmember.start, tmp_path, find_etcd(), "m0", address, pki,
                                  {"m0": etcdmember.peer_url(address)}, "new")
    reader = SecretReader({("ns", "c1-etcd"): certs.secret_for("c1", "ns", certs.ETCD_CA, ca)})
    etcd = GatewayEtcdMembership(EtcdClientCertificates(cast(Any, reader)), timeout=5)
    try:
        members = await etcd.members(EtcdTarget("ns", "c1", {"m0": url}))
        assert [m["name"] for m in members] == ["m0"]
        assert await etcd.leader(EtcdTarget("ns", "c1", {"m0": url})) == members[0]["id"]
        assert reader.reads == 1  # the context is kept, not rebuilt per request
        # Without the cluster's etcd CA Secret there is no client certificate: refused.
        with pytest.raises(EtcdUnavailable):
            await etcd.members(EtcdTarget("ns", "other", {"m0": url}))
    finally:
        await etcd.aclose()
        services.stop(tmp_path, "etcd")
