"""``shipyard conversion-webhook``: Cluster API's v1beta1 ⇄ v1beta2 conversion over HTTPS.

A real kube-apiserver converts between the served versions of Cluster API's CRDs by POSTing a
ConversionReview to the webhook their ``spec.conversion`` names. This serves the same converter
Shipyard's own API server calls in process, at ``/convert``, with a certificate from a CA kept in
``--cert-dir`` (created on first start). Point the CRDs' ``conversion.webhook.clientConfig`` at
``https://<address>:<port>/convert`` with ``caBundle`` = base64 of ``<cert-dir>/ca.crt``.
"""

from __future__ import annotations

from pathlib import Path

import click

from shipyard.cli.apiserver import configure_logging


@click.command("conversion-webhook")
@click.option("--cert-dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Where the CA and serving certificate live (created when missing).")
@click.option("--bind-address", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=9443, show_default=True)
@click.option("--port-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the bound port here once serving.")
@click.option("--tls-san", multiple=True, help="Extra DNS name or IP for the certificate.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]),
              default="info", show_default=True)
def conversion_webhook(cert_dir: Path, bind_address: str, port: int, port_file: Path | None,
                       tls_san: tuple[str, ...], log_level: str) -> None:
    """Serve Cluster API's CRD conversion webhook over HTTPS."""
    from shipyard.api.webhook import ConversionWebhookApp
    from shipyard.apiserver import certs
    from shipyard.apiserver.serving import ServingOptions, serve

    configure_logging(log_level)
    pki = certs.ensure_pki(cert_dir.expanduser().resolve(), key_type="ecdsa",
                           extra_sans=[*tls_san, bind_address])
    serve(ConversionWebhookApp(), ServingOptions(
        bind_address=bind_address, port=port, cert_file=pki.serving_cert,
        key_file=pki.serving_key, port_file=port_file,
    ))
