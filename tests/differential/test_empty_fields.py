"""Empty maps and lists on write: kube-apiserver decodes built-in kinds into Go structs, whose
``omitempty`` maps and slices vanish when empty, while ``required`` ones (no omitempty) and
pointers to structs stay; custom resources are unstructured and keep what was sent, apart from
ObjectMeta, which is typed for every kind."""

from __future__ import annotations

from tests.differential.conftest import ok, widget
from tests.differential.test_pods import create_pod
from tests.kube import Client

MERGE = "application/merge-patch+json"


def cms(ns: str, name: str = "") -> str:
    return f"/api/v1/namespaces/{ns}/configmaps" + (f"/{name}" if name else "")


EMPTY_META = {"labels": {}, "annotations": {}, "finalizers": [], "ownerReferences": []}


def test_configmap_drops_empty_maps_and_metadata_on_create(api: Client, ns: str) -> None:
    got = ok(api.post(cms(ns), {"metadata": {"name": "a", **EMPTY_META},
                                "data": {}, "binaryData": {}}), 201)
    assert "data" not in got and "binaryData" not in got
    assert not set(EMPTY_META) & set(got["metadata"])
    assert "data" not in ok(api.get(cms(ns, "a")))


def test_configmap_emptied_by_patch_or_update_loses_the_field(api: Client, ns: str) -> None:
    ok(api.post(cms(ns), {"metadata": {"name": "a", "labels": {"l": "1"}},
                          "data": {"x": "1"}}), 201)
    got = ok(api.patch(cms(ns, "a"), {"data": {"x": None}, "metadata": {"labels": {"l": None}}},
                       content_type=MERGE))
    assert "data" not in got and "labels" not in got["metadata"]
    got["data"] = {}
    got = ok(api.put(cms(ns, "a"), got))
    assert "data" not in got


def test_pod_drops_empty_lists_and_keeps_empty_structs(api: Client, ns: str) -> None:
    container = {"name": "main", "image": "busybox", "command": [], "args": [], "ports": [],
                 "securityContext": {}, "resources": {}}
    got = create_pod(api, ns, {
        "metadata": {"name": "p"},
        "spec": {"containers": [container], "volumes": [], "nodeSelector": {},
                 "securityContext": {}, "automountServiceAccountToken": False},
    })
    main = got["spec"]["containers"][0]
    for gone in ("command", "args", "ports"):
        assert gone not in main, gone
    assert main["securityContext"] == {}  # a pointer to a struct: kept, even empty
    assert main["resources"] == {}  # a struct, not a pointer: always there
    assert "volumes" not in got["spec"] and "nodeSelector" not in got["spec"]
    assert got["spec"]["securityContext"] == {}


def test_custom_resources_keep_empty_spec_fields_but_not_empty_metadata(
    api: Client, widgets: str
) -> None:
    body = widget("w", tags=[], args=[])
    body["metadata"].update(labels={}, annotations={}, finalizers=[])
    got = ok(api.post(widgets, body), 201)
    assert got["spec"]["tags"] == [] and got["spec"]["args"] == []
    assert not {"labels", "annotations", "finalizers"} & set(got["metadata"])
