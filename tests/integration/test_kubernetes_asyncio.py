"""Client conformance: `kubernetes_asyncio` (the aiohttp-based generated client) against our server.

It is generated from the same OpenAPI as the official client but reads watch streams with
aiohttp's ``readline`` and deserializes into the same models, so these tests pin that our
bodies and streams work for it too: CRUD with optimistic concurrency, lists by label selector,
its ``Watch`` over a custom resource and over ConfigMaps (replaying from a list's
resourceVersion, events arriving while the stream is open, a selector filtering them out), merge
and JSON patches, and the status subresource.

Mind its patch quirk: for custom objects the generated code picks ``application/json-patch+json``
for any body unless told otherwise, so merge patches pass ``_content_type`` explicitly, as its
users must.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from kubernetes_asyncio import client, config, watch
from kubernetes_asyncio.client.exceptions import ApiException

from tests.integration.testdata import (
    GROUP,
    PLURAL,
    VERSION,
    install_crd,
    machinedeployment,
    manifest,
)
from tests.kube import Server

MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
WATCH_TIMEOUT = 20


@pytest.fixture(scope="module")
def crd(server: Server) -> dict[str, Any]:
    return install_crd(server.client())


@pytest.fixture
async def api_client(server: Server, crd: dict[str, Any]) -> AsyncIterator[client.ApiClient]:
    configuration = client.Configuration()
    await config.load_kube_config(config_file=str(server.kubeconfig),
                                  client_configuration=configuration)
    async with client.ApiClient(configuration) as api:
        yield api


@pytest.fixture
def core(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture
def custom(api_client: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api_client)


def configmap(name: str) -> Any:
    """The testdata ConfigMap as a plain dict, which the generated code sends as is."""
    return manifest("configmap.yaml", name)


async def patch_as(content_type: str, method: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    """Call a generated patch method with an explicit Content-Type (its type stubs omit the
    ``_content_type`` keyword its code takes)."""
    return await method(*args, _content_type=content_type)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


async def create_md(custom: client.CustomObjectsApi, ns: str, name: str, **spec: Any) -> Any:
    return await custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL,
                                                        machinedeployment(name, **spec))


# ------------------------------------------------------------------------------------- CRUD


async def test_configmap_crud_and_label_selector(core: client.CoreV1Api, namespace: str) -> None:
    name = unique("settings")
    created = await core.create_namespaced_config_map(namespace, configmap(name))
    assert isinstance(created, client.V1ConfigMap)
    assert created.metadata.uid and created.metadata.resource_version
    assert created.metadata.creation_timestamp is not None
    other = unique("other")
    await core.create_namespaced_config_map(namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name=other, labels={"tier": "bronze"})))

    read = await core.read_namespaced_config_map(name, namespace)
    assert read.data == {"cluster-name": "alpha", "pod-cidr": "10.244.0.0/16"}

    listed = await core.list_namespaced_config_map(
        namespace, label_selector="app.kubernetes.io/part-of=shipyard")
    assert [i.metadata.name for i in listed.items] == [name]
    assert listed.metadata.resource_version
    listed = await core.list_namespaced_config_map(namespace, label_selector="tier in (bronze)")
    assert [i.metadata.name for i in listed.items] == [other]
    listed = await core.list_namespaced_config_map(namespace, label_selector="!tier")
    assert [i.metadata.name for i in listed.items] == [name]

    read.data = {"replaced": "yes"}
    replaced = await core.replace_namespaced_config_map(name, namespace, read)
    assert replaced.data == {"replaced": "yes"}
    assert int(replaced.metadata.resource_version) > int(read.metadata.resource_version)
    read.data = {"stale": "yes"}
    with pytest.raises(ApiException) as exc:
        await core.replace_namespaced_config_map(name, namespace, read)
    assert exc.value.status == 409
    assert json.loads(exc.value.body or b"")["reason"] == "Conflict"

    await core.delete_namespaced_config_map(name, namespace)
    with pytest.raises(ApiException) as exc:
        await core.read_namespaced_config_map(name, namespace)
    assert exc.value.status == 404
    assert json.loads(exc.value.body or b"")["message"] == f'configmaps "{name}" not found'


async def test_custom_object_crud(custom: client.CustomObjectsApi, namespace: str) -> None:
    name = unique("md")
    created = await create_md(custom, namespace, name)
    assert created["metadata"]["generation"] == 1
    await create_md(custom, namespace, unique("md"), cluster="beta")

    got = await custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    assert got["spec"]["clusterName"] == "alpha"
    listed = await custom.list_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, label_selector="cluster.x-k8s.io/cluster-name=alpha")
    assert [i["metadata"]["name"] for i in listed["items"]] == [name]
    assert listed["kind"] == "MachineDeploymentList"

    got["spec"]["replicas"] = 4
    replaced = await custom.replace_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name, got)
    assert replaced["spec"]["replicas"] == 4
    assert replaced["metadata"]["generation"] == 2
    with pytest.raises(ApiException) as exc:  # got's resourceVersion is now stale
        await custom.replace_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name,
                                                      got)
    assert exc.value.status == 409

    deleted = await custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    # Gone at once (no finalizers): a Success Status naming it, as kube's generic store says.
    assert deleted["kind"] == "Status" and deleted["status"] == "Success"
    assert deleted["details"]["name"] == name
    assert deleted["details"]["uid"] == created["metadata"]["uid"]
    with pytest.raises(ApiException) as exc:
        await custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    assert exc.value.status == 404


# ----------------------------------------------------------------------------------- patches


async def test_merge_and_json_patches(custom: client.CustomObjectsApi, core: client.CoreV1Api,
                                      namespace: str) -> None:
    name = unique("md")
    await create_md(custom, namespace, name, paused=True)
    patched = await patch_as(
        MERGE, custom.patch_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, name,
        {"spec": {"replicas": 3, "paused": None}, "metadata": {"labels": {"tier": "gold"}}})
    assert patched["spec"]["replicas"] == 3
    assert "paused" not in patched["spec"]
    assert patched["metadata"]["labels"]["tier"] == "gold"

    # A list body goes as a JSON patch; a failed `test` is 422 and changes nothing.
    rv = patched["metadata"]["resourceVersion"]
    patched = await custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name,
        [{"op": "test", "path": "/metadata/resourceVersion", "value": rv},
         {"op": "replace", "path": "/spec/replicas", "value": 5},
         {"op": "add", "path": "/metadata/finalizers", "value": ["example.com/hold"]}])
    assert patched["spec"]["replicas"] == 5
    assert patched["metadata"]["finalizers"] == ["example.com/hold"]
    with pytest.raises(ApiException) as exc:
        await custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name,
            [{"op": "test", "path": "/metadata/resourceVersion", "value": rv},
             {"op": "remove", "path": "/metadata/finalizers"}])
    assert exc.value.status == 422
    held = await custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    assert held["metadata"]["finalizers"] == ["example.com/hold"]
    await custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name, [{"op": "remove", "path": "/metadata/finalizers"}])

    cm = unique("settings")
    await core.create_namespaced_config_map(namespace, configmap(cm))
    # A dict on a built-in goes as a strategic merge patch unless told otherwise.
    smp = await core.patch_namespaced_config_map(cm, namespace, {"data": {"pod-cidr": None}})
    assert smp.data == {"cluster-name": "alpha"}
    merged = await patch_as(MERGE, core.patch_namespaced_config_map, cm, namespace,
                            {"data": {"extra": "1"}})
    assert merged.data == {"cluster-name": "alpha", "extra": "1"}
    jp = await core.patch_namespaced_config_map(
        cm, namespace, [{"op": "move", "from": "/data/extra", "path": "/data/moved"}])
    assert jp.data == {"cluster-name": "alpha", "moved": "1"}
    with pytest.raises(ApiException) as exc:
        await patch_as(JSON_PATCH, core.patch_namespaced_config_map, cm, namespace,
                       [{"op": "remove", "path": "/data/missing"}])
    assert exc.value.status == 422


# ---------------------------------------------------------------------------------- status


async def test_status_subresource(custom: client.CustomObjectsApi, namespace: str) -> None:
    name = unique("md")
    await create_md(custom, namespace, name)
    status = {"replicas": 2, "readyReplicas": 2, "phase": "Running"}
    written = await patch_as(
        MERGE, custom.patch_namespaced_custom_object_status, GROUP, VERSION, namespace, PLURAL,
        name, {"status": status, "spec": {"replicas": 9}})
    assert written["status"] == status
    assert written["spec"]["replicas"] == 2  # spec is ignored on /status
    assert written["metadata"]["generation"] == 1

    read = await custom.get_namespaced_custom_object_status(GROUP, VERSION, namespace, PLURAL,
                                                            name)
    assert read["status"] == status
    read["status"]["phase"] = "ScalingUp"
    replaced = await custom.replace_namespaced_custom_object_status(
        GROUP, VERSION, namespace, PLURAL, name, read)
    assert replaced["status"]["phase"] == "ScalingUp"

    # A write to the main resource leaves status alone.
    main = await patch_as(MERGE, custom.patch_namespaced_custom_object, GROUP, VERSION,
                          namespace, PLURAL, name, {"status": {"phase": "Lost"}})
    assert main["status"]["phase"] == "ScalingUp"


# ----------------------------------------------------------------------------------- watch


async def test_watch_custom_resource(custom: client.CustomObjectsApi, namespace: str) -> None:
    listed = await custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
    rv = listed["metadata"]["resourceVersion"]
    name = unique("md")
    await create_md(custom, namespace, name)
    seen: list[tuple[str, Any]] = []
    async with watch.Watch().stream(custom.list_namespaced_custom_object, GROUP, VERSION,
                                    namespace, PLURAL, resource_version=rv,
                                    timeout_seconds=WATCH_TIMEOUT) as stream:
        async for event in stream:
            obj = event["object"]
            assert obj["metadata"]["name"] == name
            seen.append((event["type"], obj.get("status", {}).get("phase")))
            if event["type"] == "ADDED":
                await patch_as(MERGE, custom.patch_namespaced_custom_object_status, GROUP,
                               VERSION, namespace, PLURAL, name, {"status": {"phase": "Running"}})
            elif event["type"] == "MODIFIED":
                await custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL,
                                                             name)
            else:
                stream.stop()
    assert seen == [("ADDED", None), ("MODIFIED", "Running"), ("DELETED", "Running")]


async def test_watch_configmaps_with_selector(core: client.CoreV1Api, namespace: str) -> None:
    rv = (await core.list_namespaced_config_map(namespace)).metadata.resource_version
    name = unique("settings")

    async def mutate() -> None:
        await core.create_namespaced_config_map(namespace, client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name=unique("unwatched"), labels={"watched": "no"})))
        await core.create_namespaced_config_map(namespace, client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name=name, labels={"watched": "yes"})))
        await core.patch_namespaced_config_map(name, namespace, {"data": {"k": "v"}})
        await core.delete_namespaced_config_map(name, namespace)

    seen: list[tuple[str, str, dict[str, str] | None]] = []
    stream = watch.Watch().stream(core.list_namespaced_config_map, namespace,
                                  label_selector="watched=yes", resource_version=rv,
                                  timeout_seconds=WATCH_TIMEOUT)
    writer = asyncio.create_task(mutate())
    async with stream:
        async for event in stream:
            cm = event["object"]
            assert isinstance(cm, client.V1ConfigMap)
            assert event["raw_object"]["kind"] == "ConfigMap"
            seen.append((event["type"], cm.metadata.name, cm.data))
            if event["type"] == "DELETED":
                stream.stop()
    await writer
    assert seen == [("ADDED", name, None), ("MODIFIED", name, {"k": "v"}),
                    ("DELETED", name, {"k": "v"})]

