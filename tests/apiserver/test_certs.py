"""The management plane PKI: created once, reused on restart, keys private, chains verifiable."""

from __future__ import annotations

import datetime
import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from shipyard.apiserver import certs
from shipyard.apiserver.authn import load_token_file


def _files(pki: certs.PKI) -> dict[str, bytes]:
    paths = [pki.ca_cert, pki.ca_key, pki.serving_cert, pki.serving_key, pki.admin_cert,
             pki.admin_key, pki.token_file]
    return {p.name: p.read_bytes() for p in paths}


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def pki(tmp_path: Path) -> certs.PKI:
    return certs.ensure_pki(tmp_path / "pki", key_type="ecdsa")


def test_leaves_chain_to_the_ca(pki: certs.PKI) -> None:
    ca = certs.load_cert(pki.ca_cert)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    for path in (pki.serving_cert, pki.admin_cert):
        leaf = certs.load_cert(path)
        leaf.verify_directly_issued_by(ca)
        assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_serving_certificate_covers_loopback_and_extra_sans(tmp_path: Path) -> None:
    pki = certs.ensure_pki(tmp_path, key_type="ecdsa", extra_sans=["api.example", "10.1.2.3"])
    cert = certs.load_cert(pki.serving_cert)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {"localhost", "api.example"}
    assert set(san.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"),
        ipaddress.ip_address("10.1.2.3"),
    }
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]


def test_admin_certificate_is_system_masters(pki: certs.PKI) -> None:
    cert = certs.load_cert(pki.admin_cert)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "shipyard-admin"
    orgs = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    assert orgs == ["system:masters"]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_keys_and_token_are_private(pki: certs.PKI) -> None:
    for path in (pki.ca_key, pki.serving_key, pki.admin_key, pki.token_file):
        assert _mode(path) == 0o600, path
    for path in (pki.ca_cert, pki.serving_cert, pki.admin_cert):
        assert _mode(path) == 0o644, path
    assert _mode(pki.dir) == 0o700
    assert not [p for p in pki.dir.iterdir() if p.name.endswith(".tmp")]


def test_token_file_is_a_kube_static_token_file(pki: certs.PKI) -> None:
    assert len(pki.admin_token) >= 40
    assert load_token_file(pki.token_file) == {
        pki.admin_token: {"name": "shipyard-admin", "groups": ["system:masters"]}
    }


def test_restart_reuses_everything(pki: certs.PKI) -> None:
    before = _files(pki)
    again = certs.ensure_pki(pki.dir, key_type="ecdsa")
    assert _files(again) == before
    assert again.admin_token == pki.admin_token


def test_new_san_reissues_serving_cert_from_the_same_ca(pki: certs.PKI) -> None:
    before = _files(pki)
    certs.ensure_pki(pki.dir, key_type="ecdsa", extra_sans=["192.0.2.7"])
    after = _files(pki)
    changed = {name for name in before if before[name] != after[name]}
    assert changed == {"apiserver.crt", "apiserver.key"}
    certs.load_cert(pki.serving_cert).verify_directly_issued_by(certs.load_cert(pki.ca_cert))


def test_leaf_near_expiry_is_renewed(pki: certs.PKI) -> None:
    ca, ca_key = certs.load_cert(pki.ca_cert), certs.load_key(pki.ca_key)
    key = certs.load_key(pki.admin_key)
    short = certs.issue_certificate(
        ca, ca_key, key, common_name="shipyard-admin", organizations=["system:masters"],
        client=True, validity=datetime.timedelta(days=2),
    )
    certs.write_cert(pki.admin_cert, short)
    certs.ensure_pki(pki.dir, key_type="ecdsa")
    renewed = certs.load_cert(pki.admin_cert)
    assert renewed.serial_number != short.serial_number
    assert renewed.not_valid_after_utc - datetime.datetime.now(datetime.UTC) > certs.RENEW_BEFORE


def test_corrupt_leaf_is_reissued(pki: certs.PKI) -> None:
    pki.serving_key.write_bytes(b"not a key")
    certs.ensure_pki(pki.dir, key_type="ecdsa")
    key = certs.load_key(pki.serving_key)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    cert = certs.load_cert(pki.serving_cert)
    assert cert.public_key() == key.public_key()


def test_incomplete_ca_is_an_error_not_a_new_ca(pki: certs.PKI) -> None:
    ca_bytes = pki.ca_cert.read_bytes()
    pki.ca_key.unlink()
    with pytest.raises(certs.PKIError, match="ca.key is missing"):
        certs.ensure_pki(pki.dir, key_type="ecdsa")
    assert pki.ca_cert.read_bytes() == ca_bytes
    assert not pki.ca_key.exists()


def test_mismatched_ca_key_is_an_error(pki: certs.PKI, tmp_path: Path) -> None:
    other = certs.ensure_pki(tmp_path / "other", key_type="ecdsa")
    pki.ca_key.write_bytes(other.ca_key.read_bytes())
    with pytest.raises(certs.PKIError, match="is not the key of"):
        certs.ensure_pki(pki.dir, key_type="ecdsa")


def test_default_keys_are_rsa_2048(tmp_path: Path) -> None:
    pki = certs.ensure_pki(tmp_path)
    for path in (pki.ca_key, pki.serving_key, pki.admin_key):
        key = certs.load_key(path)
        assert isinstance(key, rsa.RSAPrivateKey)
        assert key.key_size == 2048


def test_unknown_key_type_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown key type"):
        certs.generate_key("dsa")  # type: ignore[arg-type]
