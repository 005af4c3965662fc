"""Client conformance, continued: every kubectl from 1.27 to 1.33 on the commands whose server
side is subtle.

- ``apply --server-side``: creating, a conflict with a field that client-side apply set (and
  ``--force-conflicts``), and the upgrade from client-side apply: kubectl's migration of
  managedFields plus the server's own handling of manager "kubectl" (it may take fields listed
  in the last-applied annotation without conflict and keeps that annotation current, as
  kube-apiserver's lastAppliedManager/lastAppliedUpdater do).
- ``edit`` with a scripted EDITOR: the change lands as a patch by manager ``kubectl-edit``.
- ``diff``: a server-side dry run (of the client-side apply patch, or of an apply with
  ``--server-side``); exit 0 and no output when nothing would change, exit 1 and a unified diff
  otherwise, and nothing persisted.
- ``wait`` for a jsonpath value, for ``condition=X=false``, and (1.31+) ``--for=create``.
- ``get --watch-only``: only changes after the start are printed.

Expected outputs were checked against upstream kube-apiserver 1.33 (tests/realkube.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_kubectl import Kubectl, cm_path, get, md_path, set_status, unique
from tests.integration.testdata import (
    MD_RESOURCE,
    install_crd,
    machinedeployment,
    manifest,
    to_yaml,
)
from tests.kube import Client, Server

pytestmark = pytest.mark.kubectl

ALL_KUBECTLS = ("1.27", "1.28", "1.29", "1.30", "1.31", "1.32", "1.33")


@pytest.fixture(scope="module")
def crd(server: Server) -> dict[str, Any]:
    return install_crd(server.client())


@pytest.fixture(params=ALL_KUBECTLS, ids=lambda v: f"kubectl-{v}")
def kubectl(
    request: pytest.FixtureRequest, server: Server, namespace: str, crd: dict[str, Any]
) -> Iterator[Kubectl]:
    k = Kubectl(server, request.param, namespace)
    try:
        yield k
    finally:
        k.stop()


def minor(kubectl: Kubectl) -> int:
    return int(kubectl.version.split(".")[1])


def managers(obj: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(m["manager"], m["operation"]): m["fieldsV1"] for m in obj["metadata"]["managedFields"]}


# ------------------------------------------------------------------------ apply --server-side


def test_apply_server_side_upgrades_client_side_apply(kubectl: Kubectl, api: Client) -> None:
    name = unique("settings")
    doc = manifest("configmap.yaml", name)
    assert kubectl.apply(doc) == f"configmap/{name} created"
    live = get(api, cm_path(kubectl.namespace, name))
    assert set(managers(live)) == {("kubectl-client-side-apply", "Update")}

    # Same manifest with one value changed: manager "kubectl" may take what last-applied lists.
    doc["data"]["cluster-name"] = "beta"
    out = kubectl.out("apply", "--server-side", "-f", "-", stdin=to_yaml(doc))
    assert out.strip() == f"configmap/{name} serverside-applied"
    live = get(api, cm_path(kubectl.namespace, name))
    assert live["data"] == {"cluster-name": "beta", "pod-cidr": "10.244.0.0/16"}
    owners = managers(live)
    # kubectl moved client-side apply's fields to its own Apply entry.
    assert set(owners) == {("kubectl", "Apply"), ("kubectl-last-applied", "Apply")}
    assert set(owners[("kubectl", "Apply")]["f:data"]) == {"f:cluster-name", "f:pod-cidr"}
    last = live["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
    assert last == json.dumps({
        "apiVersion": "v1", "data": doc["data"], "kind": "ConfigMap",
        "metadata": {"labels": doc["metadata"]["labels"], "name": name,
                     "namespace": kubectl.namespace},
    }, sort_keys=True, separators=(",", ":")) + "\n"

    # From now on a dropped key is pruned, as for any applier.
    del doc["data"]["pod-cidr"]
    kubectl.out("apply", "--server-side", "-f", "-", stdin=to_yaml(doc))
    assert get(api, cm_path(kubectl.namespace, name))["data"] == {"cluster-name": "beta"}


def test_apply_server_side_conflicts_with_client_side_field(kubectl: Kubectl,
                                                            api: Client) -> None:
    name = unique("settings")
    doc = manifest("configmap.yaml", name)
    kubectl.apply(doc)
    theirs = {**doc, "data": {"cluster-name": "gamma"}}
    err = kubectl.fail("apply", "--server-side", "--field-manager=platform", "-f", "-",
                       stdin=to_yaml(theirs))
    assert ('Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using v1:'
            ' .data.cluster-name') in err
    assert "--force-conflicts" in err
    assert get(api, cm_path(kubectl.namespace, name))["data"]["cluster-name"] == "alpha"

    out = kubectl.out("apply", "--server-side", "--field-manager=platform",
                      "--force-conflicts", "-f", "-", stdin=to_yaml(theirs))
    assert out.strip() == f"configmap/{name} serverside-applied"
    live = get(api, cm_path(kubectl.namespace, name))
    # kubectl then migrates client-side apply's ownership to the forcing manager, whose
    # configuration lacks the other key and the annotation: both are pruned (as upstream).
    assert live["data"] == {"cluster-name": "gamma"}
    assert not live["metadata"].get("annotations")  # kube drops the emptied map altogether
    assert managers(live) == {("platform", "Apply"): {
        "f:data": {"f:cluster-name": {}},
        "f:metadata": {"f:labels": {"f:app.kubernetes.io/part-of": {}}},
    }}


def test_apply_server_side_custom_resource(kubectl: Kubectl, api: Client) -> None:
    name = unique("md")
    doc = machinedeployment(name)
    out = kubectl.out("apply", "--server-side", "-f", "-", stdin=to_yaml(doc))
    assert out.strip() == f"{MD_RESOURCE}/{name} serverside-applied"
    live = get(api, md_path(kubectl.namespace, name))
    assert set(managers(live)) == {("kubectl", "Apply")}
    # A scaler's Update then owns replicas: a re-apply with another value conflicts.
    resp = api.patch(md_path(kubectl.namespace, name) + "?fieldManager=scaler",
                     {"spec": {"replicas": 5}})
    assert resp.status == 200, resp.body
    doc["spec"]["replicas"] = 3
    err = kubectl.fail("apply", "--server-side", "-f", "-", stdin=to_yaml(doc))
    assert 'conflict with "scaler" using conformance.shipyard.test/v1beta1: .spec.replicas' in err
    kubectl.out("apply", "--server-side", "--force-conflicts", "-f", "-", stdin=to_yaml(doc))
    assert get(api, md_path(kubectl.namespace, name))["spec"]["replicas"] == 3


# -------------------------------------------------------------------------------------- edit


@pytest.fixture
def editor(tmp_path: Path) -> Path:
    """An EDITOR that rewrites the value of `cluster-name:`/`replicas:` lines in place."""
    script = tmp_path / "editor.sh"
    script.write_text(
        "#!/bin/sh\n"
        "sed -i -e 's/^  cluster-name: alpha$/  cluster-name: edited/'"
        " -e 's/^  replicas: 2$/  replicas: 7/' \"$1\"\n"
    )
    script.chmod(0o755)
    return script


def test_edit_with_scripted_editor(kubectl: Kubectl, api: Client, editor: Path) -> None:
    name = unique("settings")
    kubectl.apply(manifest("configmap.yaml", name))
    env = {"EDITOR": str(editor), "KUBE_EDITOR": str(editor)}
    proc = kubectl.server.kubectl("-n", kubectl.namespace, "edit", f"configmap/{name}",
                                  version=kubectl.version, env=env)
    assert proc.stdout.strip() == f"configmap/{name} edited"
    live = get(api, cm_path(kubectl.namespace, name))
    assert live["data"]["cluster-name"] == "edited"
    assert managers(live)[("kubectl-edit", "Update")]["f:data"] == {"f:cluster-name": {}}

    md = unique("md")
    kubectl.apply(machinedeployment(md))
    proc = kubectl.server.kubectl("-n", kubectl.namespace, "edit", f"tmd/{md}",
                                  version=kubectl.version, env=env)
    assert proc.stdout.strip() == f"{MD_RESOURCE}/{md} edited"
    live = get(api, md_path(kubectl.namespace, md))
    assert live["spec"]["replicas"] == 7
    assert live["metadata"]["generation"] == 2
    assert ("kubectl-edit", "Update") in managers(live)


# -------------------------------------------------------------------------------------- diff


def test_diff(kubectl: Kubectl, api: Client) -> None:
    name = unique("settings")
    doc = manifest("configmap.yaml", name)
    kubectl.apply(doc)
    before = get(api, cm_path(kubectl.namespace, name))

    same = kubectl.run("diff", "-f", "-", stdin=to_yaml(doc), check=False)
    assert (same.returncode, same.stdout) == (0, ""), same.stderr

    changed = {**doc, "data": {**doc["data"], "cluster-name": "beta"}}
    for extra in ((), ("--server-side",)):
        proc = kubectl.run("diff", *extra, "-f", "-", stdin=to_yaml(changed), check=False)
        assert proc.returncode == 1, proc.stderr
        lines = proc.stdout.splitlines()
        assert "-  cluster-name: alpha" in lines
        assert "+  cluster-name: beta" in lines
        assert not any(line.startswith(("-  resourceVersion", "+  resourceVersion"))
                       for line in lines)

    fresh = unique("settings")
    proc = kubectl.run("diff", "-f", "-", stdin=to_yaml(manifest("configmap.yaml", fresh)),
                       check=False)
    assert proc.returncode == 1, proc.stderr
    assert f"+  name: {fresh}" in proc.stdout.splitlines()

    # Dry runs only: nothing changed, nothing created.
    assert get(api, cm_path(kubectl.namespace, name)) == before
    assert api.get(cm_path(kubectl.namespace, fresh)).status == 404


# -------------------------------------------------------------------------------------- wait


def test_wait_for_jsonpath(kubectl: Kubectl, api: Client) -> None:
    name = unique("md")
    kubectl.apply(machinedeployment(name))
    waiter = kubectl.start("wait", "--for=jsonpath={.status.phase}=Running", f"tmd/{name}",
                           "--timeout=60s")
    set_status(api, kubectl.namespace, name, {"phase": "Provisioning"})
    set_status(api, kubectl.namespace, name, {"phase": "Running"})
    assert waiter.next() == f"{MD_RESOURCE}/{name} condition met"
    assert waiter.proc.wait(timeout=30) == 0
    err = kubectl.fail("wait", "--for=jsonpath={.status.phase}=Failed", f"tmd/{name}",
                       "--timeout=0")
    # 1.33 says "condition not met for machinedeployments/<name>"; older ones time out.
    assert f"condition not met for machinedeployments/{name}" in err or "timed out" in err


def test_wait_for_condition_false(kubectl: Kubectl, api: Client) -> None:
    name = unique("md")
    kubectl.apply(machinedeployment(name))
    target = f"tmd/{name}"
    waiter = kubectl.start("wait", "--for=condition=Ready=false", target, "--timeout=60s")
    set_status(api, kubectl.namespace, name, {"conditions": [{
        "type": "Ready", "status": "False", "reason": "WaitingForReplicas",
        "lastTransitionTime": "2024-01-01T00:00:00Z"}]})
    assert waiter.next() == f"{MD_RESOURCE}/{name} condition met"
    assert waiter.proc.wait(timeout=30) == 0
    kubectl.fail("wait", "--for=condition=Ready=true", target, "--timeout=0")


def test_wait_for_create(kubectl: Kubectl, api: Client) -> None:
    """kubectl polls with GETs until the object exists (no watch)."""
    if minor(kubectl) < 31:
        pytest.skip("`wait --for=create` came with kubectl 1.31")
    name = unique("settings")
    waiter = kubectl.start("wait", "--for=create", f"configmap/{name}", "--timeout=60s")
    kubectl.apply(manifest("configmap.yaml", name))
    assert waiter.next() == f"configmap/{name} condition met"
    assert waiter.proc.wait(timeout=30) == 0


# --------------------------------------------------------------------------- get --watch-only


def test_get_watch_only(kubectl: Kubectl, api: Client) -> None:
    existing = unique("existing")
    kubectl.apply(manifest("configmap.yaml", existing))
    watch = kubectl.start("get", "configmaps", "--watch-only", verbose=True)
    watch.wait_watching()
    name = unique("settings")
    kubectl.apply(manifest("configmap.yaml", name))
    assert watch.next().split() == ["NAME", "DATA", "AGE"]
    assert watch.next().split()[:2] == [name, "2"]  # not `existing`: only what changes
    assert api.patch(cm_path(kubectl.namespace, existing), {"data": {"x": "y"}}).status == 200
    assert watch.next().split()[:2] == [existing, "3"]
    assert api.delete(cm_path(kubectl.namespace, name)).status == 200
    assert watch.next().split()[:2] == [name, "2"]


def test_get_watch_only_events_as_json(kubectl: Kubectl, api: Client) -> None:
    watch = kubectl.start("get", "configmaps", "--watch-only", "--output-watch-events",
                          "-o", "json", verbose=True)
    watch.wait_watching()
    name = unique("settings")
    kubectl.apply(manifest("configmap.yaml", name))
    text = ""
    while True:  # one pretty-printed JSON document per event
        text += watch.next() + "\n"
        try:
            event = json.loads(text)
            break
        except ValueError:
            continue
    assert event["type"] == "ADDED"
    assert event["object"]["metadata"]["name"] == name
    assert event["object"]["kind"] == "ConfigMap"


# ---------------------------------------------------------------- apply on built-in kinds


def test_apply_changes_a_pod_and_a_crd(kubectl: Kubectl, api: Client) -> None:
    """A second `kubectl apply` of a built-in kind is a strategic merge patch: a Pod's
    containers merge by name (the server's defaults on the container stay), a
    CustomResourceDefinition's lists are replaced whole."""
    pod_name = unique("pod")
    pod: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod_name, "labels": {"v": "1"}},
        "spec": {"containers": [{"name": "main", "image": "busybox:1"}]}}
    assert kubectl.apply(pod) == f"pod/{pod_name} created"
    pod["metadata"]["labels"]["v"] = "2"
    pod["spec"]["containers"][0]["image"] = "busybox:2"
    assert kubectl.apply(pod) == f"pod/{pod_name} configured"
    live = get(api, f"/api/v1/namespaces/{kubectl.namespace}/pods/{pod_name}")
    assert live["metadata"]["labels"] == {"v": "2"}
    [main] = live["spec"]["containers"]
    assert main["image"] == "busybox:2"
    assert main["terminationMessagePath"] == "/dev/termination-log"  # merged, not replaced

    group = f"{unique('apply')}.shipyard.test"
    version: dict[str, Any] = {
        "name": "v1", "served": True, "storage": True,
        "schema": {"openAPIV3Schema": {"type": "object",
                                       "x-kubernetes-preserve-unknown-fields": True}}}
    crd: dict[str, Any] = {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"probes.{group}"},
        "spec": {"group": group, "scope": "Namespaced", "versions": [version],
                 "names": {"plural": "probes", "singular": "probe", "kind": "Probe"}}}
    assert kubectl.apply(crd) == f"customresourcedefinition.apiextensions.k8s.io/probes.{group} " \
        "created"
    try:
        crd["metadata"]["labels"] = {"tier": "gold"}
        crd["spec"]["versions"] = [{**version, "storage": False},
                                   {**version, "name": "v2"}]
        assert kubectl.apply(crd).endswith("configured")
        live = get(api, f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/probes.{group}")
        assert live["metadata"]["labels"] == {"tier": "gold"}
        assert [v["name"] for v in live["spec"]["versions"]] == ["v1", "v2"]
        assert [v["storage"] for v in live["spec"]["versions"]] == [False, True]
    finally:
        kubectl.run("delete", "crd", f"probes.{group}", "--wait=false", check=False)


# ------------------------------------------------------------------------------------ auth


def test_auth_can_i_and_whoami(kubectl: Kubectl) -> None:
    """Shipyard's server authorizes every authenticated user for everything, and says so to
    `kubectl auth` (protobuf reviews from 1.33, JSON from older kubectls)."""
    assert kubectl.out("auth", "can-i", "create", "machinedeployments.cluster.x-k8s.io") \
        .strip() == "yes"
    assert kubectl.out("auth", "can-i", "get", "/healthz").strip() == "yes"
    listed = kubectl.out("auth", "can-i", "--list")
    assert listed.splitlines()[1].split()[0] == "*.*"
    if minor(kubectl) >= 28:  # authentication.k8s.io/v1 SelfSubjectReview; 1.27 wants beta
        who = kubectl.out("auth", "whoami")
        assert "shipyard-admin" in who and "system:authenticated" in who
