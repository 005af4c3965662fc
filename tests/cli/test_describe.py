"""``shipyard describe cluster``: clusterctl's v1beta2 tree, on a Cluster the real controllers
converged (a MachineDeployment of 3 on the in-memory provider) and on hand-made objects for
the cases a healthy cluster never shows (a failing Machine, multi-line messages)."""

from __future__ import annotations

import asyncio
import os
import pty
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from tests.kube import Server
from tests.providers.harness import Env, capi, running
from tests.scenarios.conftest import converged, create_all, machine_deployment, workload_cluster

from shipyard.cli.describe import describe
from shipyard.describe import Node, ObjectTree, TreeOptions, human_duration, render
from shipyard.describe.render import format_paragraph

__all__ = ["capi"]

ANSI = re.compile(r"\x1b\[[0-9;]*m")
HEADER = ["NAME", "REPLICAS", "AVAILABLE", "READY", "UP TO DATE", "STATUS", "REASON", "SINCE",
          "MESSAGE"]


def table(output: str) -> list[dict[str, str]]:
    """Rows of the printed table as {column: text}, cut at the header's column offsets."""
    lines = output.rstrip("\n").split("\n")
    header = lines[0]
    starts = [header.index(h) for h in HEADER]
    assert starts == sorted(starts), header
    rows = []
    for line in lines[1:]:
        cells = {}
        for i, h in enumerate(HEADER):
            end = starts[i + 1] if i + 1 < len(HEADER) else len(line)
            cell = line[starts[i]:end]
            cells[h] = cell.rstrip() if h == "NAME" else cell.strip()
        rows.append(cells)
    return rows


def describe_process(server: Server, *args: str, tty: bool,
                     env: dict[str, str] | None = None) -> str:
    """The command as a separate process whose stdout is a pseudo-terminal or a pipe."""
    argv = [sys.executable, "-c", "from shipyard.cli.describe import describe; describe()",
            "cluster", *args, "--kubeconfig", str(server.kubeconfig)]
    full_env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"} | (env or {})
    if not tty:
        done = subprocess.run(argv, capture_output=True, text=True, env=full_env, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen(argv, stdout=follower, stderr=subprocess.DEVNULL, env=full_env)
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the other side closed
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert proc.wait(timeout=60) == 0
        return b"".join(chunks).decode().replace("\r\n", "\n")
    finally:
        os.close(leader)


def describe_cmd(server: Server, *args: str) -> Result:
    return CliRunner().invoke(describe, ["cluster", *args, "--kubeconfig",
                                         str(server.kubeconfig)])


@pytest.fixture
async def cluster(capi: Server, namespace: str) -> AsyncIterator[Env]:
    async with running(capi, namespace) as env:
        await create_all(env.kube, namespace, [*workload_cluster(),
                                               machine_deployment("md", 3)])
        for _ in range(600):
            if await converged(env.kube, namespace, "md", 3):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the MachineDeployment did not converge")
        yield env


async def test_the_tree_of_a_converged_cluster(capi: Server, cluster: Env) -> None:
    ns = cluster.namespace
    result = await asyncio.to_thread(describe_cmd, capi, "c1", "-n", ns)
    assert result.exit_code == 0, result.output
    assert not ANSI.search(result.output), "colour when not on a terminal"
    assert result.output.split("\n")[0].split() == \
        ["NAME", "REPLICAS", "AVAILABLE", "READY", "UP", "TO", "DATE", "STATUS", "REASON",
         "SINCE", "MESSAGE"]
    rows = table(result.output)
    names = [r["NAME"] for r in rows]
    assert names == ["Cluster/c1", "├─ClusterInfrastructure - InMemoryCluster/c1", "└─Workers",
                     "  └─MachineDeployment/md", "    └─3 Machines..."]
    assert rows[0]["REPLICAS"] == "3/3" and rows[0]["AVAILABLE"] == "3"
    assert rows[1]["STATUS"] == "True" and rows[1]["REASON"] == "Ready"
    md, group = rows[3], rows[4]
    assert (md["REPLICAS"], md["AVAILABLE"], md["READY"], md["UP TO DATE"]) == \
        ("3/3", "3", "3", "3")
    assert (md["STATUS"], md["REASON"]) == ("True", "Available")
    assert (group["AVAILABLE"], group["READY"], group["UP TO DATE"]) == ("3", "3", "3")
    assert (group["STATUS"], group["REASON"]) == ("True", "Ready")
    machines = sorted(m["metadata"]["name"] for m in
                      (await cluster.kube.list("cluster.x-k8s.io/v1beta2", "Machine", ns))["items"])
    assert group["MESSAGE"] == f"See {machines[0]}, {machines[1]}, ..."
    assert re.fullmatch(r"\d+s", group["SINCE"])

    # Without grouping every Machine has its row; with MachineSets they sit under their set;
    # --echo shows each Machine's infrastructure and bootstrap config.
    result = await asyncio.to_thread(describe_cmd, capi, "c1", "-n", ns, "--grouping=false",
                                     "--show-machinesets", "--echo", "--show-templates")
    assert result.exit_code == 0, result.output
    rows = table(result.output)
    machine_rows = [r for r in rows if "Machine/" in r["NAME"] and "Infra" not in r["NAME"]]
    assert [r["NAME"].split("Machine/")[1] for r in machine_rows] == machines
    assert all((r["REPLICAS"], r["AVAILABLE"], r["STATUS"], r["REASON"]) ==
               ("1", "1", "True", "Ready") for r in machine_rows)
    assert machine_rows[0]["NAME"].startswith("    │ ├─Machine/")
    assert machine_rows[-1]["NAME"].startswith("    │ └─Machine/")
    (ms,) = [r for r in rows if "MachineSet/" in r["NAME"]]
    assert ms["NAME"].startswith("    ├─MachineSet/md-") and ms["REPLICAS"] == "3/3"
    assert ms["STATUS"] == ""  # a MachineSet shows counters only, as upstream
    assert sum("MachineInfrastructure - InMemoryMachine/" in r["NAME"] for r in rows) == 3
    assert sum("BootstrapConfig - InMemoryBootstrapConfig/" in r["NAME"] for r in rows) == 3
    assert rows[-2]["NAME"] == \
        "      ├─BootstrapConfigTemplate - InMemoryBootstrapConfigTemplate/workers"
    assert rows[-1]["NAME"] == \
        "      └─MachineInfrastructureTemplate - InMemoryMachineTemplate/workers"

    # --grouping alone (pflag's bare boolean) keeps grouping on.
    result = await asyncio.to_thread(describe_cmd, capi, "c1", "-n", ns, "--grouping")
    assert "3 Machines..." in result.output


async def test_show_conditions_and_colour(capi: Server, cluster: Env) -> None:
    ns = cluster.namespace
    result = await asyncio.to_thread(describe_cmd, capi, "c1", "-n", ns,
                                     "--show-conditions", "all")
    assert result.exit_code == 0, result.output
    rows = table(result.output)
    assert rows[0]["NAME"] == "Cluster/c1" and rows[0]["STATUS"] == ""
    conditions = {r["NAME"].split("─")[-1]: r for r in rows[1:] if r["NAME"].startswith("│ ")}
    for type_ in ("Available", "Ready", "InfrastructureReady", "WorkersAvailable", "Paused"):
        assert type_ in conditions, sorted(conditions)
    assert (conditions["Paused"]["STATUS"], conditions["Paused"]["REASON"]) == \
        ("False", "NotPaused")
    assert (conditions["WorkersAvailable"]["STATUS"]) == "True"
    md_at = next(i for i, r in enumerate(rows) if r["NAME"].endswith("MachineDeployment/md"))
    md_conditions = [r["NAME"] for r in rows[md_at + 1:] if "Machines..." not in r["NAME"]]
    assert md_conditions[0].startswith("    │           ├─")  # the group follows: a pipe
    assert {n.split("─")[-1] for n in md_conditions} >= {"Available", "RollingOut", "ScalingUp"}

    # Only the non-zero conditions of one kind ('+'): on a healthy MachineDeployment, the
    # Available one (always shown) and nothing else in its normal state.
    result = await asyncio.to_thread(describe_cmd, capi, "c1", "-n", ns,
                                     "--show-conditions", "MachineDeployment+")
    rows = table(result.output)
    md_at = next(i for i, r in enumerate(rows) if r["NAME"].endswith("MachineDeployment/md"))
    assert rows[md_at + 1]["NAME"].endswith("└─Available")
    assert rows[0]["STATUS"] != ""  # the Cluster was not selected

    forced = await asyncio.to_thread(describe_cmd, capi, "c1", "-n", ns, "--color")
    assert forced.exit_code == 0
    assert "\x1b[32mTrue\x1b[0m" in forced.output  # green: Ready machines
    assert "\x1b[90m├─\x1b[0m" in forced.output  # gray tree lines
    plain = (await asyncio.to_thread(describe_cmd, capi, "c1", "-n", ns, "--no-color")).output

    def without_since(output: str) -> list[dict[str, str]]:
        return [{k: v for k, v in row.items() if k != "SINCE"} for row in table(output)]

    assert without_since(ANSI.sub("", forced.output)) == without_since(plain)

    # By default: colour on a terminal (unless NO_COLOR is set), none into a pipe.
    on_tty = await asyncio.to_thread(describe_process, capi, "c1", "-n", ns, tty=True)
    assert "\x1b[32mTrue\x1b[0m" in on_tty and "Cluster/" in on_tty
    piped = await asyncio.to_thread(describe_process, capi, "c1", "-n", ns, tty=False)
    assert "Cluster/c1" in piped and not ANSI.search(piped)
    no_color = await asyncio.to_thread(describe_process, capi, "c1", "-n", ns, tty=True,
                                       env={"NO_COLOR": "1"})
    assert "Cluster/c1" in no_color and not ANSI.search(no_color)


async def test_bad_input(capi: Server, namespace: str, tmp_path: Path) -> None:
    result = await asyncio.to_thread(describe_cmd, capi, "nope", "-n", namespace)
    assert result.exit_code == 1
    assert f'Cluster "nope" not found in namespace "{namespace}"' in result.output

    nowhere = tmp_path / "nowhere"
    nowhere.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1', "
        "insecure-skip-tls-verify: true}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\nusers: [{name: u, user: {}}]\n")
    result = await asyncio.to_thread(CliRunner().invoke, describe,
                                     ["cluster", "c1", "--kubeconfig", str(nowhere)])
    assert result.exit_code == 1
    assert "cannot reach the management cluster https://127.0.0.1:1" in result.output

    result = await asyncio.to_thread(CliRunner().invoke, describe,
                                     ["cluster", "c1", "--kubeconfig", str(tmp_path / "none")])
    assert result.exit_code == 1 and "does not exist" in result.output
    result = CliRunner().invoke(describe, ["cluster", "c1", "--grouping=maybe"])
    assert result.exit_code == 2 and "maybe" in result.output


# ----------------------------------------------------------------------------- the model

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def cond(type_: str, status: str, reason: str, message: str = "",
         at: str = "2026-01-01T11:59:00Z") -> dict[str, Any]:
    return {"type": type_, "status": status, "reason": reason, "message": message,
            "lastTransitionTime": at}


def machine(name: str, ready: bool, message: str = "") -> Node:
    state = "True" if ready else "False"
    reason = "Ready" if ready else "NotReady"
    return Node.of({"kind": "Machine", "metadata": {"name": name, "uid": name},
                    "status": {"conditions": [
                        cond("Ready", state, reason, message),
                        cond("Available", state, "Available" if ready else "NotAvailable"),
                        cond("UpToDate", "True", "UpToDate")]}})


def md_tree(grouping: bool) -> ObjectTree:
    root = Node.of({"kind": "Cluster", "metadata": {"name": "c", "uid": "c"}})
    tree = ObjectTree(root, TreeOptions(grouping=grouping))
    workers = Node.virtual("WorkerGroup", "Workers")
    tree.add(root, workers)
    md = Node.of({"kind": "MachineDeployment", "metadata": {"name": "md", "uid": "md"},
                  "spec": {"replicas": 3}, "status": {"replicas": 3}})
    tree.add(workers, md, grouping=True)
    tree.add(md, machine("m-a", True))
    tree.add(md, machine("m-b", False, "* NodeHealthy: Node not ready\n* Waiting for a node "
                                       "to come up on the provider infrastructure"))
    tree.add(md, machine("m-c", True))
    return tree


def test_machines_in_the_same_state_are_grouped_and_the_odd_one_out_is_not() -> None:
    rows = table(render(md_tree(grouping=True), now=NOW))
    assert [r["NAME"] for r in rows] == [
        "Cluster/c", "└─Workers", "  └─MachineDeployment/md", "    ├─2 Machines...",
        "    └─Machine/m-b", ""]
    assert rows[3]["MESSAGE"] == "See m-a, m-c"
    assert (rows[3]["AVAILABLE"], rows[3]["READY"], rows[3]["UP TO DATE"]) == ("2", "2", "2")
    assert (rows[4]["STATUS"], rows[4]["REASON"], rows[4]["SINCE"]) == ("False", "NotReady", "60s")
    # A multi-line message continues on rows of its own.
    assert [r["MESSAGE"] for r in rows[4:]] == [
        "* NodeHealthy: Node not ready",
        "* Waiting for a node to come up on the provider infrastructure"]

    ungrouped = table(render(md_tree(grouping=False), now=NOW))
    # The continuation row of m-b's message carries the line down to m-c.
    assert [r["NAME"] for r in ungrouped[3:]] == \
        ["    ├─Machine/m-a", "    ├─Machine/m-b", "    │", "    └─Machine/m-c"]


def test_red_for_a_failing_condition_and_green_for_a_quiet_negative_one() -> None:
    root = Node.of({"kind": "Cluster", "metadata": {"name": "c", "uid": "c"}, "status": {
        "conditions": [cond("Available", "False", "NotAvailable"),
                       cond("Paused", "False", "NotPaused"),
                       cond("ScalingUp", "True", "ScalingUp", "Scaling up from 1 to 3"),
                       cond("RemoteConnectionProbe", "Unknown", "Probing")]}})
    tree = ObjectTree(root, TreeOptions(show_conditions="Cluster"))
    out = render(tree, color=True, now=NOW)
    assert "\x1b[31mFalse\x1b[0m" in out  # Available=False
    assert "\x1b[32mFalse\x1b[0m" in out  # Paused=False is its normal state
    assert "\x1b[31mTrue\x1b[0m" in out  # ScalingUp=True is not
    assert "\x1b[33mUnknown\x1b[0m" in out
    nonzero = ObjectTree(Node.of(root.obj or {}), TreeOptions(show_conditions="Cluster+"))
    shown = [r["NAME"].split("─")[-1] for r in table(render(nonzero, now=NOW))[1:]]
    assert shown == ["Available", "ScalingUp", "RemoteConnectionProbe"]


def test_durations_and_paragraphs_as_kubernetes_prints_them() -> None:
    assert [human_duration(s) for s in (-5, 0, 45, 119, 200, 900, 4 * 3600 + 180,
                                         30 * 3600, 3 * 86400 + 4 * 3600, 400 * 86400)] == \
        ["<invalid>", "0s", "45s", "119s", "3m20s", "15m", "4h3m", "30h", "3d4h", "400d"]
    text = "* " + " ".join(["word"] * 30)
    wrapped = format_paragraph(text, 40).split("\n")
    assert all(len(line) < 40 for line in wrapped)
    assert all(line.startswith("  word") for line in wrapped[1:])


async def test_a_control_plane_provider_and_a_machine_being_deleted(capi: Server,
                                                                    namespace: str) -> None:
    from tests.providers.harness import install_crd
    from tests.providers.harness import machine as machine_manifest

    from shipyard.bootstrap.kubeadm import types as kubeadm_types
    from shipyard.client import Client
    from shipyard.controlplane.kubeadm import types as kcp_types

    api = capi.client()
    for manifest in [*kubeadm_types.crd_manifests(), *kcp_types.crd_manifests()]:
        install_crd(api, manifest)
    api.pool.clear()
    ns = namespace
    cp = machine_manifest("cp-0", "c1", control_plane=True)
    cp["metadata"]["labels"]["cluster.x-k8s.io/cluster-name"] = "c1"
    cp["metadata"]["finalizers"] = ["test.shipyard.dev/hold"]
    async with Client.from_kubeconfig(capi.kubeconfig) as kube:
        await create_all(kube, ns, [
            {"apiVersion": kcp_types.API_VERSION, "kind": "KubeadmControlPlane",
             "metadata": {"name": "cp"},
             "spec": {"replicas": 1, "version": "v1.33.0",
                      "machineTemplate": {"spec": {"infrastructureRef": {
                          "apiGroup": "infrastructure.cluster.x-k8s.io",
                          "kind": "InMemoryMachineTemplate", "name": "cp"}}},
                      "kubeadmConfigSpec": {"clusterConfiguration": {"apiServer": {}}}}},
            {"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster",
             "metadata": {"name": "c1"},
             "spec": {"controlPlaneRef": {"apiGroup": kcp_types.GROUP,
                                          "kind": "KubeadmControlPlane", "name": "cp"}}},
            cp])
        got = await kube.get(kcp_types.API_VERSION, "KubeadmControlPlane", "cp", ns)
        got["status"] = {"replicas": 1, "readyReplicas": 1, "availableReplicas": 0,
                         "upToDateReplicas": 1, "conditions": [
                             cond("Available", "False", "NotAvailable",
                                  "etcd cluster has no members")]}
        await kube.update_status(got)
        await kube.delete("cluster.x-k8s.io/v1beta2", "Machine", "cp-0", ns)
        try:
            result = await asyncio.to_thread(describe_cmd, capi, "c1", "-n", ns)
        finally:
            await kube.patch("cluster.x-k8s.io/v1beta2", "Machine", "cp-0",
                             {"metadata": {"finalizers": None}}, ns)
    assert result.exit_code == 0, result.output
    rows = table(result.output)
    assert [r["NAME"] for r in rows] == ["Cluster/c1", "└─ControlPlane - KubeadmControlPlane/cp",
                                         "  └─!! DELETED !! Machine/cp-0"]
    control_plane = rows[1]
    assert (control_plane["REPLICAS"], control_plane["AVAILABLE"], control_plane["READY"],
            control_plane["UP TO DATE"]) == ("1/1", "0", "1", "1")
    assert (control_plane["STATUS"], control_plane["REASON"], control_plane["MESSAGE"]) == \
        ("False", "NotAvailable", "etcd cluster has no members")
    assert (rows[2]["REPLICAS"], rows[2]["AVAILABLE"], rows[2]["STATUS"]) == ("1", "0", "")
