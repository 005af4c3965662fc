"""A joining etcd member goes in as a learner and is promoted, as kubeadm's join does: real
etcd members on loopback addresses, driven through the functions the node agent uses."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.node import etcdmember, services
from shipyard.node.kubeadm import find_etcd

# The node agent starts its services detached and tracks them by pid file, dropping the Popen
# while the service runs on; here that happens inside the test process.
pytestmark = pytest.mark.filterwarnings(
    r"ignore:subprocess \d+ is still running:ResourceWarning")


@pytest.fixture
def roots(tmp_path: Path) -> Iterator[list[Path]]:
    made = [tmp_path / "a", tmp_path / "b"]
    yield made
    for root in made:
        services.stop(root, "etcd")


def test_a_joining_member_is_a_learner_until_promoted(roots: list[Path]) -> None:
    net = f"127.{random.randint(100, 250)}.{random.randint(0, 255)}"
    first, second = f"{net}.1", f"{net}.2"
    binary = find_etcd()
    first_url = etcdmember.start(roots[0], binary, "a", first,
                                 {"a": etcdmember.peer_url(first)}, "new")

    peer = etcdmember.peer_url(second)
    members, member_id = etcdmember.member_add([first_url], peer)
    added = {m["ID"]: m for m in members}[member_id]
    assert added["peerURLs"] == [peer] and added.get("isLearner") is True
    # The one-member cluster kept its quorum: it still takes writes before the learner runs.
    assert etcdmember.healthy(first_url)
    assert etcdmember.member_add([first_url], peer) == (members, member_id)  # a retried join

    second_url = etcdmember.start(roots[1], binary, "b", second,
                                  {"a": etcdmember.peer_url(first), "b": peer}, "existing")
    etcdmember.promote([first_url], member_id)
    voting = etcdmember.member_list(second_url)
    assert sorted(m["name"] for m in voting) == ["a", "b"]
    assert not any(m.get("isLearner") for m in voting)
    etcdmember.promote([first_url], member_id)  # promoting a voting member again is done


def test_promotion_gives_up_with_etcds_reason(roots: list[Path]) -> None:
    net = f"127.{random.randint(100, 250)}.{random.randint(0, 255)}"
    url = etcdmember.start(roots[0], find_etcd(), "a", f"{net}.1",
                           {"a": etcdmember.peer_url(f"{net}.1")}, "new")
    with pytest.raises(etcdmember.EtcdError, match="member not found"):
        etcdmember.promote([url], "1234", timeout=0.5)
