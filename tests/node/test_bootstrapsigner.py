"""cluster-info's JWS: a detached HS256 signature only the token's holder can produce."""

from __future__ import annotations

import base64
import datetime
import json

from shipyard.node import bootstrapsigner


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_detached_signature_shape_and_verification() -> None:
    content = "apiVersion: v1\nkind: Config\n"
    signature = bootstrapsigner.detached_signature(content, "abcdef", "0123456789abcdef")
    header, payload, mac = signature.split(".")
    assert payload == ""  # detached
    assert json.loads(_unb64url(header)) == {"alg": "HS256", "kid": "abcdef"}
    assert len(_unb64url(mac)) == 32
    assert bootstrapsigner.verify(content, signature, "abcdef", "0123456789abcdef")
    assert not bootstrapsigner.verify(content + " ", signature, "abcdef", "0123456789abcdef")
    assert not bootstrapsigner.verify(content, signature, "abcdef", "fedcba9876543210")


def _token(token_id: str, *, signing: str = "true", expires_in: float = 3600) -> dict[str, object]:
    expiration = (datetime.datetime.now(datetime.UTC)
                  + datetime.timedelta(seconds=expires_in)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def b64(value: str) -> str:
        return base64.b64encode(value.encode()).decode()

    return {"type": "bootstrap.kubernetes.io/token",
            "data": {"token-id": b64(token_id), "token-secret": b64("0123456789abcdef"),
                     "usage-bootstrap-signing": b64(signing), "expiration": b64(expiration)}}


def test_only_valid_signing_tokens_sign() -> None:
    tokens = bootstrapsigner.signing_tokens([
        _token("aaaaaa"), _token("bbbbbb", signing="false"), _token("cccccc", expires_in=-5),
        {"type": "Opaque", "data": {}}])
    assert tokens == {"aaaaaa": "0123456789abcdef"}
