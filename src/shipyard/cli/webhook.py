"""``shipyard conversion-webhook``: the CRD conversion webhook of every multi-version group
Shipyard ships (Cluster API core, kubeadm bootstrap, infrastructure), over HTTPS.

A real kube-apiserver converts between the served versions of those CRDs by POSTing a
ConversionReview to the webhook their ``spec.conversion`` names. This serves, at ``/convert``,
the same converters Shipyard's own API server calls in process, each review going to the
converter of its target group.

``--cert-dir`` is read in one of two layouts:

* ``tls.crt`` + ``tls.key`` (+ ``ca.crt``), a mounted ``kubernetes.io/tls`` Secret as
  controller-runtime's webhook server reads it (the controller Deployment `shipyard init`
  applies mounts ``capi-webhook-service-cert`` at ``/tmp/k8s-webhook-server/serving-certs``):
  served as they are, never written (the mount is read-only); the CRDs' ``caBundle`` is the
  Secret's ``ca.crt``;
* otherwise a directory this command owns: a CA and a serving certificate are created on first
  start and reused (`shipyard.apiserver.certs.ensure_pki`); point the CRDs'
  ``conversion.webhook.clientConfig`` at ``https://<address>:<port>/convert`` with
  ``caBundle`` = base64 of ``<cert-dir>/ca.crt``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from shipyard.cli.apiserver import configure_logging

if TYPE_CHECKING:
    from shipyard.api.converting import Converter

TLS_CERT = "tls.crt"
TLS_KEY = "tls.key"


def converters() -> dict[str, Converter]:
    """Group → converter for every group whose CRDs Shipyard serves at several versions: the
    table Shipyard's own API server converts with in process."""
    from shipyard.cli.apiserver import group_converters

    return group_converters()


def serving_files(cert_dir: Path, bind_address: str, sans: tuple[str, ...]) -> tuple[Path, Path]:
    """The certificate and key to serve from ``cert_dir`` (see the module doc)."""
    if (cert_dir / TLS_CERT).is_file() and (cert_dir / TLS_KEY).is_file():
        return cert_dir / TLS_CERT, cert_dir / TLS_KEY
    from shipyard.apiserver import certs

    pki = certs.ensure_pki(cert_dir, key_type="ecdsa", extra_sans=[*sans, bind_address])
    return pki.serving_cert, pki.serving_key


@click.command("conversion-webhook")
@click.option("--cert-dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="tls.crt/tls.key to serve (a mounted kubernetes.io/tls Secret), or where a "
                   "CA and serving certificate are created when missing.")
@click.option("--bind-address", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=9443, show_default=True)
@click.option("--port-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the bound port here once serving.")
@click.option("--tls-san", multiple=True,
              help="Extra DNS name or IP for a certificate this command creates.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]),
              default="info", show_default=True)
def conversion_webhook(cert_dir: Path, bind_address: str, port: int, port_file: Path | None,
                       tls_san: tuple[str, ...], log_level: str) -> None:
    """Serve the CRD conversion webhook over HTTPS."""
    from shipyard.api.webhook import ConversionWebhookApp
    from shipyard.apiserver.serving import ServingOptions, serve

    configure_logging(log_level)
    cert_file, key_file = serving_files(cert_dir.expanduser().resolve(), bind_address, tls_san)
    serve(ConversionWebhookApp(converters()), ServingOptions(
        bind_address=bind_address, port=port, cert_file=cert_file, key_file=key_file,
        port_file=port_file,
    ))
