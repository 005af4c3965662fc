"""The admin kubeconfig: what kubectl needs to reach the plane, and private on disk."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest
import yaml

from shipyard.cli.kubeconfig import admin_kubeconfig, server_url, write_kubeconfig


@pytest.mark.parametrize(("bind", "insecure", "url"), [
    ("127.0.0.1", False, "https://127.0.0.1:6443"),
    ("0.0.0.0", False, "https://127.0.0.1:6443"),
    ("localhost", False, "https://127.0.0.1:6443"),
    ("::", False, "https://[::1]:6443"),
    ("::1", False, "https://[::1]:6443"),
    ("[::1]", False, "https://[::1]:6443"),
    ("192.0.2.10", False, "https://192.0.2.10:6443"),
    ("127.0.0.1", True, "http://127.0.0.1:6443"),
])
def test_server_url(bind: str, insecure: bool, url: str) -> None:
    assert server_url(bind, 6443, insecure=insecure) == url


def test_written_kubeconfig(tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    ca = b"-----BEGIN CERTIFICATE-----\nabc\n-----END CERTIFICATE-----\n"
    write_kubeconfig(path, admin_kubeconfig("https://127.0.0.1:6443", "tok", ca))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    config = yaml.safe_load(path.read_text())
    assert config["current-context"] == "shipyard"
    [context] = config["contexts"]
    assert context == {"name": "shipyard",
                       "context": {"cluster": "shipyard", "user": "shipyard-admin"}}
    [cluster] = config["clusters"]
    assert cluster["cluster"]["server"] == "https://127.0.0.1:6443"
    assert base64.b64decode(cluster["cluster"]["certificate-authority-data"]) == ca
    assert config["users"] == [{"name": "shipyard-admin", "user": {"token": "tok"}}]
    assert [p.name for p in tmp_path.iterdir()] == ["kubeconfig"]


def test_insecure_kubeconfig_has_no_ca() -> None:
    config = admin_kubeconfig("http://127.0.0.1:6443", "tok", None)
    assert config["clusters"][0]["cluster"] == {"server": "http://127.0.0.1:6443"}
