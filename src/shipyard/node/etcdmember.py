"""A stacked etcd member on the machine's address, as kubeadm runs etcd beside the API server.

Why: a kubeadm control plane keeps its state in an etcd cluster made of one member per
control-plane machine. The first machine starts a new cluster; each joining one is first added
through an existing member (etcd's ``/v3/cluster/member/add`` on the JSON gateway, as kubeadm's
etcd client does), started with ``--initial-cluster-state=existing``, and promoted once it has
caught up. It joins as a *learner*, as kubeadm does since its EtcdLearnerMode: a learner does not
vote, so adding it never changes the quorum. Added as a voting member instead, the second member
of a one-member cluster makes the quorum two before it has even started, and the first member
stalls (lost leader, seconds of read timeouts) until the newcomer is up.

Members listen on ``https://<address>:2379`` (clients) and ``:2380`` (peers): every machine
has its own address, so the well-known ports never collide. As kubeadm sets etcd up, both sides
are TLS with client certificates from the cluster's etcd CA (`/etc/kubernetes/pki/etcd/ca.*`,
written by the bootstrap data): `issue_certificates` makes the member's ``server`` and ``peer``
certificates, the ``healthcheck-client`` certificate this agent talks to etcd with, and the
API server's ``apiserver-etcd-client`` certificate, in kubeadm's paths. etcd refuses a client
without a certificate from that CA, so nothing else on the host can read the cluster's state.
"""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from shipyard.bootstrap.kubeadm.certs import KeyPair, issue
from shipyard.node import services
from shipyard.node.machine import rooted, write_private

CLIENT_PORT: Final = 2379
PEER_PORT: Final = 2380
DATA_DIR: Final = "/var/lib/etcd"
CLIENT_URLS_ANNOTATION: Final = "kubeadm.kubernetes.io/etcd.advertise-client-urls"
PKI: Final = "/etc/kubernetes/pki"


class EtcdError(RuntimeError):
    pass


def client_url(address: str) -> str:
    return f"https://{address}:{CLIENT_PORT}"


def peer_url(address: str) -> str:
    return f"https://{address}:{PEER_PORT}"


@dataclass(frozen=True)
class Files:
    """One certificate and its key on the machine (host paths)."""
    cert: Path
    key: Path


@dataclass(frozen=True)
class MemberPKI:
    """A member's certificates, in kubeadm's paths, and the client context this agent uses."""
    ca: Path
    server: Files
    peer: Files
    healthcheck: Files
    apiserver_client: Files

    def context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca))
        ctx.load_cert_chain(str(self.healthcheck.cert), str(self.healthcheck.key))
        return ctx


def issue_certificates(root: Path, etcd_ca: KeyPair, name: str, address: str,
                       hostname: str, certificates_dir: str = PKI) -> MemberPKI:
    """kubeadm's etcd certificates for this member, signed by the cluster's etcd CA: server
    and peer (for ``name``, ``hostname``, the address and localhost), the agent's
    ``kube-etcd-healthcheck-client`` and the API server's ``kube-apiserver-etcd-client``."""
    pki = rooted(root, certificates_dir)
    etcd_pki = pki / "etcd"
    etcd_pki.mkdir(parents=True, exist_ok=True, mode=0o700)
    sans = (name, hostname, "localhost", address, "127.0.0.1", "::1")
    made = {
        "server": (etcd_pki, issue(etcd_ca, name, sans=sans, server=True, client=True)),
        "peer": (etcd_pki, issue(etcd_ca, name, sans=sans, server=True, client=True)),
        "healthcheck-client": (etcd_pki, issue(etcd_ca, "kube-etcd-healthcheck-client",
                                               client=True)),
        "apiserver-etcd-client": (pki, issue(etcd_ca, "kube-apiserver-etcd-client",
                                             client=True)),
    }
    files: dict[str, Files] = {}
    for stem, (directory, pair) in made.items():
        cert, key = directory / f"{stem}.crt", directory / f"{stem}.key"
        cert.write_bytes(pair.cert)
        write_private(key, pair.key.decode())
        files[stem] = Files(cert, key)
    ca = etcd_pki / "ca.crt"
    if not ca.exists():
        ca.write_bytes(etcd_ca.cert)
    return MemberPKI(ca, files["server"], files["peer"], files["healthcheck-client"],
                     files["apiserver-etcd-client"])


def _post(endpoint: str, path: str, body: dict[str, Any], tls: ssl.SSLContext,
          timeout: float = 5.0) -> Any:
    request = urllib.request.Request(endpoint + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout, context=tls) as response:
        return json.loads(response.read())


def member_list(endpoint: str, tls: ssl.SSLContext) -> list[dict[str, Any]]:
    members: list[dict[str, Any]] = _post(endpoint, "/v3/cluster/member/list", {}, tls).get(
        "members") or []
    return members


def _error_text(error: Exception) -> str:
    """etcd's own message from a gateway error answer, else the exception."""
    if isinstance(error, urllib.error.HTTPError):
        try:
            return str(json.loads(error.read()).get("message") or error)
        except (ValueError, OSError):
            return str(error)
    return str(error)


def _member_id(members: list[dict[str, Any]], peer: str) -> str:
    return next((str(m["ID"]) for m in members if peer in (m.get("peerURLs") or [])), "")


def member_add(endpoints: list[str], peer: str, tls: ssl.SSLContext, timeout: float = 60.0, *,
               learner: bool = True) -> tuple[list[dict[str, Any]], str]:
    """Add ``peer`` (as a learner unless told otherwise) through the first endpoint that
    answers; return the members after the change and the new member's ID. Adding a peer that
    is already a member (a retried join) returns the list unchanged. etcd refuses to
    reconfigure until every member has been connected a few seconds (its strict
    reconfiguration check) and allows one learner at a time: like kubeadm, retry until
    ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        last = ""
        for endpoint in endpoints:
            try:
                members = member_list(endpoint, tls)
                if _member_id(members, peer):
                    return members, _member_id(members, peer)
                answer = _post(endpoint, "/v3/cluster/member/add",
                               {"peerURLs": [peer], "isLearner": learner}, tls)
                added: list[dict[str, Any]] = answer.get("members") or []
                return added, str((answer.get("member") or {}).get("ID")
                                  or _member_id(added, peer))
            except (urllib.error.URLError, OSError, ValueError) as e:
                last = _error_text(e)
        if time.monotonic() > deadline:
            raise EtcdError(f"cannot add etcd member {peer} through {endpoints}: {last}")
        time.sleep(1.0)


NOT_A_LEARNER: Final = "etcdserver: can only promote a learner member"


def promote(endpoints: list[str], member_id: str, tls: ssl.SSLContext,
            timeout: float = 60.0) -> None:
    """Make the learner ``member_id`` a voting member through one of the voting members at
    ``endpoints``. etcd refuses while the learner's log is behind the leader's (``...which
    is in sync with leader``): retry until ``timeout``. A member that votes already (a
    retried join) is done."""
    deadline = time.monotonic() + timeout
    while True:
        last = ""
        for endpoint in endpoints:
            try:
                _post(endpoint, "/v3/cluster/member/promote", {"ID": member_id}, tls)
                return
            except (urllib.error.URLError, OSError, ValueError) as e:
                last = _error_text(e)
                if last == NOT_A_LEARNER:
                    return
        if time.monotonic() > deadline:
            raise EtcdError(f"cannot promote etcd learner {member_id} through {endpoints}: "
                            f"{last}")
        time.sleep(0.2)


def healthy(url: str, tls: ssl.SSLContext) -> bool:
    try:
        with urllib.request.urlopen(url + "/health", timeout=1, context=tls) as response:
            return b'"true"' in response.read()
    except (urllib.error.URLError, OSError):
        return False


def start(root: Path, binary: Path, name: str, address: str, pki: MemberPKI,
          initial_cluster: dict[str, str], state: str, timeout: float = 60.0) -> str:
    """Start the member (TLS on both sides, client certificates required) and wait until it
    answers ``/health``; returns its client URL."""
    client, peer = client_url(address), peer_url(address)
    data_dir = rooted(root, DATA_DIR)
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    cluster = ",".join(f"{n}={u}" for n, u in initial_cluster.items())
    argv = [str(binary), f"--name={name}", f"--data-dir={data_dir}",
            f"--listen-client-urls={client}", f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster={cluster}", f"--initial-cluster-state={state}",
            f"--cert-file={pki.server.cert}", f"--key-file={pki.server.key}",
            "--client-cert-auth=true", f"--trusted-ca-file={pki.ca}",
            f"--peer-cert-file={pki.peer.cert}", f"--peer-key-file={pki.peer.key}",
            "--peer-client-cert-auth=true", f"--peer-trusted-ca-file={pki.ca}",
            "--log-level=warn"]
    proc = services.start(root, "etcd", argv)
    tls = pki.context()
    deadline = time.monotonic() + timeout
    while not healthy(client, tls):
        code = proc.poll()
        if code is not None:
            raise EtcdError(f"etcd exited with {code}; see {services.log_path(root, 'etcd')}")
        if time.monotonic() > deadline:
            raise EtcdError(f"etcd not healthy after {timeout:.0f} s; see "
                            f"{services.log_path(root, 'etcd')}")
        time.sleep(0.1)
    return client
