"""The provider against the session's real API server: its CRDs accept upstream manifests
unchanged, the init lock, certificate reuse and the kubeconfig Secret."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import yaml

from shipyard.apimachinery.errors import AlreadyExists
from shipyard.bootstrap.kubeadm import certs, kubeconfig, locking, types
from shipyard.client import Client
from tests.kube import Server
from tests.providers.harness import V2, capi, install_crd, machine

__all__ = ["capi"]
CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"

QUICK_START = """
apiVersion: bootstrap.cluster.x-k8s.io/v1beta2
kind: KubeadmConfigTemplate
metadata:
  name: md-0
spec:
  template:
    spec:
      joinConfiguration:
        nodeRegistration:
          criSocket: unix:///var/run/containerd/containerd.sock
          kubeletExtraArgs:
          - name: eviction-hard
            value: nodefs.available<0%,imagefs.available<0%
      files:
      - path: /etc/hello
        contentFrom:
          secret: {name: hello, key: value}
      preKubeadmCommands: ["echo hi"]
      users:
      - name: capi
        sshAuthorizedKeys: ["ssh-ed25519 AAAA"]
        sudo: ALL=(ALL) NOPASSWD:ALL
      ntp: {enabled: true, servers: [pool.ntp.org]}
      mounts: [["/dev/sdb1", "/data"]]
      format: cloud-config
      verbosity: 4
"""

CONFIG: dict[str, Any] = {
    "apiVersion": types.API_VERSION, "kind": "KubeadmConfig", "metadata": {"name": "cp"},
    "spec": {
        "clusterConfiguration": {
            "apiServer": {"certSANs": ["localhost"],
                          "extraArgs": [{"name": "audit-log-maxage", "value": "30"}]},
            "etcd": {"local": {"dataDir": "/var/lib/etcd", "extraArgs": [
                {"name": "listen-metrics-urls", "value": "http://0.0.0.0:2381"}]}},
            "controllerManager": {"extraArgs": [{"name": "bind-address", "value": "0.0.0.0"}]},
            "certificateValidityPeriodDays": 365},
        "initConfiguration": {"nodeRegistration": {
            "name": "{{ ds.meta_data.local_hostname }}", "taints": [],
            "kubeletExtraArgs": [{"name": "cloud-provider", "value": "external"}]},
            "timeouts": {"controlPlaneComponentHealthCheckSeconds": 300}},
        "diskSetup": {"partitions": [{"device": "/dev/sdb", "layout": True}],
                      "filesystems": [{"device": "/dev/sdb1", "filesystem": "ext4",
                                       "label": "etcd"}]},
        "bootCommands": ["echo boot"], "postKubeadmCommands": ["echo done"]},
}


@pytest.fixture(scope="module")
def kubeadm_capi(capi: Server) -> Iterator[Server]:
    api = capi.client()
    for manifest in types.crd_manifests():
        install_crd(api, manifest)
    yield capi
    api.pool.clear()


@pytest.fixture
async def kube(kubeadm_capi: Server) -> AsyncIterator[Client]:
    client = Client.from_kubeconfig(kubeadm_capi.kubeconfig)
    try:
        yield client
    finally:
        await client.close()


def test_crds_carry_the_v1beta2_contract(kubeadm_capi: Server) -> None:
    api = kubeadm_capi.client()
    for plural in ("kubeadmconfigs", "kubeadmconfigtemplates"):
        crd = api.get(f"{CRD_PATH}/{plural}.bootstrap.cluster.x-k8s.io").json()
        assert crd["metadata"]["labels"]["cluster.x-k8s.io/v1beta2"] == "v1beta2"
        (version,) = crd["spec"]["versions"]
        assert version["name"] == "v1beta2" and version["storage"]
        assert ("status" in version.get("subresources", {})) is (plural == "kubeadmconfigs")


async def test_upstream_manifests_round_trip_unpruned(kube: Client, namespace: str) -> None:
    template = yaml.safe_load(QUICK_START)
    template["metadata"]["namespace"] = namespace
    created = await kube.create(template)
    assert created["spec"] == template["spec"]
    config = {**CONFIG, "metadata": {"name": "cp", "namespace": namespace}}
    stored = await kube.create(config)
    assert stored["spec"] == CONFIG["spec"]
    patched = await kube.patch(types.API_VERSION, "KubeadmConfig", "cp", {"status": {
        "initialization": {"dataSecretCreated": True}, "dataSecretName": "cp"}}, namespace,
        subresource="status")
    assert patched["status"]["initialization"] == {"dataSecretCreated": True}


async def test_init_lock_has_one_holder_and_frees_a_dead_one(kube: Client,
                                                             namespace: str) -> None:
    cluster = await kube.create({
        "apiVersion": V2, "kind": "Cluster", "metadata": {"name": "lk", "namespace": namespace},
        "spec": {"infrastructureRef": {"apiGroup": "infrastructure.cluster.x-k8s.io",
                                       "kind": "InMemoryCluster", "name": "lk"}}})
    for name in ("m1", "m2"):
        m = machine(name, "lk", control_plane=True)
        m["metadata"]["namespace"] = namespace
        await kube.create(m)
    assert await locking.lock(kube, cluster, "m1")
    assert await locking.lock(kube, cluster, "m1")  # re-entrant for its holder
    assert not await locking.lock(kube, cluster, "m2")
    lock = await kube.get("v1", "ConfigMap", "lk-lock", namespace)
    assert locking.holder(lock) == "m1"
    assert lock["metadata"]["ownerReferences"][0]["uid"] == cluster["metadata"]["uid"]
    # The holder's Machine is gone: the stale lock is released, the next attempt takes it.
    await kube.delete(V2, "Machine", "m1", namespace)
    assert not await locking.lock(kube, cluster, "m2")
    assert await locking.lock(kube, cluster, "m2")
    await locking.unlock(kube, cluster)
    await locking.unlock(kube, cluster)  # idempotent
    assert await locking.lock(kube, cluster, "m2")


async def test_certificates_are_generated_once(kube: Client, namespace: str) -> None:
    first = await certs.lookup_or_generate(kube, namespace, "pk", None)
    again = await certs.lookup_or_generate(kube, namespace, "pk", None)
    assert first == again
    assert set(first) == set(certs.CONTROL_PLANE_PURPOSES)
    assert await certs.lookup(kube, namespace, "pk") == first
    with pytest.raises(certs.MissingCertificate):
        await certs.lookup(kube, namespace, "absent")


async def test_kubeconfig_secret_from_the_cluster_ca(kube: Client, namespace: str) -> None:
    cluster = await kube.create({
        "apiVersion": V2, "kind": "Cluster", "metadata": {"name": "kc", "namespace": namespace},
        "spec": {"controlPlaneEndpoint": {"host": "10.1.2.3", "port": 6443},
                 "infrastructureRef": {"apiGroup": "infrastructure.cluster.x-k8s.io",
                                       "kind": "InMemoryCluster", "name": "kc"}}})
    with pytest.raises(certs.MissingCertificate):
        await kubeconfig.create_secret(kube, cluster)
    ca = (await certs.lookup_or_generate(kube, namespace, "kc", None, (certs.CA,)))[certs.CA]
    secret = await kubeconfig.create_secret(kube, cluster)
    assert secret["metadata"]["name"] == "kc-kubeconfig"
    assert secret["type"] == "cluster.x-k8s.io/secret"
    assert secret["metadata"]["ownerReferences"][0]["kind"] == "Cluster"
    doc = yaml.safe_load(base64.b64decode(secret["data"]["value"]))
    assert doc["clusters"][0]["cluster"]["server"] == "https://10.1.2.3:6443"
    assert base64.b64decode(doc["clusters"][0]["cluster"]["certificate-authority-data"]) \
        == ca.cert
    with pytest.raises(AlreadyExists):
        await kubeconfig.create_secret(kube, cluster)
    assert not await kubeconfig.rotate_if_needed(kube, "kc", namespace)
    assert await kubeconfig.rotate_if_needed(kube, "kc", namespace,
                                             within=kubeconfig.CLIENT_CERT_VALIDITY * 2)
    rotated = await kube.get("v1", "Secret", "kc-kubeconfig", namespace)
    assert rotated["data"]["value"] != secret["data"]["value"]
