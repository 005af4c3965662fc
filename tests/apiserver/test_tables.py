"""meta.k8s.io/v1 Tables as kube-apiserver renders them for kubectl get."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from shipyard.apiserver.builtins import BUILTINS
from shipyard.apiserver.resources import PrinterColumn, ResourceInfo
from shipyard.apiserver.tables import (
    go_print,
    human_duration,
    table_for_watch_event,
    to_table,
)

NOW = datetime(2025, 1, 2, 3, 0, 0, tzinfo=UTC)
CONFIGMAPS = next(i for i in BUILTINS if i.resource == "configmaps")


def machine_info(columns: tuple[PrinterColumn, ...] = ()) -> ResourceInfo:
    return ResourceInfo(
        group="cluster.x-k8s.io", version="v1beta2", resource="machines", kind="Machine",
        list_kind="MachineList", singular="machine", namespaced=True, printer_columns=columns,
    )


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "<invalid>"), (-1, "0s"), (0, "0s"), (119, "119s"), (120, "2m"), (150, "2m30s"),
        (599, "9m59s"), (600, "10m"), (179 * 60 + 59, "179m"), (3 * 3600, "3h"),
        (3 * 3600 + 2 * 60 + 30, "3h2m"), (8 * 3600, "8h"), (47 * 3600, "47h"),
        (48 * 3600, "2d"), (51 * 3600, "2d3h"), (8 * 86400, "8d"), (729 * 86400, "729d"),
        (730 * 86400, "2y"), (735 * 86400, "2y5d"), (9 * 365 * 86400, "9y"),
    ],
)
def test_human_duration_matches_kube(seconds: int, text: str) -> None:
    assert human_duration(seconds) == text


def configmap(name: str, rv: str = "7") -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default", "resourceVersion": rv,
                     "labels": {"app": "x"}, "creationTimestamp": "2025-01-02T02:00:00Z"},
        "data": {"a": "1"},
    }


def test_builtin_table_shape() -> None:
    table = to_table(CONFIGMAPS, [configmap("a"), configmap("b")], resource_version="42",
                     continue_token="tok", remaining=3, now=NOW)
    assert table["kind"] == "Table"
    assert table["apiVersion"] == "meta.k8s.io/v1"
    assert table["metadata"] == {"resourceVersion": "42", "continue": "tok",
                                 "remainingItemCount": 3}
    assert table["columnDefinitions"][0] == {
        "name": "Name", "type": "string", "format": "name",
        "description": table["columnDefinitions"][0]["description"], "priority": 0,
    }
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Data", "Age"]
    assert [r["cells"] for r in table["rows"]] == [["a", 1, "60m"], ["b", 1, "60m"]]
    partial = table["rows"][0]["object"]
    assert partial == {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                       "metadata": configmap("a")["metadata"]}


def test_include_object_modes() -> None:
    full = to_table(CONFIGMAPS, [configmap("a")], include_object="Object", now=NOW)
    assert full["rows"][0]["object"] == configmap("a")
    none = to_table(CONFIGMAPS, [configmap("a")], include_object="None", now=NOW)
    assert "object" not in none["rows"][0]
    assert to_table(CONFIGMAPS, [], now=NOW)["rows"] == []
    assert to_table(CONFIGMAPS, [], now=NOW)["metadata"] == {}


def test_watch_events_carry_headers_only_first() -> None:
    first = table_for_watch_event(CONFIGMAPS, configmap("a", "9"), first=True, now=NOW)
    later = table_for_watch_event(CONFIGMAPS, configmap("a", "10"), first=False, now=NOW)
    assert first["columnDefinitions"] and first["metadata"] == {"resourceVersion": "9"}
    assert later["columnDefinitions"] is None
    assert later["rows"][0]["cells"] == ["a", 1, "60m"]


def test_crd_without_columns_gets_age_rendered_by_the_server() -> None:
    table = to_table(machine_info(), [configmap("m")], now=NOW)
    assert [(c["name"], c["type"], c["format"]) for c in table["columnDefinitions"]] == [
        ("Name", "string", "name"), ("Age", "date", "")]
    # tableconvertor.go: date cells go through ConvertToHumanReadableDateType.
    assert table["rows"][0]["cells"] == ["m", "60m"]


def test_crd_additional_printer_columns() -> None:
    columns = (
        PrinterColumn("Phase", "string", ".status.phase"),
        PrinterColumn("Replicas", "integer", ".spec.replicas", priority=1),
        PrinterColumn("Ratio", "number", ".spec.ratio"),
        PrinterColumn("Paused", "boolean", ".spec.paused"),
        PrinterColumn("Ready", "string", '.status.conditions[?(@.type=="Ready")].status'),
        PrinterColumn("Since", "date", ".status.since"),
        PrinterColumn("Labels", "string", ".metadata.labels"),
        PrinterColumn("Missing", "string", ".status.nothing"),
    )
    obj = {
        "metadata": {"name": "m1", "labels": {"b": "2", "a": "1"}},
        "spec": {"replicas": 3.0, "ratio": 2, "paused": "yes"},
        "status": {"phase": "Running", "since": "2025-01-01T00:00:00.5+01:00",
                   "conditions": [{"type": "Other", "status": "False"},
                                  {"type": "Ready", "status": "True"}]},
    }
    table = to_table(machine_info(columns), [obj], now=NOW)
    assert [c["name"] for c in table["columnDefinitions"]] == [
        "Name", "Phase", "Replicas", "Ratio", "Paused", "Ready", "Since", "Labels", "Missing"]
    assert table["columnDefinitions"][2]["priority"] == 1
    assert table["rows"][0]["cells"] == [
        "m1", "Running", 3, 2.0, None, "True", "27h", "map[a:1 b:2]", None]


def test_crd_type_mismatch_gives_null() -> None:
    columns = (PrinterColumn("N", "integer", ".spec.n"), PrinterColumn("D", "date", ".spec.d"))
    table = to_table(machine_info(columns), [{"metadata": {"name": "x"},
                                              "spec": {"n": True, "d": "not a time"}}], now=NOW)
    assert table["rows"][0]["cells"] == ["x", None, "<invalid>"]


def test_go_print() -> None:
    assert go_print([1, "a", True, {"k": None}]) == "[1 a true map[k:<nil>]]"
    assert go_print(1.5) == "1.5"
