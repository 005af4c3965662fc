"""``shipyard apiserver``: the embedded management API server in the foreground.

Everything lives under ``--data-dir``: ``pki/`` (CA, serving and admin certificates, token file;
created on first start, reused after), ``state.db`` (the SQLite store) and ``kubeconfig`` (admin
credentials for the URL actually bound, rewritten on every start, so ``--port 0`` works). The
kubeconfig is written before ``--port-file``: whoever sees the port file may use the kubeconfig.

``--storage etcd`` keeps the objects in etcd instead (`shipyard.storage.etcd.EtcdStore`), so
several API servers can share them as kube-apiserver replicas do: at ``--etcd-endpoints`` if
given, else in a single-member etcd this command starts under ``--data-dir`` (``etcd/``, log
``etcd.log``) and stops on exit. The etcd binary is found by
`shipyard.storage.etcd_process.find_etcd`.

Logs go to stderr. SIGTERM or SIGINT shut down gracefully (see `shipyard.apiserver.serving`).
"""

from __future__ import annotations

import functools
import logging
import signal
import ssl
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from shipyard.api.converting import Converter

LOOPBACK_OR_ANY = frozenset({"127.0.0.1", "::1", "localhost", "0.0.0.0", "::", ""})
log = logging.getLogger("shipyard.apiserver")


def configure_logging(level: str) -> None:
    """Log to stderr, unless the host process (a test runner) already set logging up."""
    logging.basicConfig(
        stream=sys.stderr,
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def group_converters() -> dict[str, Converter]:
    """A fresh converter (`shipyard.api.converting.Converter`) per CRD group Shipyard ships at
    several versions (v1beta1 ⇄ v1beta2): Cluster API's core group, the kubeadm bootstrap and
    control-plane providers', and the infrastructure group (the Docker provider's CAPD kinds;
    its other kinds have one version and pass through). The same code serves the conversion
    webhook."""
    from shipyard.api.converting import CoreConverter
    from shipyard.bootstrap.kubeadm.conversion import KubeadmConverter
    from shipyard.controlplane.kubeadm.conversion import KubeadmControlPlaneConverter
    from shipyard.providers.docker.conversion import DockerConverter

    return {"cluster.x-k8s.io": CoreConverter(),
            "bootstrap.cluster.x-k8s.io": KubeadmConverter(),
            "controlplane.cluster.x-k8s.io": KubeadmControlPlaneConverter(),
            "infrastructure.cluster.x-k8s.io": DockerConverter()}


def new_api_server(store: Any, **options: Any) -> Any:
    """The API server with in-process conversion for the CRD groups Shipyard ships
    (`group_converters`), in place of the webhooks their CRDs name on a real cluster. References
    are resolved against the server's own served CRDs, as upstream reads the referenced CRD."""
    from shipyard.api.converting import CoreConverter
    from shipyard.apiserver.app import APIServer
    from shipyard.controlplane.kubeadm.conversion import KubeadmControlPlaneConverter

    converters = group_converters()
    server = APIServer(store, converters=converters, **options)
    for converter in converters.values():
        if isinstance(converter, CoreConverter | KubeadmControlPlaneConverter):
            converter.resolve_api_version = server.resolve_api_version
    return server


def build_app(data_dir: Path, pki: Any, *, anonymous_auth: bool, store: Any = None,
              bootstrap_token_auth: bool = False) -> Any:
    """The authenticated API server over ``store`` (default: the SQLite store in
    ``data_dir``); ``bootstrap_token_auth`` also accepts kube-system bootstrap tokens."""
    from shipyard.apiserver import authn, certs
    from shipyard.storage import SQLiteStore

    if store is None:
        store = SQLiteStore(data_dir / "state.db")
    anonymous_paths = authn.PUBLIC_INFO_PATHS if anonymous_auth else ()
    if anonymous_auth and bootstrap_token_auth:
        # kubeadm's bootstrap-signer RBAC rule lets system:anonymous get cluster-info.
        anonymous_paths = (*anonymous_paths, authn.CLUSTER_INFO_PATH)
    return authn.Authenticator(
        new_api_server(store),
        tokens=authn.load_token_file(pki.token_file),
        client_ca=certs.load_cert(pki.ca_cert),
        allow_anonymous_paths=anonymous_paths,
        bootstrap_tokens=(authn.BootstrapTokens(authn.secret_lookup_from_store(store))
                          if bootstrap_token_auth else None),
    )


@click.command("apiserver")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Where the PKI, the SQLite database and the kubeconfig live.")
@click.option("--bind-address", default="127.0.0.1", show_default=True,
              help="Address to listen on. Loopback unless you mean to expose the server.")
@click.option("--port", type=click.IntRange(0, 65535), default=6443, show_default=True,
              help="Port to listen on; 0 picks a free one (see --port-file).")
@click.option("--insecure", is_flag=True,
              help="Serve plain HTTP instead of TLS. Bearer tokens are still required.")
@click.option("--port-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the bound port here once serving; removed on shutdown.")
@click.option("--tls-san", multiple=True,
              help="Extra DNS name or IP for the serving certificate (repeatable).")
@click.option("--key-type", type=click.Choice(["rsa", "ecdsa"]), default="rsa",
              show_default=True, help="Key algorithm for newly created keys.")
@click.option("--anonymous-auth/--no-anonymous-auth", default=True, show_default=True,
              help="Let unauthenticated clients GET /healthz, /livez, /readyz and /version.")
@click.option("--shutdown-timeout", type=click.IntRange(0), default=5, show_default=True,
              help="Seconds open requests (watches) get to finish on shutdown.")
@click.option("--storage", type=click.Choice(["sqlite", "etcd"]), default="sqlite",
              show_default=True, help="Where objects are kept: SQLite under --data-dir, or etcd.")
@click.option("--etcd-endpoints", metavar="URL[,URL]", default="",
              help="etcd client URLs for --storage etcd. Without them a local etcd is started "
                   "under --data-dir and stopped on exit.")
@click.option("--etcd-prefix", default="", metavar="PREFIX",
              help="Prefix for every etcd key, so several servers can share one etcd.")
@click.option("--etcd-cafile", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="CA bundle that signed the etcd servers' certificates (https endpoints).")
@click.option("--etcd-certfile", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Client certificate to present to etcd.")
@click.option("--etcd-keyfile", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Key of --etcd-certfile.")
@click.option("--enable-bootstrap-token-auth", is_flag=True,
              help="Accept bootstrap tokens (Secrets bootstrap-token-<id> in kube-system), as "
                   "kubeadm's control planes do.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]),
              default="info", show_default=True)
def apiserver(
    data_dir: Path,
    bind_address: str,
    port: int,
    insecure: bool,
    port_file: Path | None,
    tls_san: tuple[str, ...],
    key_type: str,
    anonymous_auth: bool,
    shutdown_timeout: int,
    storage: str,
    etcd_endpoints: str,
    etcd_prefix: str,
    etcd_cafile: Path | None,
    etcd_certfile: Path | None,
    etcd_keyfile: Path | None,
    enable_bootstrap_token_auth: bool,
    log_level: str,
) -> None:
    """Run the Kubernetes-compatible management API server in the foreground."""
    from shipyard.apiserver import certs

    endpoints = parse_endpoints(etcd_endpoints)
    if storage != "etcd" and (endpoints or etcd_prefix):
        raise click.UsageError("--etcd-endpoints and --etcd-prefix need --storage etcd")
    etcd_tls = etcd_client_tls(etcd_cafile, etcd_certfile, etcd_keyfile)
    if etcd_tls is not None and not endpoints:
        raise click.UsageError("--etcd-cafile, --etcd-certfile and --etcd-keyfile need "
                               "--etcd-endpoints")
    configure_logging(log_level)
    data_dir = data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    sans = list(tls_san)
    if bind_address.strip("[]") not in LOOPBACK_OR_ANY:
        sans.append(bind_address)
    try:
        pki = certs.ensure_pki(data_dir / "pki", key_type="ecdsa" if key_type == "ecdsa" else "rsa",
                               extra_sans=sans)
    except (certs.PKIError, OSError) as e:
        raise click.ClickException(str(e)) from e
    serve_on = functools.partial(
        run, data_dir, pki, bind_address=bind_address, port=port, insecure=insecure,
        port_file=port_file, anonymous_auth=anonymous_auth, shutdown_timeout=shutdown_timeout,
        log_level=log_level, bootstrap_token_auth=enable_bootstrap_token_auth,
    )
    if storage != "etcd":
        serve_on(None)
        return
    from shipyard.storage.etcd import EtcdStore

    if endpoints:
        log.info("storing objects in etcd at %s", ",".join(endpoints))
        serve_on(EtcdStore(endpoints, etcd_prefix, tls=etcd_tls))
        return
    # uvicorn re-raises SIGTERM once it has shut down, which would kill this process before
    # it stops its etcd: turn SIGTERM into an exception until etcd is stopped, then die of it.
    from shipyard.storage.etcd_process import LocalEtcd

    local_etcd = LocalEtcd(data_dir / "etcd")
    signal.signal(signal.SIGTERM, _raise_terminated)
    terminated = False
    try:
        start_local_etcd(local_etcd)
        log.info("storing objects in etcd at %s", local_etcd.endpoint)
        serve_on(EtcdStore([local_etcd.endpoint], etcd_prefix))
    except _Terminated:
        terminated = True
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not skip this
        local_etcd.stop()
    if terminated:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.raise_signal(signal.SIGTERM)


def etcd_client_tls(cafile: Path | None, certfile: Path | None,
                    keyfile: Path | None) -> ssl.SSLContext | None:
    """kube-apiserver's --etcd-cafile/--etcd-certfile/--etcd-keyfile as one client context."""
    if cafile is None and certfile is None and keyfile is None:
        return None
    if (certfile is None) != (keyfile is None):
        raise click.UsageError("--etcd-certfile and --etcd-keyfile go together")
    try:
        context = ssl.create_default_context(cafile=str(cafile) if cafile else None)
        if certfile is not None and keyfile is not None:
            context.load_cert_chain(str(certfile), str(keyfile))
    except (ssl.SSLError, OSError) as e:
        raise click.UsageError(f"cannot use the etcd client certificates: {e}") from e
    return context


class _Terminated(BaseException):
    """SIGTERM arrived (or was re-raised by uvicorn after a graceful shutdown)."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise _Terminated()


def parse_endpoints(text: str) -> list[str]:
    """``URL[,URL]`` into a list, each an http:// or https:// URL."""
    endpoints = [e.strip() for e in text.split(",") if e.strip()]
    for endpoint in endpoints:
        if not endpoint.startswith(("http://", "https://")):
            raise click.BadParameter(f"{endpoint!r} is not an http:// or https:// URL",
                                     param_hint="--etcd-endpoints")
    return endpoints


def start_local_etcd(local: Any) -> None:
    """Start ``local`` (a `LocalEtcd`) and wait until it is healthy; the caller stops it."""
    from shipyard.storage.etcd_process import EtcdNotFoundError, EtcdStartError

    try:
        local.start()
    except (EtcdNotFoundError, EtcdStartError) as e:
        raise click.ClickException(str(e)) from e
    log.info("started etcd (pid %s) at %s; log %s", local.pid, local.endpoint, local.log_path)


def run(data_dir: Path, pki: Any, store: Any, *, bind_address: str, port: int, insecure: bool,
        port_file: Path | None, anonymous_auth: bool, shutdown_timeout: int,
        log_level: str, bootstrap_token_auth: bool = False) -> None:
    """Serve in the foreground until SIGTERM or SIGINT."""
    from shipyard.apiserver.serving import ServingOptions, serve
    from shipyard.cli.kubeconfig import admin_kubeconfig, server_url, write_kubeconfig

    app = build_app(data_dir, pki, anonymous_auth=anonymous_auth, store=store,
                    bootstrap_token_auth=bootstrap_token_auth)
    kubeconfig_path = data_dir / "kubeconfig"
    ca_pem = None if insecure else pki.ca_cert.read_bytes()

    def on_started(bound_port: int) -> None:
        url = server_url(bind_address, bound_port, insecure=insecure)
        write_kubeconfig(kubeconfig_path, admin_kubeconfig(url, pki.admin_token, ca_pem))
        log.info("serving on %s; admin kubeconfig at %s", url, kubeconfig_path)

    if insecure:
        log.warning("serving plain HTTP: credentials travel unencrypted")
    options = ServingOptions(
        bind_address=bind_address,
        port=port,
        cert_file=pki.serving_cert,
        key_file=pki.serving_key,
        client_ca_file=pki.ca_cert,
        insecure=insecure,
        port_file=port_file.expanduser().resolve() if port_file else None,
        shutdown_timeout=shutdown_timeout,
        access_log=log_level == "debug",
    )
    from shipyard.apiserver.gctuning import tune_for_server

    tune_for_server()
    serve(app, options, on_started=on_started)
