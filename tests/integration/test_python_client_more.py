"""Client conformance, continued: what the official `kubernetes` client does that
test_python_client.py does not yet cover.

- DynamicClient ``server_side_apply``: create through apply, managers in managedFields, another
  manager's conflict (409 with FieldManagerConflict causes) and ``force_conflicts``.
- Watches bounded by ``timeout_seconds`` that the *server* ends (no ``stop()``), resumed from
  the watcher's last resourceVersion; the DynamicClient's watch, including a watch-list
  (``sendInitialEvents``) that ends its initial state with the annotated BOOKMARK.
- Deletion with ``propagationPolicy`` Background (the owner goes at once, the garbage collector
  takes the dependant) and Orphan (the dependant stays, its ownerReference dropped).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, config, watch
from kubernetes.client import ApiException
from kubernetes.dynamic import DynamicClient

from tests.integration.testdata import (
    GROUP,
    PLURAL,
    VERSION,
    install_crd,
    machinedeployment,
    manifest,
)
from tests.kube import Server

# The generated client is driven as a black box: its untyped entry points and Optional-heavy
# models are handled as Any here rather than narrowed at every step.
new_client_from_config: Any = config.new_client_from_config
Dynamic: Any = DynamicClient
Watch: Any = watch.Watch


@pytest.fixture(scope="module")
def api_client(server: Server) -> Iterator[client.ApiClient]:
    install_crd(server.client())
    api = new_client_from_config(config_file=str(server.kubeconfig))
    try:
        yield api
    finally:
        api.close()


@pytest.fixture(scope="module")
def dyn(api_client: client.ApiClient) -> Any:
    return Dynamic(api_client)


@pytest.fixture
def core(api_client: client.ApiClient) -> Any:
    return client.CoreV1Api(api_client)


@pytest.fixture
def custom(api_client: client.ApiClient) -> Any:
    return client.CustomObjectsApi(api_client)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def managers(obj: Any) -> set[tuple[str, str]]:
    return {(m["manager"], m["operation"]) for m in obj["metadata"]["managedFields"]}


def eventually(fn: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := fn()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.025)
    return value


# ------------------------------------------------------------------ DynamicClient apply


def test_dynamic_server_side_apply(dyn: Any, namespace: str) -> None:
    mds = dyn.resources.get(api_version=f"{GROUP}/{VERSION}", kind="MachineDeployment")
    name = unique("md")
    doc = machinedeployment(name)
    created = mds.server_side_apply(body=doc, namespace=namespace, field_manager="capi-test")
    assert created.metadata.name == name
    assert created.spec.replicas == 2
    live = created.to_dict()
    assert managers(live) == {("capi-test", "Apply")}
    owned = live["metadata"]["managedFields"][0]["fieldsV1"]
    assert "f:replicas" in owned["f:spec"]

    # Re-applying the same manifest changes nothing; a changed field is a new generation.
    again = mds.server_side_apply(body=doc, namespace=namespace, field_manager="capi-test")
    assert again.metadata.resourceVersion == created.metadata.resourceVersion
    doc["spec"]["replicas"] = 4
    changed = mds.server_side_apply(body=doc, namespace=namespace, field_manager="capi-test")
    assert changed.spec.replicas == 4
    assert changed.metadata.generation == 2

    # Another manager setting the same field conflicts until it forces.
    theirs = {"apiVersion": doc["apiVersion"], "kind": doc["kind"],
              "metadata": {"name": name}, "spec": {"replicas": 7}}
    with pytest.raises(ApiException) as exc:
        mds.server_side_apply(body=theirs, namespace=namespace, field_manager="autoscaler")
    assert exc.value.status == 409
    status = json.loads(exc.value.body or b"")
    assert status["reason"] == "Conflict"
    assert status["message"] == \
        'Apply failed with 1 conflict: conflict with "capi-test": .spec.replicas'
    assert status["details"]["causes"] == [{  # an applier is named without its apiVersion
        "reason": "FieldManagerConflict",
        "message": 'conflict with "capi-test"',
        "field": ".spec.replicas",
    }]
    forced = mds.server_side_apply(body=theirs, namespace=namespace, field_manager="autoscaler",
                                   force_conflicts=True)
    assert forced.spec.replicas == 7
    entries = forced.to_dict()["metadata"]["managedFields"]
    by_manager = {m["manager"]: m["fieldsV1"] for m in entries}
    assert "f:replicas" in by_manager["autoscaler"]["f:spec"]
    assert "f:replicas" not in by_manager["capi-test"]["f:spec"]
    assert "f:clusterName" in by_manager["capi-test"]["f:spec"]

    # Built-ins go through the same path.
    cms = dyn.resources.get(api_version="v1", kind="ConfigMap")
    cm = cms.server_side_apply(body=manifest("configmap.yaml", name), namespace=namespace,
                               field_manager="capi-test")
    assert cm.data["cluster-name"] == "alpha"
    assert managers(cm.to_dict()) == {("capi-test", "Apply")}


def test_dynamic_server_side_apply_needs_field_manager(dyn: Any,
                                                       namespace: str) -> None:
    cms = dyn.resources.get(api_version="v1", kind="ConfigMap")
    with pytest.raises(ApiException) as exc:
        cms.server_side_apply(body=manifest("configmap.yaml", unique("settings")),
                              namespace=namespace)
    assert exc.value.status == 422
    assert "fieldManager" in json.loads(exc.value.body or b"")["message"]


# --------------------------------------------------------------------------------- watches


def test_watch_ended_by_server_timeout_then_resumed(core: Any,
                                                     namespace: str) -> None:
    rv = core.list_namespaced_config_map(namespace).metadata.resource_version
    first = unique("settings")
    created = core.create_namespaced_config_map(namespace, manifest("configmap.yaml", first))
    w = Watch()
    events = [(e["type"], e["object"].metadata.name)
              for e in w.stream(core.list_namespaced_config_map, namespace, resource_version=rv,
                                timeout_seconds=1, _request_timeout=30)]
    assert events == [("ADDED", first)]  # and the server closed the stream by itself
    assert w.resource_version == created.metadata.resource_version

    # Resuming from where the watcher got to replays only what happened since.
    second = unique("settings")
    core.create_namespaced_config_map(namespace, manifest("configmap.yaml", second))
    core.delete_namespaced_config_map(first, namespace)
    events = [(e["type"], e["object"].metadata.name)
              for e in w.stream(core.list_namespaced_config_map, namespace,
                                resource_version=w.resource_version, timeout_seconds=1,
                                _request_timeout=30)]
    assert events == [("ADDED", second), ("DELETED", first)]


def test_dynamic_watch(dyn: Any, custom: Any,
                       namespace: str) -> None:
    mds = dyn.resources.get(api_version=f"{GROUP}/{VERSION}", kind="MachineDeployment")
    rv = mds.get(namespace=namespace).metadata.resourceVersion
    name = unique("md")
    mds.create(body=machinedeployment(name), namespace=namespace)
    custom.patch_namespaced_custom_object_status(GROUP, VERSION, namespace, PLURAL, name,
                                                 {"status": {"phase": "Running"}})
    seen = [(e["type"], e["object"].metadata.name,
             (e["raw_object"].get("status") or {}).get("phase"))
            for e in mds.watch(namespace=namespace, resource_version=rv, timeout=1)]
    assert seen == [("ADDED", name, None), ("MODIFIED", name, "Running")]

    # A watch for one name (the client turns it into a metadata.name field selector).
    other = unique("md")
    mds.create(body=machinedeployment(other), namespace=namespace)
    named = [(e["type"], e["object"].metadata.name)
             for e in mds.watch(namespace=namespace, name=other, resource_version=rv, timeout=1)]
    assert named == [("ADDED", other)]


def test_dynamic_watch_list(dyn: Any, namespace: str) -> None:
    """sendInitialEvents: the current state as ADDED events, then a BOOKMARK annotated
    ``k8s.io/initial-events-end``, then live events."""
    cms = dyn.resources.get(api_version="v1", kind="ConfigMap")
    names = sorted(unique("settings") for _ in range(2))
    for name in names:
        cms.create(body=manifest("configmap.yaml", name), namespace=namespace)
    w = Watch()
    seen: list[tuple[str, str]] = []
    for event in cms.watch(namespace=namespace, watcher=w, timeout=5, send_initial_events=True,
                           resource_version_match="NotOlderThan", allow_watch_bookmarks=True):
        if event["type"] == "BOOKMARK":
            annotations = event["raw_object"]["metadata"].get("annotations") or {}
            if annotations.get("k8s.io/initial-events-end") != "true":
                continue  # a periodic bookmark
            seen.append(("BOOKMARK", "initial-events-end"))
            w.stop()
        else:
            seen.append((event["type"], event["object"].metadata.name))
    assert seen == [("ADDED", names[0]), ("ADDED", names[1]),
                    ("BOOKMARK", "initial-events-end")]


# ---------------------------------------------------------------------- propagation policy


def owned_configmap(core: Any, namespace: str, owner: dict[str, Any]) -> str:
    child = unique("owned")
    core.create_namespaced_config_map(namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name=child, owner_references=[client.V1OwnerReference(
            api_version=f"{GROUP}/{VERSION}", kind="MachineDeployment",
            name=owner["metadata"]["name"], uid=owner["metadata"]["uid"])])))
    return child


def read_or_none(core: Any, name: str, namespace: str) -> Any:
    try:
        return core.read_namespaced_config_map(name, namespace)
    except ApiException as exc:
        assert exc.status == 404, exc.body
        return None


def test_delete_propagation_background(custom: Any, core: Any,
                                       namespace: str) -> None:
    owner = custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL,
                                                   machinedeployment(unique("md")))
    child = owned_configmap(core, namespace, owner)
    status = custom.delete_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, owner["metadata"]["name"],
        body=client.V1DeleteOptions(propagation_policy="Background"))
    assert status["status"] == "Success"  # the owner is gone at once
    with pytest.raises(ApiException) as exc:
        custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL,
                                            owner["metadata"]["name"])
    assert exc.value.status == 404
    eventually(lambda: read_or_none(core, child, namespace) is None)


def test_delete_propagation_orphan(custom: Any, core: Any,
                                   namespace: str) -> None:
    owner = custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL,
                                                   machinedeployment(unique("md")))
    name = owner["metadata"]["name"]
    child = owned_configmap(core, namespace, owner)
    held = custom.delete_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name,
        body=client.V1DeleteOptions(propagation_policy="Orphan"))
    assert held["metadata"]["finalizers"] == ["orphan"]
    assert held["metadata"]["deletionTimestamp"]

    def owner_gone() -> bool:
        try:
            custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        except ApiException as exc:
            assert exc.status == 404, exc.body
            return True
        return False

    eventually(owner_gone)
    orphan = core.read_namespaced_config_map(child, namespace)
    assert not orphan.metadata.owner_references
