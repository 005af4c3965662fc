"""The KubeadmConfig controller against the session's real API server, with a second real
Shipyard API server (started as the in-memory provider starts workload clusters) standing in
for the workload cluster that receives bootstrap tokens. Cluster and Machine status are set by
the test, so only this controller runs."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from shipyard.api.core import constants as c
from shipyard.apimachinery.errors import NotFound
from shipyard.bootstrap.kubeadm import certs, cloudinit, controller, tokens, types
from shipyard.bootstrap.kubeadm import workload as workload_clients
from shipyard.client import Client, Object
from shipyard.providers.inmemory.workload import STARTUP_TIMEOUT
from shipyard.runtime import Manager, Metrics
from tests.bootstrap.kubeadm.cloudconfig_schema import assert_valid_cloud_config
from tests.kube import Server
from tests.providers.harness import V2, capi, condition, eventually, install_crd, machine

__all__ = ["capi"]
CONFIG_REF = {"apiGroup": types.GROUP, "kind": "KubeadmConfig"}


@pytest.fixture(scope="module")
def kubeadm_capi(capi: Server) -> Iterator[Server]:
    api = capi.client()
    for manifest in types.crd_manifests():
        install_crd(api, manifest)
    yield capi
    api.pool.clear()


@pytest.fixture(scope="module")
def workload(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The kubeconfig text of a second, real API server (the 'workload cluster'), started as
    the in-memory provider starts its workload servers (a synchronous fixture: an async
    module-scoped one would run on a second event loop)."""
    data_dir = tmp_path_factory.mktemp("workload")
    port_file = data_dir / "port"
    with (data_dir / "apiserver.log").open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "shipyard.cli", "apiserver", "--data-dir", str(data_dir),
             "--port", "0", "--port-file", str(port_file), "--key-type", "ecdsa",
             "--shutdown-timeout", "0", "--log-level", "warning"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not (port_file.exists() and port_file.read_text().strip()):
            assert process.poll() is None and time.monotonic() < deadline, \
                f"workload API server did not start (see {data_dir}/apiserver.log)"
            time.sleep(0.02)
        yield (data_dir / "kubeconfig").read_text()
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Env:
    kube: Client
    namespace: str
    workload_kubeconfig: str

    async def create(self, obj: Object) -> Object:
        obj.setdefault("metadata", {})["namespace"] = self.namespace
        return await self.kube.create(obj)

    async def get(self, api_version: str, kind: str, name: str) -> Object | None:
        try:
            return await self.kube.get(api_version, kind, name, self.namespace)
        except NotFound:
            return None

    async def config(self, name: str) -> Object:
        obj = await self.get(types.API_VERSION, "KubeadmConfig", name)
        assert obj is not None
        return obj

    async def patch_status(self, kind: str, name: str, status: dict[str, Any]) -> None:
        await self.kube.patch(V2, kind, name, {"status": status}, self.namespace,
                              subresource="status")

    async def cluster(self, name: str, *, provisioned: bool = True) -> Object:
        created = await self.create({
            "apiVersion": V2, "kind": "Cluster", "metadata": {"name": name},
            "spec": {"controlPlaneEndpoint": {"host": "10.0.0.1", "port": 6443},
                     "clusterNetwork": {"pods": {"cidrBlocks": ["192.168.0.0/16"]},
                                        "serviceDomain": "cluster.local"},
                     "infrastructureRef": {"apiGroup": "infrastructure.cluster.x-k8s.io",
                                           "kind": "InMemoryCluster", "name": name}}})
        if provisioned:
            await self.patch_status("Cluster", name,
                                    {"initialization": {"infrastructureProvisioned": True}})
        await self.create({"apiVersion": "v1", "kind": "Secret", "type": c.CLUSTER_SECRET_TYPE,
                           "metadata": {"name": f"{name}-kubeconfig"},
                           "data": {"value": base64.b64encode(
                               self.workload_kubeconfig.encode()).decode()}})
        return created

    async def machine_with_config(self, name: str, cluster: str, spec: dict[str, Any], *,
                                  control_plane: bool = False,
                                  version: str = "v1.31.0") -> Object:
        m = machine(name, cluster, control_plane=control_plane,
                    config_ref={**CONFIG_REF, "name": name})
        m["spec"]["version"] = version
        created = await self.create(m)
        await self.create({
            "apiVersion": types.API_VERSION, "kind": "KubeadmConfig",
            "metadata": {"name": name, "ownerReferences": [{
                "apiVersion": V2, "kind": "Machine", "name": name,
                "uid": created["metadata"]["uid"]}]},
            "spec": spec})
        return created

    async def data(self, name: str) -> dict[str, Any]:
        """The rendered user-data of a config, once created, validated by cloud-init's schema."""
        async def created() -> Object | None:
            cfg = await self.config(name)
            return cfg if (cfg.get("status") or {}).get("initialization", {}).get(
                "dataSecretCreated") else None
        cfg = await eventually(created, f"data secret of {name}")
        secret = await self.get("v1", "Secret", cfg["status"]["dataSecretName"])
        assert secret is not None
        assert base64.b64decode(secret["data"]["format"]) == b"cloud-config"
        return assert_valid_cloud_config(base64.b64decode(secret["data"]["value"]).decode())


@contextlib.asynccontextmanager
async def running(server: Server, namespace: str, workload_kubeconfig: str,
                  ttl: timedelta = tokens.DEFAULT_TTL) -> AsyncIterator[Env]:
    kube = Client.from_kubeconfig(server.kubeconfig)
    mgr = Manager(kube, namespace=namespace, metrics=Metrics(CollectorRegistry()),
                  graceful_shutdown_timeout=5, informer_options={"backoff_initial": 0.05})
    reconciler = await controller.setup(mgr, controller.KubeadmConfigOptions(token_ttl=ttl))
    task = asyncio.create_task(mgr.run())
    try:
        yield Env(kube, namespace, workload_kubeconfig)
    finally:
        mgr.stop()
        with contextlib.suppress(Exception):
            await task
        await reconciler.aclose()
        await kube.close()
        # Closed TLS connections finish closing on the next loop iterations; the test's loop
        # ends right after this, and a transport collected unclosed is a ResourceWarning.
        await asyncio.sleep(0.1)


def _files(doc: dict[str, Any]) -> dict[str, str]:
    return {f["path"]: f["content"] for f in doc["write_files"]}


async def test_one_init_then_control_plane_and_worker_joins(
        kubeadm_capi: Server, namespace: str, workload: str) -> None:
    async with running(kubeadm_capi, namespace, workload) as env:
        await env.cluster("c1", provisioned=False)
        init_spec = {"clusterConfiguration": {"apiServer": {"certSANs": ["localhost"]}},
                     "initConfiguration": {"nodeRegistration": {"name": "cp"}},
                     "preKubeadmCommands": ["echo pre"], "postKubeadmCommands": ["echo post"]}
        await env.machine_with_config("cp1", "c1", init_spec, control_plane=True)

        async def waiting_for_infra() -> bool:
            cond = condition(await env.config("cp1"), types.DATA_SECRET_AVAILABLE_CONDITION)
            return cond.get("status") == "False" and "infrastructureProvisioned" in cond.get(
                "message", "")
        await eventually(waiting_for_infra, "DataSecretAvailable False waiting for infra")

        # Two control-plane machines race for init, a worker waits for the control plane.
        await env.machine_with_config("cp2", "c1", init_spec, control_plane=True)
        await env.machine_with_config("w1", "c1", {"joinConfiguration": {}})
        await env.patch_status("Cluster", "c1",
                               {"initialization": {"infrastructureProvisioned": True}})

        async def one_initialized() -> list[str]:
            done = [n for n in ("cp1", "cp2") if ((await env.config(n)).get("status") or {})
                    .get("initialization", {}).get("dataSecretCreated")]
            return done
        (first,) = await eventually(one_initialized, "one control plane rendering init")
        second = "cp2" if first == "cp1" else "cp1"
        lock = await env.get("v1", "ConfigMap", "c1-lock")
        assert lock is not None and first in lock["data"]["lock-information"]
        assert lock["metadata"]["ownerReferences"][0]["kind"] == "Cluster"

        init = await env.data(first)
        files = _files(init)
        assert init["runcmd"] == ["echo pre", "kubeadm init --config /run/kubeadm/kubeadm.yaml"
                                  " && echo success > /run/cluster-api/bootstrap-success.complete",
                                  "echo post"]
        cc, ic = yaml.safe_load_all(files[cloudinit.INIT_CONFIG_PATH])
        assert cc["apiVersion"] == "kubeadm.k8s.io/v1beta4"
        assert cc["controlPlaneEndpoint"] == "10.0.0.1:6443" and cc["clusterName"] == "c1"
        assert cc["networking"] == {"podSubnet": "192.168.0.0/16", "dnsDomain": "cluster.local"}
        assert ic["nodeRegistration"]["name"] == "cp"
        first_cfg = await env.config(first)
        for purpose in certs.CONTROL_PLANE_PURPOSES:
            secret = await env.get("v1", "Secret", f"c1-{purpose}")
            assert secret is not None, purpose
            assert secret["type"] == c.CLUSTER_SECRET_TYPE
            assert secret["metadata"]["labels"][c.CLUSTER_NAME_LABEL] == "c1"
            owner = secret["metadata"]["ownerReferences"][0]
            assert owner["uid"] == first_cfg["metadata"]["uid"] and owner["controller"]
        ca = certs.keypair_from_secret(await env.get("v1", "Secret", "c1-ca") or {})
        assert files["/etc/kubernetes/pki/ca.crt"] == ca.cert.decode()
        assert condition(first_cfg, "Ready")["status"] == "True"
        assert condition(first_cfg, types.CERTIFICATES_AVAILABLE_CONDITION)["status"] == "True"
        data_secret = await env.get("v1", "Secret", first)
        assert data_secret is not None and data_secret["type"] == c.CLUSTER_SECRET_TYPE
        assert data_secret["metadata"]["ownerReferences"][0]["kind"] == "KubeadmConfig"
        for name in (second, "w1"):
            cfg = await env.config(name)
            assert not (cfg.get("status") or {}).get("dataSecretName"), name
            assert condition(cfg, "Ready")["status"] == "False"

        # The control plane is initialized: the lock goes, the others join.
        await env.patch_status("Cluster", "c1", {"initialization": {
            "infrastructureProvisioned": True, "controlPlaneInitialized": True}})
        join_cp = await env.data(second)
        join_w = await env.data("w1")

        async def unlocked() -> bool:
            return await env.get("v1", "ConfigMap", "c1-lock") is None
        await eventually(unlocked, "init lock released")

        cp_files, w_files = _files(join_cp), _files(join_w)
        assert cp_files["/etc/kubernetes/pki/sa.key"] == certs.keypair_from_secret(
            await env.get("v1", "Secret", "c1-sa") or {}).key.decode()
        assert not any(p.startswith("/etc/kubernetes/pki") for p in w_files)
        (cp_join,) = yaml.safe_load_all(cp_files[cloudinit.JOIN_CONFIG_PATH])
        (w_join,) = yaml.safe_load_all(w_files[cloudinit.JOIN_CONFIG_PATH])
        assert cp_join["controlPlane"] == {} and "controlPlane" not in w_join
        assert w_join["nodeRegistration"]["taints"] == [
            {"key": "node.cluster.x-k8s.io/uninitialized", "effect": "NoSchedule"}]
        assert "kubeadm join --config /run/kubeadm/kubeadm-join-config.yaml && echo success " \
            "> /run/cluster-api/bootstrap-success.complete" in join_w["runcmd"]

        wcfg = await env.config("w1")
        discovery = wcfg["spec"]["joinConfiguration"]["discovery"]["bootstrapToken"]
        assert discovery["apiServerEndpoint"] == "10.0.0.1:6443"
        assert discovery["caCertHashes"] == [certs.ca_cert_hash(ca.cert)]
        assert w_join["discovery"]["bootstrapToken"] == discovery
        token_id, token_secret = tokens.parse(discovery["token"])
        remote = workload_clients.WorkloadClients(env.kube)
        try:
            wl = await remote.get(namespace, "c1")
            token = await wl.get("v1", "Secret", f"bootstrap-token-{token_id}", "kube-system")
        finally:
            await remote.aclose()
        data = {k: base64.b64decode(v).decode() for k, v in token["data"].items()}
        assert token["type"] == "bootstrap.kubernetes.io/token"
        assert data["token-id"] == token_id and data["token-secret"] == token_secret
        assert data["usage-bootstrap-authentication"] == "true"
        assert data["usage-bootstrap-signing"] == "true"
        assert data["auth-extra-groups"] == "system:bootstrappers:kubeadm:default-node-token"
        assert tokens.expiration_of(token) is not None
        cp_token = (await env.config(second))["spec"]["joinConfiguration"]["discovery"][
            "bootstrapToken"]["token"]
        assert cp_token != discovery["token"]


async def test_existing_certificates_are_reused(
        kubeadm_capi: Server, namespace: str, workload: str) -> None:
    ca = certs.generate_ca()
    async with running(kubeadm_capi, namespace, workload) as env:
        await env.create(certs.secret_for("c2", namespace, certs.CA, ca))
        await env.cluster("c2")
        await env.machine_with_config("cp", "c2", {}, control_plane=True, version="v1.30.1")
        init = await env.data("cp")
        assert _files(init)["/etc/kubernetes/pki/ca.key"] == ca.key.decode()
        cc, _ = yaml.safe_load_all(_files(init)[cloudinit.INIT_CONFIG_PATH])
        assert cc["apiVersion"] == "kubeadm.k8s.io/v1beta3"
        stored = await env.get("v1", "Secret", "c2-ca")
        assert stored is not None and "ownerReferences" not in stored["metadata"]
        assert certs.keypair_from_secret(stored) == ca
        for purpose in (certs.ETCD_CA, certs.FRONT_PROXY_CA, certs.SERVICE_ACCOUNT):
            assert await env.get("v1", "Secret", f"c2-{purpose}") is not None


async def test_worker_with_control_plane_join_and_ignition_are_refused(
        kubeadm_capi: Server, namespace: str, workload: str) -> None:
    async with running(kubeadm_capi, namespace, workload) as env:
        await env.create(certs.secret_for("c3", namespace, certs.CA, certs.generate_ca()))
        await env.cluster("c3")
        await env.patch_status("Cluster", "c3", {"initialization": {
            "infrastructureProvisioned": True, "controlPlaneInitialized": True}})
        await env.machine_with_config("w", "c3", {"joinConfiguration": {"controlPlane": {}}})
        await env.machine_with_config("ign", "c3", {"format": "ignition"})

        async def refused() -> bool:
            cond = condition(await env.config("w"), types.DATA_SECRET_AVAILABLE_CONDITION)
            return "JoinConfiguration.ControlPlane is set" in cond.get("message", "")
        await eventually(refused, "worker with controlPlane refused")
        assert await env.get("v1", "Secret", "w") is None

        async def ignition_refused() -> bool:
            cond = condition(await env.config("ign"), types.DATA_SECRET_AVAILABLE_CONDITION)
            return "only cloud-config" in cond.get("message", "")
        await eventually(ignition_refused, "format ignition refused")
        assert await env.get("v1", "Secret", "ign") is None


async def test_token_is_refreshed_until_the_machine_has_a_node(
        kubeadm_capi: Server, namespace: str, workload: str) -> None:
    async with running(kubeadm_capi, namespace, workload, ttl=timedelta(seconds=6)) as env:
        await env.create(certs.secret_for("c4", namespace, certs.CA, certs.generate_ca()))
        await env.cluster("c4")
        await env.patch_status("Cluster", "c4", {"initialization": {
            "infrastructureProvisioned": True, "controlPlaneInitialized": True}})
        await env.machine_with_config("w", "c4", {})
        await env.data("w")
        token = (await env.config("w"))["spec"]["joinConfiguration"]["discovery"][
            "bootstrapToken"]["token"]
        remote = workload_clients.WorkloadClients(env.kube)
        try:
            wl = await remote.get(namespace, "c4")
            first = tokens.expiration_of(await tokens.get(wl, token))
            assert first is not None

            async def extended() -> bool:
                later = tokens.expiration_of(await tokens.get(wl, token))
                return later is not None and later > first
            await eventually(extended, "token expiration extended", timeout=20)
        finally:
            await remote.aclose()
