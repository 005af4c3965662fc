"""The CRD conversion webhook: apiextensions.k8s.io/v1 ConversionReview in, ConversionReview out.

Why: for v1beta1 and v1beta2 of the Cluster API CRDs to be served by a real kube-apiserver, the
CRDs say ``conversion.strategy: Webhook`` and the apiserver POSTs a ConversionReview to this
endpoint (``/convert``, as upstream's kustomize patch names it). :func:`review` is the pure
function; :class:`ConversionWebhookApp` is a minimal ASGI app around it. One endpoint serves
every multi-version group (core, kubeadm bootstrap, infrastructure): given a mapping of group to
converter, each review goes to the converter of its ``desiredAPIVersion``'s group, as Shipyard's
own API server picks an in-process converter by the CRD's group. Serving it over TLS with a
certificate the CRD's ``caBundle`` trusts is left to whoever deploys it (`shipyard init` does,
see `shipyard.cli.deploy`).

Contract (kube's): the response echoes ``request.uid``; ``convertedObjects`` has one object per
input in the same order, each at ``desiredAPIVersion``; any failure makes the whole response a
``result`` Status with ``status: Failure`` and no objects.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

import orjson

from shipyard.api.converting import ConversionError, Converter, CoreConverter

__all__ = ["ConversionWebhookApp", "review"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class _ByGroup:
    """A Converter handing each conversion to the converter of the target version's group."""

    def __init__(self, converters: Mapping[str, Converter]) -> None:
        self.converters = dict(converters)

    def convert(self, obj: dict[str, Any], to_version: str) -> dict[str, Any]:
        group = to_version.rpartition("/")[0]
        converter = self.converters.get(group)
        if converter is None:
            raise ConversionError(f"no conversion for group {group!r} here")
        return converter.convert(obj, to_version)


def _converter(converter: Converter | Mapping[str, Converter] | None) -> Converter:
    if converter is None:
        return CoreConverter()
    if isinstance(converter, Mapping):
        return _ByGroup(converter)
    return converter


def review(conversion_review: dict[str, Any],
           converter: Converter | Mapping[str, Converter] | None = None) -> dict[str, Any]:
    """Answer one ConversionReview (apiextensions.k8s.io/v1 or v1beta1) with its response.

    ``converter``: one converter, or a mapping of API group to converter (default: the core
    ``cluster.x-k8s.io`` converter alone)."""
    converter = _converter(converter)
    api_version = conversion_review.get("apiVersion") or "apiextensions.k8s.io/v1"
    request = conversion_review.get("request") or {}
    uid = request.get("uid", "")
    desired = request.get("desiredAPIVersion")
    response: dict[str, Any] = {"uid": uid}
    try:
        if not isinstance(desired, str) or "/" not in desired:
            raise ConversionError(f"invalid desiredAPIVersion {desired!r}")
        objects = request.get("objects") or []
        converted = []
        for obj in objects:
            if not isinstance(obj, dict):
                raise ConversionError("objects must be JSON objects")
            converted.append(obj if obj.get("apiVersion") == desired
                             else converter.convert(obj, desired))
        response["convertedObjects"] = converted
        response["result"] = {"status": "Success"}
    except (ConversionError, KeyError, TypeError, ValueError) as err:
        response["convertedObjects"] = []
        response["result"] = {"status": "Failure", "message": str(err)}
    return {"apiVersion": api_version, "kind": "ConversionReview", "response": response}


class ConversionWebhookApp:
    """ASGI app: ``POST /convert`` with a ConversionReview body; 404 elsewhere. ``converter``
    as for :func:`review`."""

    def __init__(self, converter: Converter | Mapping[str, Converter] | None = None,
                 path: str = "/convert") -> None:
        self.converter = _converter(converter)
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] != self.path:
            await _respond(send, 404, {"message": "not found"})
            return
        if scope["method"] != "POST":
            await _respond(send, 405, {"message": "method not allowed"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError as err:
            await _respond(send, 400, {"message": f"invalid JSON: {err}"})
            return
        if not isinstance(payload, dict):
            await _respond(send, 400, {"message": "expected a ConversionReview object"})
            return
        await _respond(send, 200, review(payload, self.converter))


async def _respond(send: Send, status: int, body: dict[str, Any]) -> None:
    data = orjson.dumps(body)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})
