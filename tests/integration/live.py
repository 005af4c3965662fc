"""Helpers for the live-server integration tests: watches that can be cut, polling with a
deadline, a private server on a store we configure, and CRD manifests.

Watch streams here are read line by line with a per-read timeout and closed by dropping the
connection, so a test that stops reading never hands a half-read stream back to the pool.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import urllib3

from shipyard.apiserver import authn, certs
from shipyard.apiserver.app import APIServer
from shipyard.apiserver.serving import ServingOptions, serve_in_thread
from shipyard.storage import SQLiteStore
from tests.kube import Client

T = TypeVar("T")


def query(path: str, **params: Any) -> str:
    """``path`` with URL-encoded query parameters (None values left out)."""
    kept = {k: v for k, v in params.items() if v is not None}
    return path + ("?" + urllib.parse.urlencode(kept) if kept else "")


def wait_for(fn: Callable[[], T | None], timeout: float = 10.0, what: str = "condition") -> T:
    """Poll ``fn`` every 20 ms until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def gone(api: Client, path: str) -> Callable[[], bool]:
    return lambda: api.get(path).status == 404


class Watch:
    """One open watch stream. ``next()`` returns the next event or raises on timeout/EOF."""

    def __init__(self, api: Client, path: str, *, accept: str = "application/json",
                 read_timeout: float = 10.0) -> None:
        headers = {"Accept": accept}
        if api.token:
            headers["Authorization"] = f"Bearer {api.token}"
        self.response = api.pool.request(
            "GET", api.url + path, headers=headers, preload_content=False,
            timeout=urllib3.Timeout(connect=5, read=read_timeout),
        )
        self.status = self.response.status
        self.headers = {k.lower(): v for k, v in self.response.headers.items()}
        self._buffer = b""
        self._chunks = self.response.stream(4096, decode_content=False)
        self.ended = False

    def next(self) -> dict[str, Any]:
        event = self.next_or_end()
        if event is None:
            raise AssertionError("the watch ended")
        return event

    def next_or_end(self) -> dict[str, Any] | None:
        while b"\n" not in self._buffer:
            chunk = next(self._chunks, None)
            if chunk is None:
                self.ended = True
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        if not line.strip():
            return self.next_or_end()
        decoded: dict[str, Any] = json.loads(line)
        return decoded

    def until(self, predicate: Callable[[dict[str, Any]], bool],
              skip: Callable[[dict[str, Any]], bool] | None = None) -> dict[str, Any]:
        """The first event matching ``predicate``; events matching ``skip`` are passed over,
        any other event fails the test."""
        while True:
            event = self.next()
            if predicate(event):
                return event
            if skip is None or not skip(event):
                raise AssertionError(f"unexpected event {event}")

    def rest(self) -> list[dict[str, Any]]:
        """Every remaining event until the server ends the stream."""
        out = []
        while (event := self.next_or_end()) is not None:
            out.append(event)
        return out

    def close(self) -> None:
        self.response.close()
        self.response.release_conn()

    def __enter__(self) -> Watch:
        assert self.status == 200, self.response.read()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def is_bookmark(event: dict[str, Any]) -> bool:
    return bool(event["type"] == "BOOKMARK")


def name_of(event: dict[str, Any]) -> str:
    return str(event["object"]["metadata"]["name"])


# ------------------------------------------------------------------ private servers


@contextmanager
def private_server(root: Path, **store_options: Any) -> Iterator[tuple[Client, APIServer]]:
    """The production composition on ``root/state.db`` (reused if it exists), as conftest
    builds it, but with our own store options; yields a client and the app."""
    pki = certs.ensure_pki(root / "pki", key_type="ecdsa")
    app = APIServer(SQLiteStore(root / "state.db", **store_options), bookmark_interval=1.0)
    secured = authn.Authenticator(app, tokens=authn.load_token_file(pki.token_file),
                                  client_ca=certs.load_cert(pki.ca_cert))
    options = ServingOptions(port=0, cert_file=pki.serving_cert, key_file=pki.serving_key,
                             client_ca_file=pki.ca_cert, shutdown_timeout=1)
    with serve_in_thread(secured, options) as running:
        client = Client(f"https://127.0.0.1:{running.bound_port}", pki.admin_token, pki.ca_cert)
        yield client, app


# ------------------------------------------------------------------ CRDs


def crd(group: str, plural: str, kind: str, *, versions: tuple[str, ...] = ("v1",),
        storage: str | None = None, scope: str = "Namespaced",
        status: bool = False) -> dict[str, Any]:
    schema = {"openAPIV3Schema": {"type": "object", "properties": {
        "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    }}}
    storage = storage or versions[0]
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group, "scope": scope,
            "names": {"plural": plural, "singular": kind.lower(), "kind": kind,
                      "listKind": f"{kind}List"},
            "versions": [{
                "name": v, "served": True, "storage": v == storage, "schema": schema,
                **({"subresources": {"status": {}}} if status else {}),
            } for v in versions],
        },
    }


CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


def install_crd(api: Client, manifest: dict[str, Any]) -> dict[str, Any]:
    """Create a CRD and wait until it is Established; returns the CRD as it then is."""
    resp = api.post(CRD_PATH, manifest)
    assert resp.status == 201, resp.body
    name = manifest["metadata"]["name"]

    def established() -> dict[str, Any] | None:
        obj: dict[str, Any] = api.get(f"{CRD_PATH}/{name}").json()
        conditions = {c["type"]: c["status"]
                      for c in (obj.get("status") or {}).get("conditions") or []}
        return obj if conditions.get("Established") == "True" else None

    return wait_for(established, what=f"CRD {name} Established")
