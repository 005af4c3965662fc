"""Manifests for the client conformance tests, and the session's test CRD.

The CRD is a trimmed Cluster API MachineDeployment in a test-only group
(``conformance.shipyard.test``), installed once per session on the shared server so kubectl's
and the Python client's tests exercise a CR with status and scale subresources, printer
columns, defaults and CEL rules.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import yaml

from tests.kube import Client

TESTDATA = Path(__file__).parent
GROUP = "conformance.shipyard.test"
VERSION = "v1beta1"
PLURAL = "machinedeployments"
CRD_NAME = f"{PLURAL}.{GROUP}"
MD_API = f"/apis/{GROUP}/{VERSION}"
MD_RESOURCE = f"machinedeployment.{GROUP}"  # how kubectl names it in its output


def load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((TESTDATA / name).read_text())
    return doc


_CACHE: dict[str, dict[str, Any]] = {}


def manifest(file: str, name: str | None = None, **meta: Any) -> dict[str, Any]:
    """A fresh copy of a testdata manifest, renamed and with extra metadata merged in."""
    if file not in _CACHE:
        _CACHE[file] = load(file)
    doc = copy.deepcopy(_CACHE[file])
    if name is not None:
        doc["metadata"]["name"] = name
    doc["metadata"].update(meta)
    return doc


def machinedeployment(name: str, cluster: str = "alpha", **spec: Any) -> dict[str, Any]:
    doc = manifest("machinedeployment.yaml", name)
    labels = {"cluster.x-k8s.io/cluster-name": cluster,
              "cluster.x-k8s.io/deployment-name": name}
    doc["metadata"]["labels"] = {"cluster.x-k8s.io/cluster-name": cluster}
    doc["spec"]["clusterName"] = cluster
    doc["spec"]["selector"]["matchLabels"] = dict(labels)
    doc["spec"]["template"]["metadata"]["labels"] = dict(labels)
    doc["spec"]["template"]["spec"]["clusterName"] = cluster
    doc["spec"].update(spec)
    return doc


def to_yaml(*docs: dict[str, Any]) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False)


def install_crd(api: Client) -> dict[str, Any]:
    """Create the test CRD (idempotent across the session) and wait until it is Established."""
    resp = api.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                    load("machinedeployment-crd.yaml"))
    assert resp.status in (201, 409), resp.body
    path = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{CRD_NAME}"
    for _ in range(200):
        crd: dict[str, Any] = api.get(path).json()
        conditions = {c["type"]: c["status"] for c in crd.get("status", {}).get("conditions", [])}
        if conditions.get("Established") == "True":
            served = api.get(MD_API)
            if served.status == 200:
                return crd
        time.sleep(0.05)
    raise AssertionError(f"CRD {CRD_NAME} never became Established: {crd.get('status')}")


def wait_until_gone(api: Client, path: str, attempts: int = 400) -> None:
    """Poll until GET answers 404 (the server's garbage collector works asynchronously)."""
    for _ in range(attempts):
        if api.get(path).status == 404:
            return
        time.sleep(0.025)
    raise AssertionError(f"{path} still exists: {api.get(path).body!r}")
