"""The built-in kinds: discovery facts as kube-apiserver lists them, structural schemas the CRD
machinery accepts and prunes with, and printers with kubectl's columns."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from shipyard.apiserver.builtins import BUILTIN_PRINTERS, BUILTINS
from shipyard.apiserver.resources import ResourceInfo
from shipyard.apiserver.schema.pruning import prune
from shipyard.apiserver.schema.structural import check_structural
from shipyard.apiserver.tables import TablePrinter

NOW = datetime(2025, 1, 2, 3, 0, 0, tzinfo=UTC)
BY_KEY = {(i.group, i.resource): i for i in BUILTINS}


def info(group: str, resource: str) -> ResourceInfo:
    return BY_KEY[(group, resource)]


@pytest.mark.parametrize(
    ("group", "resource", "kind", "namespaced", "short", "status"),
    [
        ("", "namespaces", "Namespace", False, ("ns",), True),
        ("", "secrets", "Secret", True, (), False),
        ("", "configmaps", "ConfigMap", True, ("cm",), False),
        ("", "events", "Event", True, ("ev",), False),
        ("", "nodes", "Node", False, ("no",), True),
        ("", "serviceaccounts", "ServiceAccount", True, ("sa",), False),
        ("coordination.k8s.io", "leases", "Lease", True, (), False),
        ("events.k8s.io", "events", "Event", True, ("ev",), False),
        ("apiextensions.k8s.io", "customresourcedefinitions", "CustomResourceDefinition", False,
         ("crd", "crds"), True),
    ],
)
def test_discovery_facts_match_kube(
    group: str, resource: str, kind: str, namespaced: bool, short: tuple[str, ...], status: bool
) -> None:
    i = info(group, resource)
    assert (i.version, i.kind, i.list_kind, i.singular) == ("v1", kind, kind + "List", kind.lower())
    assert i.namespaced is namespaced
    assert i.short_names == short
    assert i.status is status
    assert i.builtin is True
    assert i.scale is None
    assert "all" not in i.categories


def test_only_namespaces_lack_deletecollection_and_reviews_are_create_only() -> None:
    full = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
    for i in BUILTINS:
        if i.extra.get("review"):
            assert i.verbs == ("create",), i.resource
            continue
        expected = tuple(v for v in full if v != "deletecollection") if i.resource == "namespaces" \
            else full
        assert i.verbs == expected, i.resource


def test_crd_is_in_api_extensions_category() -> None:
    assert info("apiextensions.k8s.io", "customresourcedefinitions").categories == (
        "api-extensions",
    )


@pytest.mark.parametrize("i", BUILTINS, ids=lambda i: f"{i.group or 'core'}/{i.resource}")
def test_schemas_are_structural(i: ResourceInfo) -> None:
    assert i.schema is not None
    assert check_structural(i.schema, "schema") == []


def test_pruning_keeps_upstream_fields_and_drops_unknown_ones() -> None:
    node = {
        "apiVersion": "v1", "kind": "Node", "metadata": {"name": "n", "labels": {"a": "b"}},
        "spec": {"providerID": "x://1", "taints": [{"key": "k", "effect": "NoSchedule"}],
                 "bogus": 1},
        "status": {
            "capacity": {"cpu": "2", "pods": 110},
            "conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": "t"}],
            "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}],
            "nodeInfo": {"kubeletVersion": "v1.33.0", "swap": {"capacity": 1}},
        },
    }
    kept = copy.deepcopy(node)
    assert prune(node, info("", "nodes").schema) == ["spec.bogus"]
    del kept["spec"]["bogus"]
    assert node == kept

    crd: dict[str, Any] = {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "machines.cluster.x-k8s.io"},
        "spec": {"group": "cluster.x-k8s.io", "scope": "Namespaced",
                 "names": {"plural": "machines", "kind": "Machine"},
                 "versions": [{"name": "v1beta2", "served": True, "storage": True,
                               "schema": {"openAPIV3Schema": {"type": "object",
                                                              "properties": {"x": {}}}},
                               "subresources": {"status": {}}}]},
    }
    kept = copy.deepcopy(crd)
    assert prune(crd, info("apiextensions.k8s.io", "customresourcedefinitions").schema) == []
    assert crd == kept


def test_list_merge_keys_for_strategic_merge_patch() -> None:
    sa = info("", "serviceaccounts").schema
    assert sa is not None
    secrets = sa["properties"]["secrets"]
    assert secrets["x-kubernetes-patch-merge-key"] == "name"
    assert secrets["x-kubernetes-patch-strategy"] == "merge"
    node = info("", "nodes").schema
    assert node is not None
    conditions = node["properties"]["status"]["properties"]["conditions"]
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]


@pytest.mark.parametrize(
    ("group", "resource", "columns"),
    [
        ("", "namespaces", ["Name", "Status", "Age"]),
        ("", "secrets", ["Name", "Type", "Data", "Age"]),
        ("", "configmaps", ["Name", "Data", "Age"]),
        ("", "events", ["Last Seen", "Type", "Reason", "Object", "Subobject", "Source", "Message",
                        "First Seen", "Count", "Name"]),
        ("", "nodes", ["Name", "Status", "Roles", "Age", "Version", "Internal-IP", "External-IP",
                       "OS-Image", "Kernel-Version", "Container-Runtime"]),
        ("", "serviceaccounts", ["Name", "Secrets", "Age"]),
        ("coordination.k8s.io", "leases", ["Name", "Holder", "Age"]),
        ("apiextensions.k8s.io", "customresourcedefinitions", ["Name", "Created At"]),
    ],
)
def test_printer_columns_match_kubectl(group: str, resource: str, columns: list[str]) -> None:
    printer = BUILTIN_PRINTERS[(group, resource)]
    assert isinstance(printer, TablePrinter)
    assert [c.name for c in printer.columns] == columns
    assert info(group, resource).extra["printer"] is printer


def test_event_wide_columns_have_priority_one() -> None:
    printer = BUILTIN_PRINTERS[("", "events")]
    wide = {c.name for c in printer.columns if c.priority == 1}
    assert wide == {"Subobject", "Source", "First Seen", "Count", "Name"}


def cells(group: str, resource: str, obj: dict[str, Any]) -> list[Any]:
    return BUILTIN_PRINTERS[(group, resource)].cells(obj, NOW)


def test_simple_printers() -> None:
    created = {"name": "x", "creationTimestamp": "2025-01-02T02:55:00Z"}
    assert cells("", "namespaces", {"metadata": created, "status": {"phase": "Active"}}) == [
        "x", "Active", "5m"]
    assert cells("", "secrets", {"metadata": created, "type": "Opaque",
                                 "data": {"a": "", "b": ""}}) == ["x", "Opaque", 2, "5m"]
    assert cells("", "configmaps", {"metadata": created, "data": {"a": "1"},
                                    "binaryData": {"b": ""}}) == ["x", 2, "5m"]
    assert cells("", "serviceaccounts", {"metadata": created}) == ["x", 0, "5m"]
    assert cells("coordination.k8s.io", "leases", {"metadata": created, "spec": {}}) == [
        "x", "<unknown>", "5m"]
    assert cells("coordination.k8s.io", "leases",
                 {"metadata": created, "spec": {"holderIdentity": "me"}})[1] == "me"
    assert cells("apiextensions.k8s.io", "customresourcedefinitions", {"metadata": created}) == [
        "x", "2025-01-02T02:55:00Z"]
    assert cells("", "namespaces", {"metadata": {"name": "y"}}) == ["y", "", "<unknown>"]


def test_node_printer() -> None:
    node = {
        "metadata": {"name": "n1", "creationTimestamp": "2025-01-01T03:00:00Z",
                     "labels": {"node-role.kubernetes.io/control-plane": "",
                                "node-role.kubernetes.io/worker": "",
                                "kubernetes.io/role": "legacy"}},
        "spec": {"unschedulable": True},
        "status": {"conditions": [{"type": "MemoryPressure", "status": "False"},
                                  {"type": "Ready", "status": "False"}],
                   "addresses": [{"type": "InternalIP", "address": "10.0.0.5"}],
                   "nodeInfo": {"kubeletVersion": "v1.33.1", "osImage": "Debian"}},
    }
    assert cells("", "nodes", node) == [
        "n1", "NotReady,SchedulingDisabled", "control-plane,legacy,worker", "24h", "v1.33.1",
        "10.0.0.5", "<none>", "Debian", "<unknown>", "<unknown>",
    ]
    assert cells("", "nodes", {"metadata": {"name": "m"}})[1:3] == ["Unknown", "<none>"]


def test_event_printers_core_and_events_v1() -> None:
    core = {
        "metadata": {"name": "e1"}, "type": "Normal", "reason": "Created",
        "involvedObject": {"kind": "Machine", "name": "m1", "fieldPath": "spec"},
        "message": " made it \n", "source": {"component": "capi", "host": "h1"},
        "firstTimestamp": "2025-01-02T02:00:00Z", "lastTimestamp": "2025-01-02T02:58:00Z",
        "count": 3,
    }
    assert cells("", "events", core) == [
        "2m", "Normal", "Created", "machine/m1", "spec", "capi, h1", "made it", "60m", 3, "e1"]
    new = {
        "apiVersion": "events.k8s.io/v1", "metadata": {"name": "e2"}, "type": "Warning",
        "reason": "Failed", "regarding": {"kind": "Node"}, "note": "boom",
        "eventTime": "2025-01-02T02:59:30.000000Z", "reportingController": "ctl",
        "series": {"count": 7, "lastObservedTime": "2025-01-02T02:59:50.123456Z"},
    }
    assert cells("events.k8s.io", "events", new) == [
        "9s", "Warning", "Failed", "node", "", "ctl", "boom", "30s", 7, "e2"]
