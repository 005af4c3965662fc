"""Applying cloud-init user-data inside a machine root: re-rooting, permissions, encodings,
Jinja, runcmd, and the status file a provider reads."""

from __future__ import annotations

import base64
import gzip
import stat
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from shipyard.bootstrap.kubeadm import cloudinit as render
from shipyard.node import cloudinit
from shipyard.node.machine import MachineInfo


def _machine(root: Path) -> MachineInfo:
    return {"root": str(root), "providerID": "process://c/m-0", "address": "127.0.3.4",
            "hostname": "m-0"}


def _user_data(doc: Mapping[str, Any], jinja: bool = True) -> str:
    return (render.HEADER if jinja else "#cloud-config\n") + yaml.safe_dump(doc)


def test_write_files_rerooted_with_permissions_and_encodings(tmp_path: Path) -> None:
    root = tmp_path / "root"
    doc = {"write_files": [
        {"path": "/etc/kubernetes/pki/ca.key", "permissions": "0600", "owner": "root:root",
         "content": "KEY\n"},
        {"path": "/etc/b64.bin", "encoding": "b64",
         "content": base64.b64encode(b"\x00\x01binary").decode()},
        {"path": "/etc/gz.txt", "encoding": "gz+b64",
         "content": base64.b64encode(gzip.compress(b"zipped")).decode()},
        {"path": "/etc/appended", "content": "one\n"},
        {"path": "/etc/appended", "content": "two\n", "append": True},
    ]}
    assert cloudinit.apply(_user_data(doc), _machine(root))
    key = root / "etc/kubernetes/pki/ca.key"
    assert key.read_text() == "KEY\n"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE((root / "etc/appended").stat().st_mode) == 0o644
    assert (root / "etc/b64.bin").read_bytes() == b"\x00\x01binary"
    assert (root / "etc/gz.txt").read_bytes() == b"zipped"
    assert (root / "etc/appended").read_text() == "one\ntwo\n"
    assert not Path("/etc/appended").exists()
    status = cloudinit.read_status(root)
    assert status is not None and status["phase"] == "Running" and "reason" not in status


def test_jinja_header_expands_instance_data(tmp_path: Path) -> None:
    root = tmp_path / "root"
    doc = {"write_files": [{"path": "/run/kubeadm/kubeadm.yaml", "content":
                            "name: '{{ ds.meta_data.local_hostname }}'\n"
                            "host: {{ds.meta_data.hostname}}\n"
                            "v1: {{ v1.local_hostname }}\n"
                            "missing: {{ ds.meta_data.nope }}\n"}]}
    assert cloudinit.apply(_user_data(doc), _machine(root))
    written = yaml.safe_load((root / "run/kubeadm/kubeadm.yaml").read_text())
    assert written == {"name": "m-0", "host": "m-0", "v1": "m-0",
                       "missing": "CI_MISSING_JINJA_VAR/ds.meta_data.nope"}


def test_without_jinja_header_braces_stay(tmp_path: Path) -> None:
    root = tmp_path / "root"
    doc = {"write_files": [{"path": "/etc/t", "content": "{{ ds.meta_data.hostname }}"}]}
    assert cloudinit.apply(_user_data(doc, jinja=False), _machine(root))
    assert (root / "etc/t").read_text() == "{{ ds.meta_data.hostname }}"


def test_runcmd_list_and_string_forms_and_sentinel(tmp_path: Path) -> None:
    root = tmp_path / "root"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "kubeadm"
    tool.write_text("#!/bin/sh\necho \"kubeadm $*\" >> \"$SHIPYARD_NODE_ROOT/kubeadm.calls\"\n")
    tool.chmod(0o755)
    doc = {"write_files": [{"path": render.PLACEHOLDER_PATH, "content": "x"},
                           {"path": "/etc/hosts.extra", "content": ""}],
           "bootcmd": [["sh", "-c", "echo boot > /var/boot.txt"]],
           "runcmd": ["echo pre > /run/pre.txt",
                      f"kubeadm init --config {render.INIT_CONFIG_PATH} && "
                      f"{render.SENTINEL_COMMAND}",
                      ["touch", "/etc/post"]]}
    assert cloudinit.apply(_user_data(doc), _machine(root), bin_dir=bin_dir)
    assert (root / "var/boot.txt").read_text() == "boot\n"
    assert (root / "run/pre.txt").read_text() == "pre\n"
    assert (root / "etc/post").exists()
    assert (root / render.SENTINEL_PATH.lstrip("/")).read_text() == "success\n"
    assert (root / "kubeadm.calls").read_text() == (
        f"kubeadm init --config {root}{render.INIT_CONFIG_PATH}\n")
    string_form = tmp_path / "root2"
    assert cloudinit.apply(_user_data({"runcmd": "echo one > /run/a\necho two >> /run/a"}),
                           _machine(string_form))
    assert (string_form / "run/a").read_text() == "one\ntwo\n"


def test_failing_runcmd_is_reported_in_status(tmp_path: Path) -> None:
    root = tmp_path / "root"
    doc = {"runcmd": ["echo about to fail", "echo 'kubeadm: boom' >&2; exit 3"]}
    assert not cloudinit.apply(_user_data(doc), _machine(root))
    status = cloudinit.read_status(root)
    assert status is not None
    assert status["phase"] == "Failed"
    assert status["reason"] == "RuncmdFailed"
    assert "exited with status 3" in status["message"]
    assert "kubeadm: boom" in status["message"]


def test_runcmd_timeout_and_bad_user_data_are_failures(tmp_path: Path) -> None:
    root = tmp_path / "root"
    assert not cloudinit.apply(_user_data({"runcmd": ["sleep 30"]}), _machine(root),
                               timeout=0.5)
    status = cloudinit.read_status(root)
    assert status is not None and status["reason"] == "RuncmdFailed"
    assert "did not finish within" in status["message"]
    other = tmp_path / "other"
    assert not cloudinit.apply("#!/bin/sh\necho not cloud-config\n", _machine(other))
    status = cloudinit.read_status(other)
    assert status is not None and status["reason"] == "InvalidUserData"


def test_node_run_exit_after_boot_cli(tmp_path: Path) -> None:
    root = tmp_path / "root"
    user_data = tmp_path / "user-data"
    user_data.write_text(_user_data({"runcmd": ["command -v kubeadm > /run/which"]}))
    done = subprocess.run(
        [sys.executable, "-m", "shipyard.cli", "node", "run", "--root", str(root),
         "--user-data", str(user_data), "--provider-id", "process://c/m", "--address",
         "127.0.3.9", "--hostname", "m", "--exit-after-boot"],
        capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert (root / "run/which").read_text().strip() == str(
        root / "usr/local/shipyard/bin/kubeadm")
