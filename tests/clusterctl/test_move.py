"""`shipyard move` between two real Shipyard API servers, without controllers: the Clusters'
provisioning status is written through the status subresource as the controllers would.

Covered: the object graph (owner references, soft ownership by name and by cluster-name
label, the move label), owner-first creation with new UIDs and status, deletion from the
source, unpausing on the target; the refusals (provisioning cluster, target missing a kind,
live cluster of that name on the target, block-move timeout) leaving everything as it was; a
failure half-way rolled back; block-move waited for; dry-run; the directory round trip; the
CLI's flags and errors.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from shipyard.apimachinery.errors import NotFound
from shipyard.cli.move import move as move_command
from shipyard.client import Client, Object
from shipyard.clusterctl import MoveError, Mover
from shipyard.providers.inmemory import types
from tests.clusterctl.conftest import owner_uids
from tests.kube import Server
from tests.providers.harness import eventually, install_crd

V2 = "cluster.x-k8s.io/v1beta2"
WIDGETS = "infrastructure.cluster.x-k8s.io/v1alpha1"


def widget_crd(plural: str, kind: str, *, minimum: int | None = None) -> dict[str, Any]:
    size: dict[str, Any] = {"type": "integer"}
    if minimum is not None:
        size["minimum"] = minimum
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.infrastructure.cluster.x-k8s.io"},
        "spec": {"group": "infrastructure.cluster.x-k8s.io", "scope": "Namespaced",
                 "names": {"plural": plural, "singular": kind.lower(), "kind": kind,
                           "listKind": f"{kind}List"},
                 "versions": [{"name": "v1alpha1", "served": True, "storage": True,
                               "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                                   "spec": {"type": "object", "properties": {"size": size}}}}}}]},
    }


async def provisioned_cluster(kube: Client, ns: str, name: str, *,
                              provisioned: bool = True) -> Object:
    """A Cluster, its InMemoryCluster (controller-owned), a `<name>-kubeconfig` Secret with no
    owner, a ConfigMap with only the cluster-name label, and an unrelated Secret."""
    cluster = await kube.create({
        "apiVersion": V2, "kind": "Cluster", "metadata": {"name": name, "namespace": ns},
        "spec": {"infrastructureRef": {"apiGroup": types.GROUP, "kind": "InMemoryCluster",
                                       "name": name}}})
    if provisioned:
        cluster["status"] = {
            "initialization": {"infrastructureProvisioned": True,
                               "controlPlaneInitialized": True},
            "conditions": [{"type": "ControlPlaneInitialized", "status": "True",
                            "reason": "Initialized", "message": "",
                            "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
        cluster = await kube.update_status(cluster)
    owner = {"apiVersion": V2, "kind": "Cluster", "name": name,
             "uid": cluster["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}
    await kube.create({"apiVersion": types.API_VERSION, "kind": "InMemoryCluster",
                       "metadata": {"name": name, "namespace": ns, "ownerReferences": [owner],
                                    "finalizers": [types.CLUSTER_FINALIZER]},
                       "spec": {}})
    await kube.create({"apiVersion": "v1", "kind": "Secret",
                       "metadata": {"name": f"{name}-kubeconfig", "namespace": ns},
                       "stringData": {"value": "kubeconfig"}})
    await kube.create({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": f"{name}-addons", "namespace": ns,
                                    "labels": {"cluster.x-k8s.io/cluster-name": name}},
                       "data": {"a": "b"}})
    await kube.create({"apiVersion": "v1", "kind": "Secret",
                       "metadata": {"name": "unrelated", "namespace": ns},
                       "stringData": {"value": "stays"}})
    return cluster


MOVED = [(V2, "Cluster", "c1"), (types.API_VERSION, "InMemoryCluster", "c1"),
         ("v1", "Secret", "c1-kubeconfig"), ("v1", "ConfigMap", "c1-addons")]


async def get(kube: Client, api_version: str, kind: str, name: str, ns: str) -> Object | None:
    try:
        return await kube.get(api_version, kind, name, ns)
    except NotFound:
        return None


async def assert_untouched(source: Client, target: Client, ns: str) -> None:
    """Everything still on the source, unpaused; nothing of it on the target."""
    for api_version, kind, name in MOVED:
        assert await get(source, api_version, kind, name, ns) is not None, (kind, name)
        assert await get(target, api_version, kind, name, ns) is None, (kind, name)
    cluster = await source.get(V2, "Cluster", "c1", ns)
    assert not cluster["spec"].get("paused")


async def test_move_recreates_owner_first_and_deletes_the_source(
        capi: Server, target: Server, namespace: str, source_kube: Client,
        target_kube: Client) -> None:
    ns = namespace
    before = await provisioned_cluster(source_kube, ns, "c1")
    events: list[tuple[str, Object]] = []

    async def follow(rv: str) -> None:
        async for event in source_kube.watch("v1", "Secret", ns, resource_version=rv):
            if event["object"]["metadata"].get("name") == "c1-kubeconfig":
                events.append((event["type"], event["object"]))

    listed = await source_kube.list("v1", "Secret", ns)
    watching = asyncio.create_task(follow(listed["metadata"]["resourceVersion"]))
    lines: list[str] = []
    await Mover(source_kube, log=lines.append).move(target_kube, ns)

    async def deleted() -> bool:
        return any(kind == "DELETED" for kind, _ in events)

    await eventually(deleted, "the source Secret's deletion")
    watching.cancel()
    (kind, last), = [e for e in events if e[0] == "DELETED"]
    # Marked for the controllers and webhooks that look: this deletion is a move.
    assert "clusterctl.cluster.x-k8s.io/delete-for-move" in last["metadata"]["annotations"]

    moved = await target_kube.get(V2, "Cluster", "c1", ns)
    assert moved["metadata"]["uid"] != before["metadata"]["uid"]
    assert not moved["spec"].get("paused")
    assert moved["status"]["initialization"]["infrastructureProvisioned"] is True
    infra = await target_kube.get(types.API_VERSION, "InMemoryCluster", "c1", ns)
    assert owner_uids(infra) == {moved["metadata"]["uid"]}
    (ref,) = infra["metadata"]["ownerReferences"]
    assert ref["controller"] is True and ref["blockOwnerDeletion"] is True
    assert infra["metadata"]["finalizers"] == [types.CLUSTER_FINALIZER]
    secret = await target_kube.get("v1", "Secret", "c1-kubeconfig", ns)
    assert secret["data"]["value"]  # the data, not just the name
    assert await get(target_kube, "v1", "Secret", "unrelated", ns) is None
    for api_version, kind, name in MOVED:
        assert await get(source_kube, api_version, kind, name, ns) is None, (kind, name)
    assert await get(source_kube, "v1", "Secret", "unrelated", ns) is not None
    plan = "\n".join(lines)
    assert plan.index("Cluster " + f"{ns}/c1") < plan.index(f"InMemoryCluster {ns}/c1")


async def test_dry_run_prints_the_plan_and_changes_nothing(
        capi: Server, target: Server, namespace: str, source_kube: Client,
        target_kube: Client) -> None:
    await provisioned_cluster(source_kube, namespace, "c1", provisioned=False)
    result = await asyncio.to_thread(CliRunner().invoke, move_command, [
        "--kubeconfig", str(capi.kubeconfig), "-n", namespace, "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "dry-run" in result.output
    out = result.output
    assert f"Group 1:\n  Cluster {namespace}/c1" in out
    assert f"InMemoryCluster {namespace}/c1" in out and f"Secret {namespace}/c1-kubeconfig" in out
    assert f"ConfigMap {namespace}/c1-addons" in out and "unrelated" not in out
    await assert_untouched(source_kube, target_kube, namespace)


async def test_a_provisioning_cluster_is_refused(
        capi: Server, target: Server, namespace: str, source_kube: Client,
        target_kube: Client) -> None:
    await provisioned_cluster(source_kube, namespace, "c1", provisioned=False)
    result = await asyncio.to_thread(CliRunner().invoke, move_command, [
        "--kubeconfig", str(capi.kubeconfig), "--to-kubeconfig", str(target.kubeconfig),
        "-n", namespace])
    assert result.exit_code == 1
    assert ("cannot start the move operation while \"cluster.x-k8s.io/v1beta2, Kind=Cluster\" "
            f"{namespace}/c1 is still provisioning the infrastructure") in result.output
    await assert_untouched(source_kube, target_kube, namespace)


async def test_a_target_missing_a_kind_is_refused_before_anything_changes(
        capi: Server, target: Server, namespace: str, source_kube: Client,
        target_kube: Client) -> None:
    install_crd(capi.client(), widget_crd("movewidgets", "MoveWidget"))
    cluster = await provisioned_cluster(source_kube, namespace, "c1")
    await source_kube.create({
        "apiVersion": WIDGETS, "kind": "MoveWidget",
        "metadata": {"name": "w", "namespace": namespace, "ownerReferences": [{
            "apiVersion": V2, "kind": "Cluster", "name": "c1",
            "uid": cluster["metadata"]["uid"]}]}, "spec": {"size": 1}})
    with pytest.raises(MoveError, match="does not serve MoveWidget.infrastructure"):
        await Mover(source_kube).move(target_kube, namespace)
    await assert_untouched(source_kube, target_kube, namespace)


async def test_a_failure_half_way_is_rolled_back(
        capi: Server, target: Server, namespace: str, source_kube: Client,
        target_kube: Client) -> None:
    """The target's schema refuses a Gadget the source accepted, after the Cluster and its
    InMemoryCluster were created there: those are removed again and the source unpaused."""
    install_crd(capi.client(), widget_crd("movegadgets", "MoveGadget"))
    install_crd(target.client(), widget_crd("movegadgets", "MoveGadget", minimum=10))
    cluster = await provisioned_cluster(source_kube, namespace, "c1")
    await source_kube.create({
        "apiVersion": WIDGETS, "kind": "MoveGadget",
        "metadata": {"name": "g", "namespace": namespace, "ownerReferences": [{
            "apiVersion": V2, "kind": "Cluster", "name": "c1",
            "uid": cluster["metadata"]["uid"]}]}, "spec": {"size": 1}})
    with pytest.raises(MoveError) as err:
        await Mover(source_kube).move(target_kube, namespace)
    assert "Nothing was left on the target" in str(err.value)
    assert "The source is unchanged and unpaused" in str(err.value)
    await assert_untouched(source_kube, target_kube, namespace)
    assert await get(source_kube, WIDGETS, "MoveGadget", "g", namespace) is not None


async def test_a_live_cluster_of_the_same_name_on_the_target_is_refused(
        capi: Server, target: Server, namespace: str, source_kube: Client,
        target_kube: Client) -> None:
    await provisioned_cluster(source_kube, namespace, "c1")
    await target_kube.create({"apiVersion": "v1", "kind": "Namespace",
                              "metadata": {"name": namespace}})
    await target_kube.create({"apiVersion": V2, "kind": "Cluster",
                              "metadata": {"name": "c1", "namespace": namespace},
                              "spec": {"infrastructureRef": {
                                  "apiGroup": types.GROUP, "kind": "InMemoryCluster",
                                  "name": "other"}}})
    with pytest.raises(MoveError, match="already exists on the target"):
        await Mover(source_kube).move(target_kube, namespace)
    for api_version, kind, name in MOVED:
        assert await get(source_kube, api_version, kind, name, namespace) is not None
    assert await get(target_kube, types.API_VERSION, "InMemoryCluster", "c1", namespace) is None


async def test_block_move_is_waited_for_then_refused_on_timeout(
        capi: Server, target: Server, namespace: str, source_kube: Client,
        target_kube: Client) -> None:
    await provisioned_cluster(source_kube, namespace, "c1")
    block = {"metadata": {"annotations": {"clusterctl.cluster.x-k8s.io/block-move": ""}}}
    await source_kube.patch(types.API_VERSION, "InMemoryCluster", "c1", block, namespace)

    with pytest.raises(MoveError, match="still has the clusterctl.cluster.x-k8s.io/block-move"):
        await Mover(source_kube, wait_for_unblock=0.3, poll_interval=0.05).move(
            target_kube, namespace)
    await assert_untouched(source_kube, target_kube, namespace)

    mover = Mover(source_kube, wait_for_unblock=60, poll_interval=0.05)
    task = asyncio.create_task(mover.move(target_kube, namespace))

    async def paused() -> bool:
        c = await source_kube.get(V2, "Cluster", "c1", namespace)
        return bool(c["spec"].get("paused"))

    while not await paused():  # the move has paused the source and is waiting
        assert not task.done()
        await asyncio.sleep(0.05)
    assert await get(target_kube, V2, "Cluster", "c1", namespace) is None
    await source_kube.patch(types.API_VERSION, "InMemoryCluster", "c1", {"metadata": {
        "annotations": {"clusterctl.cluster.x-k8s.io/block-move": None}}}, namespace)
    await asyncio.wait_for(task, 30)
    assert await get(target_kube, types.API_VERSION, "InMemoryCluster", "c1", namespace)
    assert await get(source_kube, V2, "Cluster", "c1", namespace) is None


async def test_to_directory_then_from_directory(
        capi: Server, target: Server, namespace: str, source_kube: Client,
        target_kube: Client, tmp_path: Path) -> None:
    await provisioned_cluster(source_kube, namespace, "c1")
    backup = tmp_path / "backup"
    runner = CliRunner()
    result = await asyncio.to_thread(runner.invoke, move_command, [
        "--kubeconfig", str(capi.kubeconfig), "-n", namespace, "--to-directory", str(backup)])
    assert result.exit_code == 0, result.output
    files = sorted(p.name for p in backup.iterdir())
    assert files == sorted([f"Cluster_{namespace}_c1.yaml", f"InMemoryCluster_{namespace}_c1.yaml",
                            f"Secret_{namespace}_c1-kubeconfig.yaml",
                            f"ConfigMap_{namespace}_c1-addons.yaml"])
    saved = yaml.safe_load((backup / f"Cluster_{namespace}_c1.yaml").read_text())
    assert saved["status"]["initialization"]["infrastructureProvisioned"] is True
    source_cluster = await source_kube.get(V2, "Cluster", "c1", namespace)
    assert not source_cluster["spec"].get("paused")  # a backup leaves the source running

    result = await asyncio.to_thread(runner.invoke, move_command, [
        "--from-directory", str(backup), "--to-kubeconfig", str(target.kubeconfig)])
    assert result.exit_code == 0, result.output
    restored = await target_kube.get(V2, "Cluster", "c1", namespace)
    assert not restored["spec"].get("paused")
    assert restored["status"]["initialization"]["controlPlaneInitialized"] is True
    infra = await target_kube.get(types.API_VERSION, "InMemoryCluster", "c1", namespace)
    assert owner_uids(infra) == {restored["metadata"]["uid"]}
    assert await get(target_kube, "v1", "ConfigMap", "c1-addons", namespace)

    # Restoring again keeps what is there (same UIDs), and still succeeds.
    result = await asyncio.to_thread(runner.invoke, move_command, [
        "--from-directory", str(backup), "--to-kubeconfig", str(target.kubeconfig)])
    assert result.exit_code == 0, result.output
    again = await target_kube.get(V2, "Cluster", "c1", namespace)
    assert again["metadata"]["uid"] == restored["metadata"]["uid"]


@pytest.mark.parametrize(("args", "message"), [
    ([], "please specify a target cluster using the --to-kubeconfig flag"),
    (["--to-directory", "a", "--from-directory", "b"],
     "can not specify both --to-directory and --from-directory"),
    (["--to-kubeconfig", "/nonexistent/kubeconfig"],
     "target kubeconfig /nonexistent/kubeconfig does not exist"),
    (["--from-directory", "/nonexistent/dir"], "directory /nonexistent/dir does not exist"),
    (["--no-such-flag"], "No such option '--no-such-flag'"),
])
def test_cli_errors(capi: Server, args: list[str], message: str) -> None:
    result = CliRunner().invoke(move_command, ["--kubeconfig", str(capi.kubeconfig), *args])
    assert result.exit_code != 0
    assert message in result.output


def test_cli_reports_an_unreachable_source(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "x",
        "clusters": [{"name": "x", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "x", "user": {"token": "t"}}],
        "contexts": [{"name": "x", "context": {"cluster": "x", "user": "x"}}]}))
    result = CliRunner().invoke(move_command, ["--kubeconfig", str(kubeconfig), "--dry-run"])
    assert result.exit_code == 1
    assert "cannot reach the API server" in result.output


class Killed(BaseException):
    """The move's process dying at a given point (not an error the mover could handle)."""


@pytest.mark.parametrize("at", ["Created InMemoryCluster", "Deleted ConfigMap"])
async def test_an_interrupted_move_is_finished_by_running_it_again(
        capi: Server, target: Server, namespace: str, source_kube: Client,
        target_kube: Client, at: str) -> None:
    await provisioned_cluster(source_kube, namespace, "c1")

    def die_at(line: str) -> None:
        if line.startswith(at):
            raise Killed(line)

    with pytest.raises(Killed):
        await Mover(source_kube, log=die_at).move(target_kube, namespace)
    half = await target_kube.get(V2, "Cluster", "c1", namespace)
    assert half["spec"]["paused"] is True  # never two live copies
    assert (await source_kube.get(V2, "Cluster", "c1", namespace))["spec"]["paused"] is True

    await Mover(source_kube).move(target_kube, namespace)
    moved = await target_kube.get(V2, "Cluster", "c1", namespace)
    assert moved["metadata"]["uid"] == half["metadata"]["uid"]  # updated, not duplicated
    assert not moved["spec"].get("paused")
    infra = await target_kube.get(types.API_VERSION, "InMemoryCluster", "c1", namespace)
    assert owner_uids(infra) == {moved["metadata"]["uid"]}
    for api_version, kind, name in MOVED:
        assert await get(source_kube, api_version, kind, name, namespace) is None, (kind, name)
        assert await get(target_kube, api_version, kind, name, namespace), (kind, name)


async def test_a_machine_without_a_node_is_refused(
        capi: Server, target: Server, namespace: str, source_kube: Client,
        target_kube: Client) -> None:
    cluster = await provisioned_cluster(source_kube, namespace, "c1")
    await source_kube.create({
        "apiVersion": V2, "kind": "Machine",
        "metadata": {"name": "m0", "namespace": namespace, "ownerReferences": [{
            "apiVersion": V2, "kind": "Cluster", "name": "c1",
            "uid": cluster["metadata"]["uid"]}]},
        "spec": {"clusterName": "c1", "bootstrap": {"dataSecretName": "x"},
                 "infrastructureRef": {"apiGroup": types.GROUP, "kind": "InMemoryMachine",
                                       "name": "m0"}}})
    with pytest.raises(MoveError, match=f"Kind=Machine\" {namespace}/m0 is still provisioning "
                                        "the node"):
        await Mover(source_kube).move(target_kube, namespace)
    await assert_untouched(source_kube, target_kube, namespace)


async def test_kubeconfig_contexts_are_honoured(
        capi: Server, target: Server, namespace: str, source_kube: Client,
        target_kube: Client, tmp_path: Path) -> None:
    """Source and target as two contexts of one kubeconfig file, neither of them current."""
    src = yaml.safe_load(capi.kubeconfig.read_text())
    dst = yaml.safe_load(target.kubeconfig.read_text())
    merged = {"apiVersion": "v1", "kind": "Config", "current-context": "nowhere",
              "clusters": [{"name": "src", "cluster": src["clusters"][0]["cluster"]},
                           {"name": "dst", "cluster": dst["clusters"][0]["cluster"]}],
              "users": [{"name": "src", "user": src["users"][0]["user"]},
                        {"name": "dst", "user": dst["users"][0]["user"]}],
              "contexts": [{"name": "source", "context": {"cluster": "src", "user": "src",
                                                          "namespace": namespace}},
                           {"name": "dest", "context": {"cluster": "dst", "user": "dst"}}]}
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(merged))
    await provisioned_cluster(source_kube, namespace, "c1")
    runner = CliRunner()
    result = await asyncio.to_thread(runner.invoke, move_command, [
        "--kubeconfig", str(path), "--kubeconfig-context", "source",
        "--to-kubeconfig", str(path), "--to-kubeconfig-context", "nope"])
    assert result.exit_code == 1
    assert "kubeconfig has no context named 'nope'" in result.output
    await assert_untouched(source_kube, target_kube, namespace)
    # No -n: the namespace is the source context's.
    result = await asyncio.to_thread(runner.invoke, move_command, [
        "--kubeconfig", str(path), "--kubeconfig-context", "source",
        "--to-kubeconfig", str(path), "--to-kubeconfig-context", "dest"])
    assert result.exit_code == 0, result.output
    assert await get(target_kube, V2, "Cluster", "c1", namespace)
    assert await get(source_kube, V2, "Cluster", "c1", namespace) is None


def test_from_directory_refuses_files_that_are_not_objects(
        target: Server, tmp_path: Path) -> None:
    (tmp_path / "Cluster_ns_c1.yaml").write_text("apiVersion: v1\nkind: Secret\n"
                                                 "metadata: {name: x}\n")
    result = CliRunner().invoke(move_command, ["--from-directory", str(tmp_path),
                                               "--to-kubeconfig", str(target.kubeconfig)])
    assert result.exit_code == 1
    assert "is not a Kubernetes object written by a move: Secret x has no metadata.uid" \
        in result.output


def test_shipyard_has_the_move_command() -> None:
    from shipyard.cli.main import main

    result = CliRunner().invoke(main, ["move", "--help"])
    assert result.exit_code == 0, result.output
    for flag in ("--kubeconfig", "--kubeconfig-context", "--to-kubeconfig",
                 "--to-kubeconfig-context", "--namespace", "--dry-run", "--to-directory",
                 "--from-directory"):
        assert flag in result.output
