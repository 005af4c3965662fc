"""The node agent's etcd members, as kubeadm runs them: TLS on the client and peer ports with
certificates from the cluster's etcd CA, client certificates required; a joining member goes
in as a learner and is promoted once in sync. Real etcd members on loopback addresses, driven
through the functions the node agent uses."""

from __future__ import annotations

import random
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.bootstrap.kubeadm.certs import KeyPair, generate_ca
from shipyard.node import etcdmember, services
from shipyard.node.kubeadm import find_etcd

# The node agent starts its services detached and tracks them by pid file, dropping the Popen
# while the service runs on; here that happens inside the test process.
pytestmark = pytest.mark.filterwarnings(
    r"ignore:subprocess \d+ is still running:ResourceWarning")


@pytest.fixture(scope="module")
def etcd_ca() -> KeyPair:
    return generate_ca("etcd-ca")


@pytest.fixture
def roots(tmp_path: Path) -> Iterator[list[Path]]:
    made = [tmp_path / "a", tmp_path / "b"]
    yield made
    for root in made:
        services.stop(root, "etcd")


def network() -> str:
    return f"127.{random.randint(100, 250)}.{random.randint(0, 255)}"


def test_a_joining_member_is_a_learner_until_promoted(roots: list[Path],
                                                      etcd_ca: KeyPair) -> None:
    net = network()
    first, second = f"{net}.1", f"{net}.2"
    binary = find_etcd()
    pki_a = etcdmember.issue_certificates(roots[0], etcd_ca, "a", first, "a")
    pki_b = etcdmember.issue_certificates(roots[1], etcd_ca, "b", second, "b")
    tls = pki_b.context()  # any client certificate from the etcd CA will do
    first_url = etcdmember.start(roots[0], binary, "a", first, pki_a,
                                 {"a": etcdmember.peer_url(first)}, "new")
    assert first_url == f"https://{first}:2379"

    peer = etcdmember.peer_url(second)
    members, member_id = etcdmember.member_add([first_url], peer, tls)
    added = {m["ID"]: m for m in members}[member_id]
    assert added["peerURLs"] == [peer] and added.get("isLearner") is True
    # The one-member cluster kept its quorum: it still answers before the learner runs.
    assert etcdmember.healthy(first_url, tls)
    assert etcdmember.member_add([first_url], peer, tls) == (members, member_id)  # a retry

    second_url = etcdmember.start(roots[1], binary, "b", second, pki_b,
                                  {"a": etcdmember.peer_url(first), "b": peer}, "existing")
    etcdmember.promote([first_url], member_id, tls)
    voting = etcdmember.member_list(second_url, tls)
    assert sorted(m["name"] for m in voting) == ["a", "b"]
    assert not any(m.get("isLearner") for m in voting)
    etcdmember.promote([first_url], member_id, tls)  # promoting a voting member again is done


def test_only_clients_with_a_certificate_from_the_etcd_ca_get_in(
    roots: list[Path], etcd_ca: KeyPair
) -> None:
    address = f"{network()}.1"
    pki = etcdmember.issue_certificates(roots[0], etcd_ca, "a", address, "a")
    url = etcdmember.start(roots[0], find_etcd(), "a", address, pki,
                           {"a": etcdmember.peer_url(address)}, "new")
    assert (roots[0] / "etc/kubernetes/pki/apiserver-etcd-client.crt").exists()
    assert oct((roots[0] / "etc/kubernetes/pki/etcd/server.key").stat().st_mode)[-3:] == "600"

    anonymous = ssl.create_default_context(cafile=str(pki.ca))  # trusts etcd, no certificate
    with pytest.raises((urllib.error.URLError, ssl.SSLError, ConnectionError)):
        urllib.request.urlopen(url + "/v3/cluster/member/list", data=b"{}", timeout=5,
                               context=anonymous).read()
    other = etcdmember.issue_certificates(roots[1], generate_ca("other"), "x", address, "x")
    stranger = ssl.create_default_context(cafile=str(pki.ca))  # trusts etcd, wrong CA's cert
    stranger.load_cert_chain(str(other.healthcheck.cert), str(other.healthcheck.key))
    assert not etcdmember.healthy(url, stranger)
    assert etcdmember.healthy(url, pki.context())

    with pytest.raises(etcdmember.EtcdError, match="member not found"):
        etcdmember.promote([url], "1234", pki.context(), timeout=0.5)
