"""KubeadmConfig end to end with the core Cluster and Machine controllers and the in-memory
infrastructure provider: the control-plane Machine boots from `kubeadm init` data, the Cluster
becomes initialized, and a worker then joins with a bootstrap token that lives in the
in-memory workload cluster's kube-system."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator

from prometheus_client import CollectorRegistry

from shipyard.bootstrap.kubeadm import controller, tokens, types
from shipyard.client import Client, Object
from shipyard.controllers import setup as core
from shipyard.providers.inmemory import setup as inmemory
from shipyard.runtime import Manager, Metrics
from tests.bootstrap.kubeadm.cloudconfig_schema import assert_valid_cloud_config
from tests.bootstrap.kubeadm.test_controller import kubeadm_capi
from tests.kube import Server
from tests.providers.harness import (
    CORE,
    V2,
    Env,
    capi,
    cluster,
    eventually,
    infra_cluster,
    infra_machine,
    machine,
)

__all__ = ["capi", "kubeadm_capi"]


@contextlib.asynccontextmanager
async def running(server: Server, namespace: str) -> AsyncIterator[Env]:
    kube = Client.from_kubeconfig(server.kubeconfig)
    options = core.Options()
    mgr: Manager = await core.build(kube, namespace=namespace, options=options, setups=CORE,
                                    metrics=Metrics(CollectorRegistry()),
                                    graceful_shutdown_timeout=5,
                                    informer_options={"backoff_initial": 0.05})
    workloads = await inmemory.setup(mgr, inmemory.InMemoryOptions())
    reconciler = await controller.setup(mgr)
    task = asyncio.create_task(mgr.run())
    try:
        yield Env(mgr, kube, namespace, workloads)
    finally:
        mgr.stop()
        with contextlib.suppress(Exception):
            await task
        await reconciler.aclose()
        await options.aclose()
        await workloads.aclose()
        await kube.close()
        await asyncio.sleep(0.1)  # let closed TLS transports finish closing


def _config(name: str, spec: dict[str, object]) -> Object:
    return {"apiVersion": types.API_VERSION, "kind": "KubeadmConfig",
            "metadata": {"name": name}, "spec": spec}


async def test_control_plane_init_then_worker_join(kubeadm_capi: Server, namespace: str) -> None:
    async with running(kubeadm_capi, namespace) as env:
        ref = {"apiGroup": types.GROUP, "kind": "KubeadmConfig"}
        await env.create(infra_cluster("k1"))
        await env.create(cluster("k1"))
        await env.create(_config("k1-cp", {"initConfiguration": {}}))
        await env.create(infra_machine("k1-cp"))
        cp = machine("k1-cp", "k1", control_plane=True, config_ref={**ref, "name": "k1-cp"})
        cp["spec"]["version"] = "v1.31.0"
        await env.create(cp)

        async def initialized() -> Object | None:
            c1 = await env.get(V2, "Cluster", "k1")
            init = ((c1 or {}).get("status") or {}).get("initialization") or {}
            return c1 if init.get("controlPlaneInitialized") else None
        await eventually(initialized, "control plane initialized", timeout=60)
        m = await env.get(V2, "Machine", "k1-cp")
        assert m is not None and m["spec"]["bootstrap"]["dataSecretName"] == "k1-cp"
        data = await env.get("v1", "Secret", "k1-cp")
        assert data is not None
        user_data = assert_valid_cloud_config(base64.b64decode(data["data"]["value"]).decode())
        assert any("kubeadm init" in cmd for cmd in user_data["runcmd"])

        await env.create(_config("k1-w", {}))
        await env.create(infra_machine("k1-w"))
        w = machine("k1-w", "k1", config_ref={**ref, "name": "k1-w"})
        w["spec"]["version"] = "v1.31.0"
        await env.create(w)

        async def joined() -> Object | None:
            cfg = await env.get(types.API_VERSION, "KubeadmConfig", "k1-w")
            created = ((cfg or {}).get("status") or {}).get("initialization") or {}
            return cfg if created.get("dataSecretCreated") else None
        cfg = await eventually(joined, "worker join data", timeout=60)
        token = cfg["spec"]["joinConfiguration"]["discovery"]["bootstrapToken"]["token"]
        workload = await env.workload_client("k1")
        try:
            secret = await tokens.get(workload, token)
        finally:
            await workload.close()
        assert secret["type"] == "bootstrap.kubernetes.io/token"
        owner = cfg["metadata"]["ownerReferences"][0]
        assert owner["kind"] == "Machine" and owner["name"] == "k1-w"
