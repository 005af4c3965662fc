"""The admin kubeconfig `shipyard apiserver` writes next to its data.

A kubeconfig is the contract with every client (kubectl, the official clients, our controllers):
cluster ``shipyard`` (server URL plus the CA, inlined as certificate-authority-data so the file
can be copied anywhere), user ``shipyard-admin`` (the bearer token of the static token file) and
context ``shipyard``, current. It carries a credential, so it is written 0600 and atomically.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import secrets
from pathlib import Path
from typing import Any

import yaml

CLUSTER_NAME = "shipyard"
CONTEXT_NAME = "shipyard"
USER_NAME = "shipyard-admin"


def server_url(bind_address: str, port: int, *, insecure: bool = False) -> str:
    """The URL a local client should use for a server bound to ``bind_address``."""
    host = bind_address.strip("[]")
    if host in ("", "0.0.0.0", "localhost"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    try:
        if ipaddress.ip_address(host).version == 6:
            host = f"[{host}]"
    except ValueError:
        pass
    return f"{'http' if insecure else 'https'}://{host}:{port}"


def admin_kubeconfig(server: str, token: str, ca_pem: bytes | None) -> dict[str, Any]:
    cluster: dict[str, Any] = {"server": server}
    if ca_pem is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode("ascii")
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CLUSTER_NAME, "cluster": cluster}],
        "users": [{"name": USER_NAME, "user": {"token": token}}],
        "contexts": [
            {"name": CONTEXT_NAME, "context": {"cluster": CLUSTER_NAME, "user": USER_NAME}}
        ],
        "current-context": CONTEXT_NAME,
        "preferences": {},
    }


def write_kubeconfig(path: Path, config: dict[str, Any]) -> None:
    text = yaml.safe_dump(config, sort_keys=False)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
