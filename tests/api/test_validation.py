"""Upstream Cluster API's admission checks on Shipyard's own server.

Every case of :mod:`tests.api.validation_cases` is sent to the real server with the checked-in
CRDs installed: bad input is refused with 422 Invalid carrying upstream's field path and message
(whether upstream checks it in the CRD schema or in a validating webhook, here it is the CRD's
schema and CEL rules), and the valid neighbours of each rule are accepted. The same table runs
against kube-apiserver in tests/realkube_test/test_capi_validation.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import yaml

from shipyard.api import crdgen
from shipyard.apiserver.schema.cel import compile_rules
from tests.api.validation_cases import CASES, Case, check, submit
from tests.integration.live import CRD_PATH, install_crd
from tests.kube import Client, Server


@pytest.fixture(scope="module")
def capi(server: Server) -> Iterator[Client]:
    api = server.client()
    for path in sorted(crdgen.CRDS_DIR.glob("*.yaml")):
        manifest = yaml.safe_load(path.read_text())
        if api.get(f"{CRD_PATH}/{manifest['metadata']['name']}").status != 200:
            install_crd(api, manifest)
    yield api
    api.pool.clear()


@pytest.fixture(scope="module")
def namespace(capi: Client) -> Iterator[str]:
    name = f"capi-validation-{uuid.uuid4().hex[:8]}"
    assert capi.post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                             "metadata": {"name": name}}).status == 201
    yield name
    capi.delete(f"/api/v1/namespaces/{name}")


def test_every_rule_compiles_in_shipyards_cel() -> None:
    """A rule the evaluator cannot compile would make the CRD itself invalid."""
    total = 0
    for manifest in crdgen.crds():
        for version in manifest["spec"]["versions"]:
            compiled = compile_rules(version["schema"]["openAPIV3Schema"])
            assert compiled.errors == [], (manifest["metadata"]["name"], compiled.errors)
            total += not compiled.empty
    assert total == 10


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_verdict(capi: Client, namespace: str, case: Case) -> None:
    check(case, submit(capi, case, namespace))
