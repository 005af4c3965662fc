"""The ConversionReview webhook, as a pure function and as an ASGI app."""

from __future__ import annotations

import json
from typing import Any

from shipyard.api.converting import CoreConverter
from shipyard.api.webhook import ConversionWebhookApp, review
from tests.api import examples as ex


def _review(objects: list[dict[str, Any]], desired: str) -> dict[str, Any]:
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
            "request": {"uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
                        "desiredAPIVersion": desired, "objects": objects}}


def test_review_converts_each_object_in_order() -> None:
    out = review(_review([ex.machine_deployment_v1beta1(), ex.mhc_v1beta1()], ex.V2))
    assert out["apiVersion"] == "apiextensions.k8s.io/v1"
    assert out["kind"] == "ConversionReview"
    response = out["response"]
    assert response["uid"] == "705ab4f5-6393-11e8-b7cc-42010a800002"
    assert response["result"] == {"status": "Success"}
    kinds = [(o["kind"], o["apiVersion"]) for o in response["convertedObjects"]]
    assert kinds == [("MachineDeployment", ex.V2), ("MachineHealthCheck", ex.V2)]
    assert response["convertedObjects"][1]["spec"]["checks"]["nodeStartupTimeoutSeconds"] == 600


def test_review_round_trip_through_the_webhook_is_lossless() -> None:
    up = review(_review([ex.cluster_v1beta1()], ex.V2))["response"]["convertedObjects"]
    down = review(_review(up, ex.V1))["response"]["convertedObjects"]
    assert down == [ex.cluster_v1beta1()]


def test_review_failure_is_a_status_result() -> None:
    out = review(_review([ex.cluster_v1beta2()], ex.V1))  # no version known for DockerCluster
    response = out["response"]
    assert response["result"]["status"] == "Failure"
    assert "DockerCluster" in response["result"]["message"]
    assert response["convertedObjects"] == []
    bad = review(_review([ex.cluster_v1beta2()], "v1beta1"))["response"]
    assert bad["result"]["status"] == "Failure"


def test_review_uses_the_given_converter() -> None:
    converter = CoreConverter(lambda group, kind: f"{group}/v1beta1")
    out = review(_review([ex.cluster_v1beta2()], ex.V1), converter)["response"]
    assert out["result"] == {"status": "Success"}
    assert out["convertedObjects"][0]["spec"]["infrastructureRef"]["apiVersion"] == (
        "infrastructure.cluster.x-k8s.io/v1beta1")


async def _call(app: ConversionWebhookApp, method: str, path: str, body: bytes
                ) -> tuple[int, Any]:
    sent: list[dict[str, Any]] = []
    chunks = [{"type": "http.request", "body": body[:10], "more_body": True},
              {"type": "http.request", "body": body[10:], "more_body": False}]

    async def receive() -> dict[str, Any]:
        return chunks.pop(0)

    async def send(message: Any) -> None:
        sent.append(message)

    await app({"type": "http", "method": method, "path": path}, receive, send)
    return sent[0]["status"], json.loads(sent[1]["body"])


async def test_asgi_app_serves_convert() -> None:
    app = ConversionWebhookApp()
    status, body = await _call(app, "POST", "/convert",
                               json.dumps(_review([ex.mhc_v1beta1()], ex.V2)).encode())
    assert status == 200
    assert body["response"]["convertedObjects"][0]["apiVersion"] == ex.V2
    status, _ = await _call(app, "POST", "/elsewhere", b"{}")
    assert status == 404
    status, _ = await _call(app, "GET", "/convert", b"")
    assert status == 405
    status, body = await _call(app, "POST", "/convert", b"not json")
    assert status == 400
