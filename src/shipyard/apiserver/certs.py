"""The management plane's PKI: one CA, a serving certificate, an admin client certificate, a token.

`shipyard apiserver` must come up with TLS and authentication on first start without the user
creating anything, and must come back with the *same* trust on every restart: a kubeconfig handed
out yesterday keeps working. So `ensure_pki(dir)` is idempotent:

* the CA (``ca.crt``/``ca.key``, 10 years, as kubeadm) is created once and never regenerated; a CA
  that exists but cannot be used (unreadable, expired, key not matching) is an error the operator
  must resolve, never a silent re-key that would orphan every issued credential;
* leaf certificates (``apiserver.crt``, ``admin.crt``, 1 year) are reused while they chain to the
  CA, are not within `RENEW_BEFORE` of expiry and (serving) cover every wanted SAN; otherwise they
  are re-issued by the same CA;
* the admin bearer token lives in ``tokens.csv`` in kube-apiserver's ``--token-auth-file`` format
  (``token,user,uid,"group1,group2"``), so `authn.load_token_file` reads it back.

Private keys and the token file are written 0600, atomically (temp file + rename), so a reader
never sees half a key. The admin identity follows kubeadm's admin.conf: CN=shipyard-admin,
O=system:masters; the x509 authenticator maps CN to the user and O to groups.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import os
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KeyType = Literal["rsa", "ecdsa"]
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

CA_VALIDITY = datetime.timedelta(days=3650)
LEAF_VALIDITY = datetime.timedelta(days=365)
RENEW_BEFORE = datetime.timedelta(days=30)
# Backdate notBefore so a client whose clock is slightly behind accepts a fresh certificate.
CLOCK_SKEW = datetime.timedelta(minutes=5)

CA_COMMON_NAME = "shipyard-ca"
SERVING_COMMON_NAME = "shipyard-apiserver"
ADMIN_USER = "shipyard-admin"
ADMIN_GROUP = "system:masters"
DEFAULT_SANS: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")


class PKIError(Exception):
    """The PKI directory holds something we must not overwrite or cannot use."""


@dataclass(frozen=True, slots=True)
class PKI:
    """Paths of everything `ensure_pki` manages, plus the admin token's value."""

    dir: Path
    ca_cert: Path
    ca_key: Path
    serving_cert: Path
    serving_key: Path
    admin_cert: Path
    admin_key: Path
    token_file: Path
    admin_token: str


def generate_key(key_type: KeyType = "rsa") -> PrivateKey:
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if key_type == "ecdsa":
        return ec.generate_private_key(ec.SECP256R1())
    raise ValueError(f"unknown key type {key_type!r}: want 'rsa' or 'ecdsa'")


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _name(common_name: str, organizations: Sequence[str] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


def _san_entries(sans: Iterable[str]) -> list[x509.GeneralName]:
    entries: list[x509.GeneralName] = []
    seen: set[str] = set()
    for raw in sans:
        san = raw.strip().strip("[]")
        if not san or san in seen:
            continue
        seen.add(san)
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(san)))
        except ValueError:
            entries.append(x509.DNSName(san))
    return entries


def create_ca(key: PrivateKey, common_name: str = CA_COMMON_NAME) -> x509.Certificate:
    now = _now()
    name = _name(common_name)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def issue_certificate(
    ca_cert: x509.Certificate,
    ca_key: PrivateKey,
    key: PrivateKey,
    *,
    common_name: str,
    organizations: Sequence[str] = (),
    sans: Iterable[str] = (),
    server: bool = False,
    client: bool = False,
    validity: datetime.timedelta = LEAF_VALIDITY,
) -> x509.Certificate:
    """Sign a leaf certificate for ``key``; ``server``/``client`` choose the extended key usage."""
    now = _now()
    usages = []
    if server:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
    if client:
        usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name, organizations))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(min(now + validity, ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False,
                key_encipherment=isinstance(key, rsa.RSAPrivateKey), data_encipherment=False,
                key_agreement=False, key_cert_sign=False, crl_sign=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    entries = _san_entries(sans)
    if entries:
        builder = builder.add_extension(x509.SubjectAlternativeName(entries), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)  # the umask may have narrowed or (for 0644) not mattered
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_key(path: Path, key: PrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_atomic(path, pem, 0o600)


def write_cert(path: Path, cert: x509.Certificate) -> None:
    _write_atomic(path, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def load_key(path: Path) -> PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise PKIError(f"{path}: unsupported key type {type(key).__name__}")
    return key


def _public_der(key: PrivateKey | x509.Certificate) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _ensure_ca(ca_cert_path: Path, ca_key_path: Path, key_type: KeyType) -> tuple[
    x509.Certificate, PrivateKey
]:
    if not ca_cert_path.exists() and not ca_key_path.exists():
        key = generate_key(key_type)
        cert = create_ca(key)
        write_key(ca_key_path, key)
        write_cert(ca_cert_path, cert)
        return cert, key
    if not ca_cert_path.exists() or not ca_key_path.exists():
        missing = ca_key_path if ca_cert_path.exists() else ca_cert_path
        raise PKIError(f"CA is incomplete: {missing} is missing; restore it or remove the CA")
    try:
        cert, key = load_cert(ca_cert_path), load_key(ca_key_path)
    except (ValueError, OSError) as e:
        raise PKIError(f"cannot load the CA from {ca_cert_path.parent}: {e}") from e
    if _public_der(cert) != _public_der(key):
        raise PKIError(f"{ca_key_path} is not the key of {ca_cert_path}")
    if cert.not_valid_after_utc <= _now():
        raise PKIError(f"CA {ca_cert_path} expired on {cert.not_valid_after_utc:%Y-%m-%d}")
    return cert, key


def _leaf_usable(
    cert_path: Path,
    key_path: Path,
    ca: x509.Certificate,
    *,
    common_name: str,
    organizations: Sequence[str] = (),
    sans: Sequence[str] = (),
) -> bool:
    """Whether an existing leaf can be served again as it is."""
    try:
        cert, key = load_cert(cert_path), load_key(key_path)
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, OSError, PKIError, InvalidSignature):
        return False
    if _public_der(cert) != _public_der(key):
        return False
    if cert.subject != _name(common_name, organizations):
        return False
    if cert.not_valid_after_utc - RENEW_BEFORE <= _now():
        return False
    if sans:
        try:
            have = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            return False
        if not set(_san_entries(sans)) <= set(have):
            return False
    return True


def _ensure_leaf(
    cert_path: Path,
    key_path: Path,
    ca: x509.Certificate,
    ca_key: PrivateKey,
    key_type: KeyType,
    *,
    common_name: str,
    organizations: Sequence[str] = (),
    sans: Sequence[str] = (),
    server: bool = False,
    client: bool = False,
) -> None:
    if _leaf_usable(
        cert_path, key_path, ca, common_name=common_name, organizations=organizations, sans=sans
    ):
        return
    key = generate_key(key_type)
    cert = issue_certificate(
        ca, ca_key, key, common_name=common_name, organizations=organizations, sans=sans,
        server=server, client=client,
    )
    write_key(key_path, key)
    write_cert(cert_path, cert)


def format_token_line(token: str, user: str, uid: str, groups: Sequence[str]) -> str:
    """One line of a kube-apiserver static token file."""
    return f'{token},{user},{uid},"{",".join(groups)}"\n'


def _ensure_token(path: Path) -> str:
    if path.exists():
        first = path.read_text().split("\n", 1)[0].strip()
        token = first.split(",", 1)[0]
        if token:
            return token
    token = secrets.token_urlsafe(32)
    _write_atomic(path, format_token_line(token, ADMIN_USER, ADMIN_USER, [ADMIN_GROUP]).encode(),
                  0o600)
    return token


def ensure_pki(
    directory: Path,
    *,
    key_type: KeyType = "rsa",
    extra_sans: Iterable[str] = (),
) -> PKI:
    """Create what is missing under ``directory`` and reuse what is valid; see the module doc."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    pki = PKI(
        dir=directory,
        ca_cert=directory / "ca.crt",
        ca_key=directory / "ca.key",
        serving_cert=directory / "apiserver.crt",
        serving_key=directory / "apiserver.key",
        admin_cert=directory / "admin.crt",
        admin_key=directory / "admin.key",
        token_file=directory / "tokens.csv",
        admin_token="",
    )
    ca, ca_key = _ensure_ca(pki.ca_cert, pki.ca_key, key_type)
    sans = list(dict.fromkeys([*DEFAULT_SANS, *extra_sans]))
    _ensure_leaf(
        pki.serving_cert, pki.serving_key, ca, ca_key, key_type,
        common_name=SERVING_COMMON_NAME, sans=sans, server=True,
    )
    _ensure_leaf(
        pki.admin_cert, pki.admin_key, ca, ca_key, key_type,
        common_name=ADMIN_USER, organizations=[ADMIN_GROUP], client=True,
    )
    token = _ensure_token(pki.token_file)
    return dataclasses.replace(pki, admin_token=token)
