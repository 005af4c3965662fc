"""Kubeconfig loading: the current (or a named) context to a server URL, TLS and credentials.

Follows client-go's clientcmd for the fields controllers need: `server`,
`certificate-authority`/`-data`, `insecure-skip-tls-verify`, `token`/`tokenFile`,
`client-certificate`/`-data` with `client-key`/`-data`, and the context's namespace. Relative file
paths resolve against the kubeconfig's directory. `KUBECONFIG` may list several files; as in
clientcmd, the first file that sets a key wins. Exec and auth-provider plugins are not supported.
"""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class KubeconfigError(ValueError):
    """The kubeconfig is missing or does not describe a usable context."""


@dataclass
class KubeConfig:
    server: str
    ssl_context: ssl.SSLContext
    namespace: str = "default"
    token: str | None = None
    token_file: str | None = None
    _token_cache: tuple[float, str] | None = field(default=None, repr=False)

    def bearer_token(self) -> str | None:
        """The token; a tokenFile is re-read at most once a minute, as client-go does."""
        if self.token:
            return self.token
        if not self.token_file:
            return None
        now = time.monotonic()
        if self._token_cache is None or now - self._token_cache[0] > 60:
            self._token_cache = (now, Path(self.token_file).read_text().strip())
        return self._token_cache[1]


def default_paths() -> list[Path]:
    env = os.environ.get("KUBECONFIG")
    if env:
        return [Path(p) for p in env.split(os.pathsep) if p]
    return [Path.home() / ".kube" / "config"]


def load_kubeconfig(path: str | os.PathLike[str] | None = None,
                    context: str | None = None) -> KubeConfig:
    paths = [Path(path)] if path is not None else default_paths()
    docs: list[tuple[Path, dict[str, Any]]] = []
    for p in paths:
        if p.exists():
            docs.append((p, yaml.safe_load(p.read_text()) or {}))
    if not docs:
        raise KubeconfigError(f"no kubeconfig found at {', '.join(map(str, paths))}")
    current = context or next((d["current-context"] for _, d in docs
                               if d.get("current-context")), None)
    if not current:
        raise KubeconfigError("kubeconfig has no current-context")
    ctx, _ = _named(docs, "contexts", "context", current)
    cluster, cluster_dir = _named(docs, "clusters", "cluster", ctx.get("cluster", ""))
    user, user_dir = (_named(docs, "users", "user", ctx["user"]) if ctx.get("user")
                      else ({}, docs[0][0].parent))
    server = str(cluster.get("server") or "")
    if not server:
        raise KubeconfigError(f"cluster {ctx.get('cluster')!r} has no server")
    return KubeConfig(
        server=server.rstrip("/"),
        ssl_context=_ssl_context(cluster, cluster_dir, user, user_dir),
        namespace=str(ctx.get("namespace") or "default"),
        token=user.get("token"),
        token_file=str(_resolve(user_dir, user["tokenFile"])) if user.get("tokenFile") else None,
    )


def _named(docs: list[tuple[Path, dict[str, Any]]], section: str, key: str,
           name: str) -> tuple[dict[str, Any], Path]:
    for path, doc in docs:
        for entry in doc.get(section) or []:
            if entry.get("name") == name:
                return dict(entry.get(key) or {}), path.parent
    raise KubeconfigError(f"kubeconfig has no {key} named {name!r}")


def _resolve(base: Path, value: str) -> Path:
    p = Path(os.path.expanduser(value))
    return p if p.is_absolute() else base / p


def _pem(section: dict[str, Any], base: Path, file_key: str) -> bytes | None:
    data = section.get(f"{file_key}-data")
    if data:
        return base64.b64decode(data)
    if section.get(file_key):
        return _resolve(base, section[file_key]).read_bytes()
    return None


def _ssl_context(cluster: dict[str, Any], cluster_dir: Path, user: dict[str, Any],
                 user_dir: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if cluster.get("insecure-skip-tls-verify"):
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ca = _pem(cluster, cluster_dir, "certificate-authority")
        if ca is not None:
            ctx.load_verify_locations(cadata=ca.decode())
    cert = _pem(user, user_dir, "client-certificate")
    key = _pem(user, user_dir, "client-key")
    if cert is not None:
        if key is None:
            raise KubeconfigError("client-certificate given without client-key")
        _load_cert_chain(ctx, cert, key)
    return ctx


def _load_cert_chain(ctx: ssl.SSLContext, cert: bytes, key: bytes) -> None:
    # ssl only loads chains from files; keep them on disk just for the call.
    with tempfile.TemporaryDirectory(prefix="shipyard-kubeconfig-") as tmp:
        cert_path, key_path = Path(tmp) / "tls.crt", Path(tmp) / "tls.key"
        cert_path.write_bytes(cert)
        key_path.touch(mode=0o600)
        key_path.write_bytes(key)
        ctx.load_cert_chain(cert_path, key_path)
