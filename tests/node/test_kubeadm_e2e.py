"""A real `kubeadm init` and a worker `kubeadm join` through the node agent: two process
machines on loopback addresses, a stacked etcd, Shipyard's API server on it, and the real
kubectl listing both Nodes Ready with the admin.conf kubeadm wrote."""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import random
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.bootstrap.kubeadm import certs, kubeadmapi
from shipyard.bootstrap.kubeadm import cloudinit as render
from shipyard.client import Client
from shipyard.node import bootstrapsigner, cloudinit, nodelifecycle

pytestmark = pytest.mark.slow

VERSION = "v1.33.0"
TOKEN = "abcdef.0123456789abcdef"
NODE_NAME = "{{ ds.meta_data.local_hostname }}"


def _boot(root: Path, user_data: str, name: str, address: str) -> subprocess.Popen[bytes]:
    root.mkdir(parents=True)
    (root.parent / f"{name}.user-data").write_text(user_data)
    with (root.parent / f"{name}.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "shipyard.cli", "node", "run", "--root", str(root),
             "--user-data", str(root.parent / f"{name}.user-data"), "--provider-id",
             f"process://w/{name}", "--address", address, "--hostname", name],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _wait_booted(root: Path, proc: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while True:
        status = cloudinit.read_status(root)
        if status and status["phase"] != "Booting":
            assert status["phase"] == "Running", status
            return
        assert proc.poll() is None, (root.parent / f"{root.name}.log").read_text()
        assert time.monotonic() < deadline, f"{root} did not boot: {status}"
        time.sleep(0.2)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.fixture
def machines(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        _kill(proc)


def test_init_then_worker_and_control_plane_join(
        tmp_path: Path, machines: list[subprocess.Popen[bytes]]) -> None:
    net = f"127.{random.randint(100, 250)}.{random.randint(0, 255)}"
    cp_address, worker_address, cp1_address = f"{net}.1", f"{net}.2", f"{net}.3"
    ca = certs.generate_ca()
    ca_files = certs.as_files({certs.CA: ca, certs.ETCD_CA: certs.generate_ca(),
                               certs.FRONT_PROXY_CA: certs.generate_ca(),
                               certs.SERVICE_ACCOUNT: certs.generate_service_account_key()})
    cluster_config = kubeadmapi.cluster_configuration(
        None, kubernetes_version=VERSION, cluster_name="w",
        control_plane_endpoint=f"{cp_address}:6443")
    init_config = kubeadmapi.init_configuration(
        {"nodeRegistration": {"name": NODE_NAME},
         "bootstrapTokens": [{"token": TOKEN, "ttlSeconds": 900,
                              "groups": ["system:bootstrappers:kubeadm:default-node-token"]}]},
        kubernetes_version=VERSION)
    init_data = render.render_init(
        {}, cluster_configuration=kubeadmapi.marshal(cluster_config),
        init_configuration=kubeadmapi.marshal(init_config), certificate_files=ca_files)
    cp_root = tmp_path / "cp-0"
    machines.append(_boot(cp_root, init_data, "cp-0", cp_address))
    _wait_booted(cp_root, machines[-1])
    assert (cp_root / render.SENTINEL_PATH.lstrip("/")).exists()

    join_config = kubeadmapi.join_configuration(
        {"nodeRegistration": {"name": NODE_NAME},
         "discovery": {"bootstrapToken": {"apiServerEndpoint": f"{cp_address}:6443",
                                          "token": TOKEN,
                                          "caCertHashes": [certs.ca_cert_hash(ca.cert)]}}},
        kubernetes_version=VERSION)
    worker_root = tmp_path / "md-0"
    machines.append(_boot(worker_root, render.render_join(
        {}, join_configuration=kubeadmapi.marshal(join_config)), "md-0", worker_address))
    _wait_booted(worker_root, machines[-1])

    admin_conf = cp_root / "etc/kubernetes/admin.conf"
    out = subprocess.run(["kubectl", "--kubeconfig", str(admin_conf), "get", "nodes",
                          "-o", "json"], capture_output=True, timeout=30, check=True)
    nodes = {n["metadata"]["name"]: n for n in json.loads(out.stdout)["items"]}
    assert set(nodes) == {"cp-0", "md-0"}
    for name, node in nodes.items():
        assert node["spec"]["providerID"] == f"process://w/{name}"
        ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
        assert ready[0]["status"] == "True"
    assert "node-role.kubernetes.io/control-plane" in nodes["cp-0"]["metadata"]["labels"]
    assert {"type": "InternalIP", "address": worker_address} in nodes["md-0"]["status"][
        "addresses"]
    # cluster-info is readable anonymously and signed with the token, as kubeadm reads it.
    anonymous = subprocess.run(
        ["curl", "-sk", "-m", "10", f"https://{cp_address}:6443/api/v1/namespaces/kube-public/"
                                    "configmaps/cluster-info"],
        capture_output=True, timeout=30, check=True)
    info = json.loads(anonymous.stdout)["data"]
    assert bootstrapsigner.verify(info["kubeconfig"], info["jws-kubeconfig-abcdef"], "abcdef",
                                  "0123456789abcdef")
    # The worker's kubelet holds its own certificate, not the bootstrap token.
    assert not (worker_root / "etc/kubernetes/bootstrap-kubelet.conf").exists()
    assert "client-certificate-data" in (worker_root / "etc/kubernetes/kubelet.conf").read_text()

    # Node lifecycle: a Lease older than the grace period makes the Node Ready=Unknown.
    async def lifecycle() -> str:
        async with Client.from_kubeconfig(admin_conf) as client:
            later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=60)
            await nodelifecycle.reconcile(client, now=later)
            node = await client.get("v1", "Node", "md-0")
            return nodelifecycle.ready_status(node)

    assert asyncio.run(lifecycle()) == "Unknown"

    # A second control-plane machine: its own etcd member and API server on its address.
    cp_join = kubeadmapi.join_configuration(
        {"nodeRegistration": {"name": NODE_NAME},
         "controlPlane": {"localAPIEndpoint": {"advertiseAddress": cp1_address,
                                               "bindPort": 6443}},
         "discovery": {"bootstrapToken": {"apiServerEndpoint": f"{cp_address}:6443",
                                          "token": TOKEN,
                                          "caCertHashes": [certs.ca_cert_hash(ca.cert)]}}},
        kubernetes_version=VERSION)
    cp1_root = tmp_path / "cp-1"
    machines.append(_boot(cp1_root, render.render_join(
        {}, join_configuration=kubeadmapi.marshal(cp_join), certificate_files=ca_files),
        "cp-1", cp1_address))
    _wait_booted(cp1_root, machines[-1])
    # etcd speaks TLS and wants a client certificate from the cluster's etcd CA, as kubeadm's.
    etcd_pki = cp1_root / "etc/kubernetes/pki/etcd"
    tls = ssl.create_default_context(cafile=str(etcd_pki / "ca.crt"))
    tls.load_cert_chain(str(etcd_pki / "healthcheck-client.crt"),
                        str(etcd_pki / "healthcheck-client.key"))
    members = json.loads(urllib.request.urlopen(urllib.request.Request(
        f"https://{cp1_address}:2379/v3/cluster/member/list", data=b"{}"), timeout=5,
        context=tls).read())
    assert sorted(m["name"] for m in members["members"]) == ["cp-0", "cp-1"]
    assert not any(m.get("isLearner") for m in members["members"])  # promoted
    out = subprocess.run(["kubectl", "--kubeconfig", str(cp1_root / "etc/kubernetes/admin.conf"),
                          "--server", f"https://{cp1_address}:6443", "get", "nodes", "-o",
                          "json"], capture_output=True, timeout=30, check=True)
    nodes = {n["metadata"]["name"]: n for n in json.loads(out.stdout)["items"]}
    assert set(nodes) == {"cp-0", "md-0", "cp-1"}
    assert "node-role.kubernetes.io/control-plane" in nodes["cp-1"]["metadata"]["labels"]


def test_join_with_wrong_ca_hash_fails_the_boot(tmp_path: Path,
                                                machines: list[subprocess.Popen[bytes]]) -> None:
    join_config = kubeadmapi.join_configuration(
        {"discovery": {"bootstrapToken": {"apiServerEndpoint": "127.0.0.1:1", "token": TOKEN,
                                          "caCertHashes": ["sha256:00"]}},
         "timeouts": {"discoverySeconds": 1}},
        kubernetes_version=VERSION)
    root = tmp_path / "md-x"
    machines.append(_boot(root, render.render_join(
        {}, join_configuration=kubeadmapi.marshal(join_config)), "md-x", "127.0.0.1"))
    deadline = time.monotonic() + 30
    while (status := cloudinit.read_status(root)) is None or status["phase"] == "Booting":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert status["phase"] == "Failed"
    assert status["reason"] == "RuncmdFailed"
    assert "couldn't validate the identity of the API Server" in status["message"]
    assert not (root / render.SENTINEL_PATH.lstrip("/")).exists()
