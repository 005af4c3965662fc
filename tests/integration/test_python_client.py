"""Client conformance: the official `kubernetes` Python client against the real server.

The generated client deserializes every response into its models, so these tests also pin that
our bodies have the shapes its OpenAPI-generated code expects (Status, lists, CRDs, Scale).
They cover the same operations as the kubectl suite: create (and generateName), get, list with
selectors, watch, strategic and merge patches, the status and scale subresources, CEL
rejections, optimistic concurrency, deletion held by finalizers and foreground cascading, plus
the DynamicClient, which works from legacy discovery alone.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException
from kubernetes.dynamic import DynamicClient

from tests.integration.testdata import (
    CRD_NAME,
    GROUP,
    PLURAL,
    VERSION,
    install_crd,
    machinedeployment,
    manifest,
)
from tests.kube import Server

HOLD = "conformance.shipyard.test/hold"


@pytest.fixture(scope="module")
def api_client(server: Server) -> Iterator[client.ApiClient]:
    install_crd(server.client())
    api = config.new_client_from_config(config_file=str(server.kubeconfig))
    try:
        yield api
    finally:
        api.close()


@pytest.fixture
def core(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture
def custom(api_client: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api_client)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def create_md(custom: client.CustomObjectsApi, ns: str, name: str, **spec: Any) -> Any:
    return custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL,
                                                  machinedeployment(name, **spec))


def get_md(custom: client.CustomObjectsApi, ns: str, name: str) -> Any:
    return custom.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name)


def assert_gone(read: Any, *args: Any) -> None:
    for _ in range(400):
        try:
            read(*args)
        except ApiException as exc:
            assert exc.status == 404, exc.body
            return
        time.sleep(0.025)
    raise AssertionError(f"{args} still exists")


# -------------------------------------------------------------------------------- built-ins


def test_version(api_client: client.ApiClient) -> None:
    info = client.VersionApi(api_client).get_code()
    assert info.major == "1"
    assert info.git_version.startswith("v1.")


def test_configmap_crud(core: client.CoreV1Api, namespace: str) -> None:
    name = unique("settings")
    body = manifest("configmap.yaml", name)
    created = core.create_namespaced_config_map(namespace, body)
    assert isinstance(created, client.V1ConfigMap)
    assert created.metadata.uid and created.metadata.resource_version
    assert created.metadata.creation_timestamp is not None  # parsed as a datetime
    assert created.data == body["data"]

    read = core.read_namespaced_config_map(name, namespace)
    assert read.metadata.resource_version == created.metadata.resource_version

    # A dict body on a built-in is a strategic merge patch; null deletes a key.
    patched = core.patch_namespaced_config_map(
        name, namespace, {"data": {"pod-cidr": None, "extra": "1"},
                          "metadata": {"labels": {"tier": "gold"}}})
    assert patched.data == {"cluster-name": "alpha", "extra": "1"}
    assert patched.metadata.labels == {"app.kubernetes.io/part-of": "shipyard", "tier": "gold"}

    # A list body is a JSON patch.
    patched = core.patch_namespaced_config_map(
        name, namespace, [{"op": "replace", "path": "/data/extra", "value": "2"}])
    assert patched.data["extra"] == "2"

    # Replacing with a stale resourceVersion is a 409 Conflict.
    read.data = {"stale": "yes"}
    with pytest.raises(ApiException) as exc:
        core.replace_namespaced_config_map(name, namespace, read)
    assert exc.value.status == 409
    assert "the object has been modified" in exc.value.body
    fresh = core.read_namespaced_config_map(name, namespace)
    fresh.data = {"replaced": "yes"}
    assert core.replace_namespaced_config_map(name, namespace, fresh).data == {"replaced": "yes"}

    listed = core.list_namespaced_config_map(namespace, label_selector="tier=gold")
    assert [i.metadata.name for i in listed.items] == [name]
    assert listed.metadata.resource_version
    assert core.list_namespaced_config_map(namespace, label_selector="tier!=gold").items == []
    everywhere = core.list_config_map_for_all_namespaces(field_selector=f"metadata.name={name}")
    assert [(i.metadata.namespace, i.metadata.name) for i in everywhere.items] == \
        [(namespace, name)]

    status = core.delete_namespaced_config_map(name, namespace)  # a dict since client v35
    assert status["status"] == "Success"
    with pytest.raises(ApiException) as exc:
        core.read_namespaced_config_map(name, namespace)
    assert exc.value.status == 404
    assert exc.value.reason == "Not Found"
    assert json.loads(exc.value.body)["message"] == f'configmaps "{name}" not found'


def test_generate_name_and_already_exists(core: client.CoreV1Api, namespace: str) -> None:
    body = client.V1ConfigMap(metadata=client.V1ObjectMeta(generate_name="settings-"),
                              data={"a": "b"})
    first = core.create_namespaced_config_map(namespace, body)
    second = core.create_namespaced_config_map(namespace, body)
    for made in (first, second):
        assert made.metadata.name.startswith("settings-")
        assert len(made.metadata.name) == len("settings-") + 5
    assert first.metadata.name != second.metadata.name
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_config_map(namespace, client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name=first.metadata.name)))
    assert exc.value.status == 409
    assert "already exists" in exc.value.body


def test_secret_string_data(core: client.CoreV1Api, namespace: str) -> None:
    name = unique("kubeconfig")
    created = core.create_namespaced_secret(namespace, manifest("secret.yaml", name))
    assert created.type == "cluster.x-k8s.io/secret"
    assert created.string_data is None
    assert base64.b64decode(created.data["value"]) == b"apiVersion: v1\nkind: Config\n"


def test_namespace_lifecycle(core: client.CoreV1Api) -> None:
    name = unique("tenant")
    created = core.create_namespace(manifest("namespace.yaml", name))
    assert created.status.phase == "Active"
    assert created.spec.finalizers == ["kubernetes"]
    core.create_namespaced_config_map(name, manifest("configmap.yaml", "inside"))
    core.delete_namespace(name)
    assert_gone(core.read_namespace, name)
    with pytest.raises(ApiException) as exc:
        core.read_namespaced_config_map("inside", name)
    assert exc.value.status == 404


def test_watch_configmaps(core: client.CoreV1Api, namespace: str) -> None:
    name = unique("settings")
    rv = core.list_namespaced_config_map(namespace).metadata.resource_version
    core.create_namespaced_config_map(namespace, manifest("configmap.yaml", name))
    w = watch.Watch()
    seen: list[tuple[str, str, dict[str, str]]] = []
    for event in w.stream(core.list_namespaced_config_map, namespace, resource_version=rv,
                          timeout_seconds=30, _request_timeout=30):
        obj = event["object"]
        assert isinstance(obj, client.V1ConfigMap)
        seen.append((event["type"], obj.metadata.name, dict(obj.data or {})))
        if event["type"] == "ADDED":
            core.patch_namespaced_config_map(name, namespace, {"data": {"x": "y"}})
        elif event["type"] == "MODIFIED":
            core.delete_namespaced_config_map(name, namespace)
        else:
            w.stop()
    assert [(t, n) for t, n, _ in seen] == [("ADDED", name), ("MODIFIED", name),
                                            ("DELETED", name)]
    assert seen[1][2]["x"] == "y"


# ----------------------------------------------------------------------- custom resources


def test_crd_deserializes(api_client: client.ApiClient) -> None:
    ext = client.ApiextensionsV1Api(api_client)
    crd = ext.read_custom_resource_definition(CRD_NAME)
    assert crd.spec.names.kind == "MachineDeployment"
    assert crd.spec.names.short_names == ["tmd"]
    conditions = {c.type: c.status for c in crd.status.conditions}
    assert conditions["Established"] == "True"
    assert conditions["NamesAccepted"] == "True"
    assert crd.status.accepted_names.plural == PLURAL
    version = crd.spec.versions[0]
    assert version.subresources.scale.spec_replicas_path == ".spec.replicas"
    assert [c.name for c in version.additional_printer_columns][:2] == ["Cluster", "Replicas"]
    spec_schema = version.schema.open_apiv3_schema.properties["spec"]
    assert spec_schema.x_kubernetes_validations[0].message == "clusterName is immutable"
    names = [c.metadata.name for c in ext.list_custom_resource_definition().items]
    assert CRD_NAME in names


def test_custom_object_crud(custom: client.CustomObjectsApi, namespace: str) -> None:
    name = unique("md")
    body = machinedeployment(name)
    del body["spec"]["replicas"]
    created = create_md(custom, namespace, name)
    assert created["metadata"]["generation"] == 1
    assert get_md(custom, namespace, name)["spec"]["replicas"] == 2

    other = unique("md")
    body["metadata"]["name"] = other
    made = custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
    assert made["spec"]["replicas"] == 1  # the CRD's default

    # Custom objects take merge patches.
    patched = custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name, {"spec": {"paused": True}})
    assert patched["spec"]["paused"] is True
    assert patched["metadata"]["generation"] == 2

    listed = custom.list_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, label_selector="cluster.x-k8s.io/cluster-name=alpha")
    assert sorted(i["metadata"]["name"] for i in listed["items"]) == sorted([name, other])
    assert listed["kind"] == "MachineDeploymentList"
    across = custom.list_cluster_custom_object(GROUP, VERSION, PLURAL,
                                              field_selector=f"metadata.name={name}")
    assert [i["metadata"]["namespace"] for i in across["items"]] == [namespace]

    status = custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, other)
    assert status["status"] == "Success"
    assert status["details"]["uid"] == made["metadata"]["uid"]
    with pytest.raises(ApiException) as exc:
        get_md(custom, namespace, other)
    assert exc.value.status == 404


def test_custom_object_validation(custom: client.CustomObjectsApi, namespace: str) -> None:
    name = unique("md")
    create_md(custom, namespace, name)
    with pytest.raises(ApiException) as exc:
        custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name,
                                              {"spec": {"clusterName": "beta"}})
    assert exc.value.status == 422
    assert "clusterName is immutable" in exc.value.body
    with pytest.raises(ApiException) as exc:
        create_md(custom, namespace, unique("md"), replicas=101)
    assert exc.value.status == 422
    assert "replicas must be at most 100" in exc.value.body
    assert get_md(custom, namespace, name)["spec"]["clusterName"] == "alpha"


def test_status_and_scale_subresources(
    custom: client.CustomObjectsApi, namespace: str
) -> None:
    name = unique("md")
    create_md(custom, namespace, name, replicas=2)
    status = {"replicas": 2, "readyReplicas": 1, "observedGeneration": 1,
              "selector": "cluster.x-k8s.io/cluster-name=alpha"}
    written = custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, PLURAL, name,
        {"status": status, "spec": {"replicas": 9}})  # spec is ignored on /status
    assert written["status"] == status
    assert written["spec"]["replicas"] == 2
    assert written["metadata"]["generation"] == 1

    scale = custom.get_namespaced_custom_object_scale(GROUP, VERSION, namespace, PLURAL, name)
    assert scale["kind"] == "Scale"
    assert scale["apiVersion"] == "autoscaling/v1"
    assert scale["spec"] == {"replicas": 2}
    assert scale["status"] == {"replicas": 2,
                               "selector": "cluster.x-k8s.io/cluster-name=alpha"}
    scaled = custom.patch_namespaced_custom_object_scale(
        GROUP, VERSION, namespace, PLURAL, name, {"spec": {"replicas": 5}})
    assert scaled["spec"]["replicas"] == 5
    live = get_md(custom, namespace, name)
    assert live["spec"]["replicas"] == 5
    assert live["metadata"]["generation"] == 2
    assert live["status"] == status


def test_watch_custom_objects(custom: client.CustomObjectsApi, namespace: str) -> None:
    name = unique("md")
    rv = custom.list_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL)["metadata"]["resourceVersion"]
    create_md(custom, namespace, name)
    w = watch.Watch()
    types: list[str] = []
    for event in w.stream(custom.list_namespaced_custom_object, GROUP, VERSION, namespace,
                          PLURAL, resource_version=rv, timeout_seconds=30,
                          _request_timeout=30):
        types.append(event["type"])
        assert event["object"]["metadata"]["name"] == name
        if event["type"] == "ADDED":
            custom.patch_namespaced_custom_object_status(
                GROUP, VERSION, namespace, PLURAL, name, {"status": {"phase": "Running"}})
        else:
            assert event["object"]["status"]["phase"] == "Running"
            w.stop()
    assert types == ["ADDED", "MODIFIED"]


def test_delete_held_by_finalizer(custom: client.CustomObjectsApi, namespace: str) -> None:
    name = unique("md")
    body = machinedeployment(name)
    body["metadata"]["finalizers"] = [HOLD]
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
    held = custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    assert held["metadata"]["deletionTimestamp"]  # the object, not a Status
    assert held["metadata"]["finalizers"] == [HOLD]
    assert get_md(custom, namespace, name)["metadata"]["deletionTimestamp"]
    with pytest.raises(ApiException) as exc:  # no new finalizers while deleting
        custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name,
                                              {"metadata": {"finalizers": [HOLD, "other/x"]}})
    assert exc.value.status == 422
    custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name,
                                          {"metadata": {"finalizers": None}})
    with pytest.raises(ApiException) as exc:
        get_md(custom, namespace, name)
    assert exc.value.status == 404


def test_foreground_cascade(
    custom: client.CustomObjectsApi, core: client.CoreV1Api, namespace: str
) -> None:
    owner = unique("md")
    uid = create_md(custom, namespace, owner)["metadata"]["uid"]
    child = unique("owned")
    core.create_namespaced_config_map(namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name=child, owner_references=[client.V1OwnerReference(
            api_version=f"{GROUP}/{VERSION}", kind="MachineDeployment", name=owner, uid=uid,
            block_owner_deletion=True)])))
    held = custom.delete_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, owner,
        body=client.V1DeleteOptions(propagation_policy="Foreground"))
    assert "foregroundDeletion" in held["metadata"]["finalizers"]
    assert_gone(core.read_namespaced_config_map, child, namespace)
    assert_gone(get_md, custom, namespace, owner)


# --------------------------------------------------------------------------- DynamicClient


def test_dynamic_client(api_client: client.ApiClient, namespace: str) -> None:
    dyn = DynamicClient(api_client)
    mds = dyn.resources.get(api_version=f"{GROUP}/{VERSION}", kind="MachineDeployment")
    assert mds.namespaced
    assert mds.short_names == ["tmd"]
    assert mds.subresources["scale"].kind == "Scale"
    assert "status" in mds.subresources
    name = unique("md")
    created = mds.create(body=machinedeployment(name), namespace=namespace)
    assert created.metadata.name == name
    patched = mds.patch(name=name, namespace=namespace, body={"spec": {"replicas": 3}},
                        content_type="application/merge-patch+json")
    assert patched.spec.replicas == 3
    items = mds.get(namespace=namespace, label_selector="cluster.x-k8s.io/cluster-name=alpha")
    assert [i.metadata.name for i in items.items] == [name]

    cms = dyn.resources.get(api_version="v1", kind="ConfigMap")
    cms.create(body=manifest("configmap.yaml", name), namespace=namespace)
    patched = cms.patch(name=name, namespace=namespace, body={"data": {"extra": "1"}},
                        content_type="application/strategic-merge-patch+json")
    assert patched.data["extra"] == "1"
    assert patched.data["cluster-name"] == "alpha"

    mds.delete(name=name, namespace=namespace)
    cms.delete(name=name, namespace=namespace)
    assert mds.get(namespace=namespace).items == []
