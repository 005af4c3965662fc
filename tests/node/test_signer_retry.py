"""A node's certificate request survives a busy control plane: while etcd elects a leader or a
member joins, the API server answers 500 or times out; the joining node retries until its
deadline instead of failing its bootstrap for good (the Docker provider never re-runs one)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from shipyard.apimachinery.errors import InternalError
from shipyard.bootstrap.kubeadm import certs
from shipyard.client import FakeClient
from shipyard.node import signer


class FlakyServer(FakeClient):
    """The API server of a control plane whose etcd lost quorum for a moment: the first
    `failures` writes and reads of the request fail with a 500, as ours answers then."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.refused = 0

    def _flake(self) -> None:
        if self.refused < self.failures:
            self.refused += 1
            raise InternalError("etcdserver: request timed out")

    async def create(self, obj: Any, **kwargs: Any) -> Any:
        if obj.get("type") == signer.CSR_TYPE:
            self._flake()
        return await super().create(obj, **kwargs)

    async def get(self, *args: Any, **kwargs: Any) -> Any:
        self._flake()
        return await super().get(*args, **kwargs)


def write_ca(root: Path) -> certs.KeyPair:
    ca = certs.generate_ca()
    pki = root / "etc/kubernetes/pki"
    pki.mkdir(parents=True)
    (pki / "ca.crt").write_bytes(ca.cert)
    (pki / "ca.key").write_bytes(ca.key)
    return ca


async def test_a_failing_server_is_retried_until_the_certificate_comes(tmp_path: Path) -> None:
    write_ca(tmp_path)
    server = FlakyServer(failures=3)
    obtaining = asyncio.create_task(signer.obtain(server, "worker-1", timeout=30))
    while not obtaining.done():
        await signer.sign_pending(server, tmp_path)
        await asyncio.sleep(0.1)
    pair = obtaining.result()
    assert server.refused == 3
    cert = x509.load_pem_x509_certificate(pair.cert)
    assert cert.subject.rfc4514_string() == "CN=system:node:worker-1,O=system:nodes"


async def test_a_server_that_keeps_failing_fails_at_the_deadline(tmp_path: Path) -> None:
    server = FlakyServer(failures=10_000)
    with pytest.raises(InternalError):
        await signer.obtain(server, "worker-2", timeout=1.5)
    assert server.refused >= 2
