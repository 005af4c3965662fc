"""KubeadmControlPlane admission: upstream's webhook verdicts, as CEL rules, give the same answer
(status, field path, message) on Shipyard's server and on kube-apiserver 1.33; the CRDs carry
upstream's contract label, scale subresource and printer columns."""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from shipyard.controlplane.kubeadm import types
from tests.integration.live import CRD_PATH
from tests.kube import Client, Response, Server

Obj = dict[str, Any]


def _install(api: Client, manifest: Obj) -> None:
    name = manifest["metadata"]["name"]
    current = api.get(f"{CRD_PATH}/{name}")
    if current.status == 404:
        resp = api.post(CRD_PATH, manifest)
        assert resp.status in (201, 409), resp.body
    else:
        body = copy.deepcopy(manifest)
        body["metadata"]["resourceVersion"] = current.json()["metadata"]["resourceVersion"]
        resp = api.put(f"{CRD_PATH}/{name}", body)
        assert resp.status == 200, resp.body
    deadline = time.monotonic() + 30
    while True:
        crd = api.get(f"{CRD_PATH}/{name}").json()
        if any(c["type"] == "Established" and c["status"] == "True"
               for c in (crd.get("status") or {}).get("conditions") or []):
            return
        assert time.monotonic() < deadline, f"{name} not Established"
        time.sleep(0.05)


def _setup(server: Server) -> Iterator[tuple[Client, str]]:
    api = server.client()
    for manifest in types.crd_manifests():
        _install(api, manifest)
    ns = f"kcp-{uuid.uuid4().hex[:8]}"
    assert api.post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                           "metadata": {"name": ns}}).status == 201
    yield api, ns
    api.delete(f"/api/v1/namespaces/{ns}")
    api.pool.clear()


@pytest.fixture(scope="module")
def shipyard(server: Server) -> Iterator[tuple[Client, str]]:
    yield from _setup(server)


@pytest.fixture(scope="module")
def kube(realkube_server: Server) -> Iterator[tuple[Client, str]]:
    yield from _setup(realkube_server)


def kcp(name: str, **spec: Any) -> Obj:
    body: Obj = {
        "version": "v1.33.0",
        "machineTemplate": {"spec": {"infrastructureRef": {
            "apiGroup": "infrastructure.cluster.x-k8s.io", "kind": "InMemoryMachineTemplate",
            "name": "cp"}}},
        "kubeadmConfigSpec": {"clusterConfiguration": {"apiServer": {}}},
    }
    body.update(spec)
    return {"apiVersion": types.API_VERSION, "kind": "KubeadmControlPlane",
            "metadata": {"name": name}, "spec": body}


def _path(ns: str) -> str:
    return f"/apis/{types.API_VERSION}/namespaces/{ns}/kubeadmcontrolplanes"


ROLL = "spec.rollout.strategy.rollingUpdate"
EXTERNAL = {"clusterConfiguration": {"etcd": {"external": {"endpoints": ["https://e:2379"]}}}}
CASES: list[tuple[str, Obj, tuple[str, str] | None]] = [
    ("valid-3", {"replicas": 3}, None),
    ("default-1", {}, None),
    ("even-stacked", {"replicas": 2}, ("spec.replicas",
                                        "cannot be an even number when etcd is stacked")),
    ("even-external", {"replicas": 2, "kubeadmConfigSpec": EXTERNAL}, None),
    ("zero", {"replicas": 0}, ("spec.replicas", "cannot be less than or equal to 0")),
    ("negative", {"replicas": -1}, ("spec.replicas", "cannot be less than or equal to 0")),
    ("bad-version", {"version": "1.33"}, ("spec.version", "must be a valid semantic version")),
    ("max-surge-2", {"replicas": 3, "rollout": {"strategy": {
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 2}}}},
     (f"{ROLL}.maxSurge", "value must be 1 or 0")),
    ("max-surge-0-one-replica", {"replicas": 1, "rollout": {"strategy": {
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0}}}},
     (ROLL, "when KubeadmControlPlane is configured to scale-in, replica count needs to be "
            "at least 3")),
    ("max-surge-0-three", {"replicas": 3, "rollout": {"strategy": {
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0}}}}, None),
    ("max-surge-string-1", {"replicas": 1, "rollout": {"strategy": {
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": "1"}}}}, None),
]


def _verdict(api: Client, ns: str, case_id: str, spec: Obj) -> Response:
    return api.post(_path(ns), kcp(f"{case_id}-{uuid.uuid4().hex[:5]}", **spec))


def _causes(resp: Response) -> list[tuple[str, str]]:
    status = resp.json()
    assert status["reason"] == "Invalid", status
    return sorted((c.get("field", ""), c.get("message", ""))
                  for c in status["details"].get("causes") or [])


def _check(resp: Response, expect: tuple[str, str] | None) -> None:
    if expect is None:
        assert resp.status == 201, resp.body
        return
    assert resp.status == 422, resp.body
    assert any(f == expect[0] and expect[1] in m for f, m in _causes(resp)), _causes(resp)


@pytest.mark.parametrize(("case_id", "spec", "expect"), CASES, ids=[c[0] for c in CASES])
def test_admission_on_shipyard(shipyard: tuple[Client, str], case_id: str, spec: Obj,
                               expect: tuple[str, str] | None) -> None:
    api, ns = shipyard
    _check(_verdict(api, ns, case_id, spec), expect)


@pytest.mark.parametrize(("case_id", "spec", "expect"), CASES, ids=[c[0] for c in CASES])
def test_same_verdict_on_kube(kube: tuple[Client, str], shipyard: tuple[Client, str],
                              case_id: str, spec: Obj, expect: tuple[str, str] | None) -> None:
    on_kube = _verdict(*kube, case_id, spec)
    _check(on_kube, expect)
    on_shipyard = _verdict(*shipyard, case_id, spec)
    assert on_shipyard.status == on_kube.status, on_shipyard.body
    if expect is not None:
        assert _causes(on_shipyard) == _causes(on_kube)


def test_replicas_default_to_one(shipyard: tuple[Client, str]) -> None:
    api, ns = shipyard
    created = api.post(_path(ns), kcp("defaulted"))
    assert created.status == 201, created.body
    assert created.json()["spec"]["replicas"] == 1


@pytest.mark.parametrize("target", ["shipyard", "kube"])
def test_scale_subresource_refuses_zero_and_even(request: pytest.FixtureRequest,
                                                 target: str) -> None:
    api, ns = request.getfixturevalue(target)
    name = f"scaled-{uuid.uuid4().hex[:5]}"
    assert api.post(_path(ns), kcp(name, replicas=1)).status == 201
    scale_path = f"{_path(ns)}/{name}/scale"
    status = {"status": {"selector": "cluster.x-k8s.io/control-plane-name=" + name,
                         "replicas": 1}}
    assert api.patch(f"{_path(ns)}/{name}/status", status,
                     content_type="application/merge-patch+json").status == 200
    scale = api.get(scale_path).json()
    assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 1
    assert scale["status"]["selector"] == status["status"]["selector"]
    for replicas, message in ((0, "cannot be less than or equal to 0"),
                              (2, "cannot be an even number when etcd is stacked")):
        resp = api.patch(scale_path, {"spec": {"replicas": replicas}},
                         content_type="application/merge-patch+json")
        assert resp.status == 422, resp.body
        assert any(f == "spec.replicas" and message in m for f, m in _causes(resp)), \
            _causes(resp)
    resp = api.patch(scale_path, {"spec": {"replicas": 3}},
                     content_type="application/merge-patch+json")
    assert resp.status == 200, resp.body
    assert api.get(f"{_path(ns)}/{name}").json()["spec"]["replicas"] == 3


def test_crds_carry_contract_label_and_columns() -> None:
    kcp_crd, template_crd = types.crd_manifests()
    for crd in (kcp_crd, template_crd):
        assert crd["metadata"]["labels"]["cluster.x-k8s.io/v1beta2"] == "v1beta2"
    version = kcp_crd["spec"]["versions"][0]
    assert version["subresources"]["scale"] == {
        "specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector"}
    assert [c["name"] for c in version["additionalPrinterColumns"]] == [
        "Cluster", "Available", "Desired", "Current", "Ready", "Available", "Up-to-date",
        "Paused", "Initialized", "Age", "Version"]
    assert kcp_crd["spec"]["names"]["shortNames"] == ["kcp"]
