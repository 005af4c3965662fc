"""Test helpers for talking to a running API server: a tiny HTTPS client and kubectl runner.

Deliberately not `shipyard.client`: tests of the server must not share code with what they test.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import urllib3

KUBECTL_DIR = Path(shutil.which("gcloud") or "/usr/bin/gcloud").resolve().parent
KUBECTL_VERSIONS = ("1.27", "1.28", "1.29", "1.30", "1.31", "1.32", "1.33")


def kubectl_binary(version: str) -> Path:
    return KUBECTL_DIR / f"kubectl.{version}"


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Client:
    def __init__(self, url: str, token: str | None, ca_file: Path | None) -> None:
        self.url = url
        self.token = token
        self.pool = urllib3.PoolManager(
            ca_certs=str(ca_file) if ca_file else None,
            cert_reqs="CERT_REQUIRED" if ca_file else "CERT_NONE",
            retries=False,
            timeout=urllib3.Timeout(connect=5, read=30),
        )

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
        preload: bool = True,
    ) -> Response:
        hdrs = {"Accept": "application/json"}
        if self.token:
            hdrs["Authorization"] = f"Bearer {self.token}"
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
        if data is not None:
            hdrs["Content-Type"] = content_type
        hdrs.update(headers or {})
        resp = self.pool.request(method, self.url + path, body=data, headers=hdrs,
                                 preload_content=preload)
        return Response(resp.status, {k.lower(): v for k, v in resp.headers.items()},
                        resp.data if preload else b"")

    def get(self, path: str, **kw: Any) -> Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any, **kw: Any) -> Response:
        return self.request("POST", path, body, **kw)

    def put(self, path: str, body: Any, **kw: Any) -> Response:
        return self.request("PUT", path, body, **kw)

    def patch(self, path: str, body: Any, content_type: str = "application/merge-patch+json",
              **kw: Any) -> Response:
        return self.request("PATCH", path, body, content_type=content_type, **kw)

    def delete(self, path: str, body: Any = None, **kw: Any) -> Response:
        return self.request("DELETE", path, body, **kw)

    def stream(self, path: str, timeout: float = 10) -> Iterator[dict[str, Any]]:
        """Yield watch events (decoded lines) until the server ends the stream."""
        hdrs = {"Accept": "application/json"}
        if self.token:
            hdrs["Authorization"] = f"Bearer {self.token}"
        resp = self.pool.request("GET", self.url + path, headers=hdrs, preload_content=False,
                                 timeout=urllib3.Timeout(connect=5, read=timeout))
        assert resp.status == 200, resp.data
        buf = b""
        try:
            for chunk in resp.stream(1024, decode_content=False):
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    if line.strip():
                        yield json.loads(line)
        finally:
            resp.release_conn()


@dataclass
class Server:
    url: str
    token: str
    ca_file: Path
    kubeconfig: Path
    home: Path

    def client(self, token: str | None = "", ca: bool = True) -> Client:
        return Client(self.url, self.token if token == "" else token,
                      self.ca_file if ca else None)

    def kubectl(
        self, *args: str, version: str = "1.33", stdin: str | None = None,
        check: bool = True, env: dict[str, str] | None = None, timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        full_env = {**os.environ, "HOME": str(self.home), "KUBECONFIG": str(self.kubeconfig)}
        full_env.update(env or {})
        proc = subprocess.run(
            [str(kubectl_binary(version)), *args], input=stdin, capture_output=True,
            text=True, env=full_env, timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}"
            )
        return proc
