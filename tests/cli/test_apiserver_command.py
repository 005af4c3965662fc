"""`shipyard apiserver` option handling that does not need a running server."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from shipyard.apiserver import certs
from shipyard.cli.main import main


def test_help_lists_the_serving_options() -> None:
    result = CliRunner().invoke(main, ["apiserver", "--help"])
    assert result.exit_code == 0
    for option in ("--data-dir", "--bind-address", "--port", "--insecure", "--port-file"):
        assert option in result.output


def test_broken_pki_is_a_clean_error(tmp_path: Path) -> None:
    pki = certs.ensure_pki(tmp_path / "pki", key_type="ecdsa")
    pki.ca_key.unlink()
    result = CliRunner().invoke(main, ["apiserver", "--data-dir", str(tmp_path), "--port", "0"])
    assert result.exit_code == 1
    assert "ca.key is missing" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_etcd_client_certificate_options_are_checked(tmp_path: Path) -> None:
    pki = certs.ensure_pki(tmp_path / "pki", key_type="ecdsa")
    base = ["apiserver", "--data-dir", str(tmp_path), "--port", "0", "--storage", "etcd"]
    lone = CliRunner().invoke(main, [*base, "--etcd-endpoints", "https://127.0.0.1:2379",
                                     "--etcd-certfile", str(pki.ca_cert)])
    assert lone.exit_code == 2 and "--etcd-certfile and --etcd-keyfile go together" in \
        lone.output
    local = CliRunner().invoke(main, [*base, "--etcd-cafile", str(pki.ca_cert)])
    assert local.exit_code == 2 and "need --etcd-endpoints" in local.output
    wrong = CliRunner().invoke(main, [*base, "--etcd-endpoints", "https://127.0.0.1:2379",
                                      "--etcd-cafile", str(pki.ca_cert), "--etcd-certfile",
                                      str(pki.ca_cert), "--etcd-keyfile", str(pki.serving_key)])
    assert wrong.exit_code == 2 and "cannot use the etcd client certificates" in wrong.output
