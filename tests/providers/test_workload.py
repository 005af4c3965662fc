"""Simulated workload clusters: a real API server subprocess per cluster, whose state survives
a provider restart on the same port, and whose directory goes with the cluster."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.apimachinery.errors import NotFound
from shipyard.providers.inmemory.workload import WorkloadClusters, kubeconfig_for


async def test_a_workload_cluster_serves_keeps_state_across_restart_and_is_deleted(
        tmp_path: Path) -> None:
    workloads = WorkloadClusters(tmp_path)
    try:
        first = await workloads.ensure("ns/c1")
        assert await workloads.ensure("ns/c1") is first
        client = await workloads.client("ns/c1")
        await client.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"},
                             "spec": {"providerID": "inmemory://ns/c1/n1"}})
        port = first.port

        await workloads.stop("ns/c1")
        assert workloads.get("ns/c1") is None
        again = await workloads.ensure("ns/c1", port)
        assert again.port == port
        client = await workloads.client("ns/c1")
        node = await client.get("v1", "Node", "n1")
        assert node["spec"]["providerID"] == "inmemory://ns/c1/n1"

        await workloads.delete("ns/c1")
        assert not workloads.exists("ns/c1")
        assert workloads.get("ns/c1") is None
    finally:
        await workloads.aclose()


async def test_two_clusters_are_isolated(tmp_path: Path) -> None:
    workloads = WorkloadClusters(tmp_path)
    try:
        a = await workloads.ensure("ns/a")
        b = await workloads.ensure("ns/b")
        assert a.port != b.port
        await (await workloads.client("ns/a")).create(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "only-in-a"}})
        with pytest.raises(NotFound):
            await (await workloads.client("ns/b")).get("v1", "Namespace", "only-in-a")
    finally:
        await workloads.aclose()


async def test_the_kubeconfig_is_named_after_the_cluster(tmp_path: Path) -> None:
    import yaml

    workloads = WorkloadClusters(tmp_path)
    try:
        workload = await workloads.ensure("ns/c9")
        doc = yaml.safe_load(kubeconfig_for(workload, "c9"))
        assert doc["current-context"] == "c9-admin@c9"
        assert doc["clusters"][0]["name"] == "c9"
        assert doc["clusters"][0]["cluster"]["server"] == workload.url
        assert doc["users"][0]["name"] == "c9-admin"
    finally:
        await workloads.aclose()
