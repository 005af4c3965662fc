"""kubeadm ``init`` and ``join`` for a process machine, reading kubeadm's own configuration.

Why: bootstrap data from the kubeadm bootstrap provider runs ``kubeadm init --config
/run/kubeadm/kubeadm.yaml`` or ``kubeadm join --config /run/kubeadm/kubeadm-join-config.yaml``
with the cluster CAs already written to ``/etc/kubernetes/pki``. The node agent answers those
commands the way kubeadm would, on a machine whose root is a directory (paths re-rooted) and
whose address is a loopback address.

`init(root, config)`:
  1. reads ClusterConfiguration and InitConfiguration (v1beta3/v1beta4) and the CA from
     ``certificatesDir`` (``ca.crt``/``ca.key``; missing → error);
  2. starts a new single-member etcd on the machine address (`etcdmember`);
  3. starts ``shipyard apiserver --storage etcd`` bound to ``<address>:<bindPort>`` (default
     6443) with bootstrap-token authentication; its serving certificate, issued by the cluster
     CA (the CA is copied into its PKI directory), names the address, the hostname, the node
     name and the controlPlaneEndpoint host;
  4. writes ``/etc/kubernetes/admin.conf`` (CN kubernetes-admin, O system:masters) for
     ``https://<controlPlaneEndpoint>`` (else the machine's own endpoint);
  5. uploads ``kube-system/kubeadm-config`` (ClusterConfiguration), ``kube-public/cluster-info``
     (a kubeconfig holding only the server and the CA, as kubeadm's bootstrap-token phase) and
     the InitConfiguration's bootstrap tokens as ``bootstrap-token-<id>`` Secrets;
  6. writes ``/etc/kubernetes/kubelet.conf`` (CN system:node:<node>), starts the kubelet
     (`kubelet`) as a control-plane kubelet and waits until its Node exists.

`join(root, config, control_plane)`:
  1. discovery with the bootstrap token: reads ``cluster-info`` from ``apiServerEndpoint``
     anonymously, without trusting the server yet (a server refusing anonymous reads gets the
     token as bearer credential instead), waits for its JWS signature
     ``jws-kubeconfig-<token id>`` (`bootstrapsigner`) and checks it with the token secret, then
     checks the CA's public key against ``caCertHashes`` (``sha256:<hex of
     SubjectPublicKeyInfo>``) unless ``unsafeSkipCAVerification``; from then on the CA is
     trusted;
  2. worker: obtains its node client certificate through `signer` (the CSR exchange) with the
     bootstrap token, writes ``kubelet.conf``, starts the kubelet, waits for its Node;
  3. control plane (``--control-plane`` or ``controlPlane`` in the JoinConfiguration): adds an
     etcd member through the existing members (found from control-plane Nodes' annotation
     ``kubeadm.kubernetes.io/etcd.advertise-client-urls``), starts it and a local API server on
     it, writes admin.conf, signs its own kubelet certificate with the local CA, starts a
     control-plane kubelet.

Every wait is bounded (`TIMEOUT`, or the configuration's discovery timeout); failures raise
`KubeadmError`, which the CLI prints and turns into exit status 1.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import shutil
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import yaml

from shipyard.apimachinery.errors import AlreadyExists, NotFound
from shipyard.bootstrap.kubeadm import kubeconfig as kubeconfigs
from shipyard.bootstrap.kubeadm.certs import KeyPair, ca_cert_hash
from shipyard.client import Client
from shipyard.node import bootstrapsigner, etcdmember, kubelet, services, signer
from shipyard.node.machine import MachineInfo, load, rooted, write_private

TIMEOUT: Final = 120.0
DEFAULT_BIND_PORT: Final = 6443
DEFAULT_CERTIFICATES_DIR: Final = "/etc/kubernetes/pki"
APISERVER_DIR: Final = "/var/lib/shipyard-apiserver"
ADMIN_CONF: Final = "/etc/kubernetes/admin.conf"
KUBELET_CONF: Final = "/etc/kubernetes/kubelet.conf"
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|m|s|ms)")


class KubeadmError(RuntimeError):
    pass


def read_config(root: Path, path: str) -> dict[str, dict[str, Any]]:
    """The kubeadm documents in ``path`` by kind."""
    try:
        text = rooted(root, path).read_text()
        docs = [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]
    except (OSError, yaml.YAMLError) as e:
        raise KubeadmError(f"unable to read config from {path!r}: {e}") from e
    return {str(d.get("kind")): d for d in docs}


def parse_duration(text: str | None, default: float) -> float:
    if not text:
        return default
    total = sum(float(n) * {"h": 3600, "m": 60, "s": 1, "ms": 0.001}[u]
                for n, u in _DURATION.findall(str(text)))
    return total or default


def split_host_port(endpoint: str, default_port: int = DEFAULT_BIND_PORT) -> tuple[str, int]:
    endpoint = endpoint.removeprefix("https://")
    host, sep, port = endpoint.rpartition(":")
    if not sep:
        return endpoint, default_port
    return host.strip("[]"), int(port)


def node_name(machine: MachineInfo, registration: dict[str, Any]) -> str:
    return str(registration.get("name") or machine["hostname"]).lower()


def load_ca(root: Path, certificates_dir: str, stem: str = "ca", what: str = "ca") -> KeyPair:
    """The CA ``<certificates_dir>/<stem>.crt|.key`` the bootstrap data wrote (``etcd/ca``:
    the etcd CA)."""
    base = rooted(root, certificates_dir)
    try:
        return KeyPair((base / f"{stem}.crt").read_bytes(), (base / f"{stem}.key").read_bytes())
    except OSError as e:
        raise KubeadmError(f"failure loading {what} certificate authority: {e}") from e


def kubeconfig_with_cert(cluster: str, server: str, ca_pem: bytes, user: str,
                         pair: KeyPair) -> str:
    b64 = base64.b64encode
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": f"{user}@{cluster}",
        "clusters": [{"name": cluster, "cluster": {
            "server": server, "certificate-authority-data": b64(ca_pem).decode()}}],
        "users": [{"name": user, "user": {"client-certificate-data": b64(pair.cert).decode(),
                                          "client-key-data": b64(pair.key).decode()}}],
        "contexts": [{"name": f"{user}@{cluster}",
                      "context": {"cluster": cluster, "user": user}}],
    }, sort_keys=False)


def cluster_info_kubeconfig(server: str, ca_pem: bytes) -> str:
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [{"name": "", "cluster": {
            "server": server,
            "certificate-authority-data": base64.b64encode(ca_pem).decode()}}],
        "contexts": [], "users": [], "current-context": ""}, sort_keys=False)


def start_apiserver(root: Path, ca: KeyPair, address: str, port: int, etcd_url: str,
                    etcd: etcdmember.MemberPKI, sans: list[str]) -> None:
    data_dir = rooted(root, APISERVER_DIR)
    pki = data_dir / "pki"
    pki.mkdir(parents=True, exist_ok=True, mode=0o700)
    # `shipyard apiserver` reuses a CA it finds in its PKI directory and issues its serving
    # certificate from it: give it the cluster's.
    (pki / "ca.crt").write_bytes(ca.cert)
    write_private(pki / "ca.key", ca.key.decode())
    argv = services.python_argv(
        "apiserver", "--data-dir", str(data_dir), "--bind-address", address,
        "--port", str(port), "--storage", "etcd", "--etcd-endpoints", etcd_url,
        "--etcd-cafile", str(etcd.ca), "--etcd-certfile", str(etcd.apiserver_client.cert),
        "--etcd-keyfile", str(etcd.apiserver_client.key),
        "--enable-bootstrap-token-auth", "--log-level", "warning",
        *[arg for san in dict.fromkeys(sans) if san for arg in ("--tls-san", san)])
    proc = services.start(root, "kube-apiserver", argv)
    wait_healthy(f"https://{address}:{port}", ca.cert, proc.poll,
                 services.log_path(root, "kube-apiserver"))


def _context(ca_pem: bytes | None) -> ssl.SSLContext:
    if ca_pem is None:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    return ssl.create_default_context(cadata=ca_pem.decode())


def wait_healthy(url: str, ca_pem: bytes, poll: Any, log: Path) -> None:
    ctx = _context(ca_pem)
    deadline = time.monotonic() + TIMEOUT
    while True:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2, context=ctx) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        code = poll()
        if code is not None:
            raise KubeadmError(f"the API server exited with status {code}; see {log}")
        if time.monotonic() > deadline:
            raise KubeadmError(f"the API server at {url} is not healthy after {TIMEOUT:.0f} s")
        time.sleep(0.1)


def start_kubelet(root: Path, config: kubelet.KubeletConfig) -> None:
    kubelet.save_config(root, config)
    services.start(root, "kubelet", services.python_argv("node", "kubelet", "--root", str(root)))


async def wait_for_node(kubeconfig_path: Path, name: str, root: Path) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    async with Client.from_kubeconfig(kubeconfig_path, request_timeout=10.0) as client:
        while True:
            try:
                await client.get("v1", "Node", name)
                return
            except NotFound:
                pass
            if services.running(root, "kubelet") is None:
                raise KubeadmError(f"the kubelet exited; see {services.log_path(root, 'kubelet')}")
            if loop.time() > deadline:
                raise KubeadmError(f"Node {name} not registered after {TIMEOUT:.0f} s")
            await asyncio.sleep(0.2)


def _token_secret(token: dict[str, Any]) -> dict[str, Any]:
    token_id, _, token_secret = str(token["token"]).partition(".")
    data = {"token-id": token_id, "token-secret": token_secret}
    for usage in token.get("usages") or ["signing", "authentication"]:
        data[f"usage-bootstrap-{usage}"] = "true"
    if token.get("groups"):
        data["auth-extra-groups"] = ",".join(token["groups"])
    if token.get("description"):
        data["description"] = str(token["description"])
    ttl = parse_duration(token.get("ttl"), 24 * 3600.0)
    expires = time.gmtime(time.time() + ttl)
    data["expiration"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", expires)
    return {"apiVersion": "v1", "kind": "Secret", "type": "bootstrap.kubernetes.io/token",
            "metadata": {"name": f"bootstrap-token-{token_id}", "namespace": "kube-system"},
            "stringData": data}


async def _create_or_replace(client: Client, obj: dict[str, Any]) -> None:
    try:
        await client.create(obj)
    except AlreadyExists:
        meta = obj["metadata"]
        current = await client.get(obj["apiVersion"], obj["kind"], meta["name"],
                                   meta.get("namespace"))
        obj = {**obj, "metadata": {**meta,
                                   "resourceVersion": current["metadata"]["resourceVersion"]}}
        await client.update(obj)


async def upload(admin_conf: Path, server: str, ca_pem: bytes, cluster_config: dict[str, Any],
                 tokens: list[dict[str, Any]]) -> None:
    async with Client.from_kubeconfig(admin_conf, request_timeout=10.0) as client:
        await _create_or_replace(client, {
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "kubeadm-config", "namespace": "kube-system"},
            "data": {"ClusterConfiguration": yaml.safe_dump(cluster_config, sort_keys=True)}})
        await _create_or_replace(client, {
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cluster-info", "namespace": "kube-public"},
            "data": {"kubeconfig": cluster_info_kubeconfig(server, ca_pem)}})
        for token in tokens:
            if token.get("token"):
                await _create_or_replace(client, _token_secret(token))


def extra_arg(component: dict[str, Any] | None, name: str) -> str | None:
    """A component's ``extraArgs`` value (v1beta4 list of {name, value} or v1beta3 map)."""
    args = (component or {}).get("extraArgs") or {}
    if isinstance(args, list):
        args = {a.get("name"): a.get("value") for a in args if isinstance(a, dict)}
    value = args.get(name)
    return None if value is None else str(value)


def _kubelet_config(machine: MachineInfo, name: str, registration: dict[str, Any],
                    version: str, control_plane: bool, annotations: dict[str, str],
                    cluster: dict[str, Any] | None = None) -> kubelet.KubeletConfig:
    args = registration.get("kubeletExtraArgs") or {}
    if isinstance(args, list):
        args = {a.get("name"): a.get("value") for a in args}
    labels = {}
    for item in str(args.get("node-labels") or "").split(","):
        key, sep, value = item.partition("=")
        if sep and key.strip():
            labels[key.strip()] = value.strip()
    taints = registration.get("taints")
    if taints is None:
        taints = ([{"key": kubelet.CONTROL_PLANE_LABEL, "effect": "NoSchedule"}]
                  if control_plane else [])
    config: kubelet.KubeletConfig = {
        "nodeName": name, "providerID": machine["providerID"], "address": machine["address"],
        "hostname": machine["hostname"], "kubeconfig": KUBELET_CONF,
        "kubeletVersion": version or "v0.0.0", "controlPlane": control_plane, "labels": labels,
        "taints": list(taints), "annotations": annotations}
    grace = extra_arg((cluster or {}).get("controllerManager"), "node-monitor-grace-period")
    if control_plane and grace:
        config["nodeMonitorGracePeriodSeconds"] = parse_duration(grace, 40.0)
    return config


def etcd_certificates(root: Path, machine: MachineInfo, name: str,
                      certificates_dir: str) -> etcdmember.MemberPKI:
    """The member's etcd certificates, from the etcd CA the bootstrap data wrote."""
    etcd_ca = load_ca(root, certificates_dir, "etcd/ca", "etcd")
    return etcdmember.issue_certificates(root, etcd_ca, name, machine["address"],
                                         machine["hostname"], certificates_dir)


def _bring_up_control_plane(root: Path, machine: MachineInfo, name: str, ca: KeyPair,
                            pki: etcdmember.MemberPKI, bind_port: int, endpoint: str,
                            initial_cluster: dict[str, str], state: str, *,
                            promote: Callable[[], None] | None = None) -> str:
    """etcd, then ``promote`` (a joining learner becomes a voting member), then the API
    server, which needs a voting member: a learner refuses its requests. Returns the etcd
    client URL."""
    try:
        etcd_url = etcdmember.start(root, find_etcd(), name, machine["address"], pki,
                                    initial_cluster, state)
        if promote is not None:
            promote()
    except etcdmember.EtcdError as e:
        raise KubeadmError(str(e)) from e
    endpoint_host, _ = split_host_port(endpoint, bind_port)
    start_apiserver(root, ca, machine["address"], bind_port, etcd_url, pki,
                    [machine["hostname"], name, endpoint_host])
    return etcd_url


def find_etcd() -> Path:
    from shipyard.storage.etcd_process import EtcdNotFoundError
    from shipyard.storage.etcd_process import find_etcd as find

    try:
        return find()
    except EtcdNotFoundError as e:
        raise KubeadmError(str(e)) from e


def init(root: Path, config_path: str) -> None:
    machine = load(root)
    docs = read_config(root, config_path)
    cluster = docs.get("ClusterConfiguration") or {}
    init_config = docs.get("InitConfiguration") or {}
    registration = init_config.get("nodeRegistration") or {}
    name = node_name(machine, registration)
    certificates_dir = str(cluster.get("certificatesDir") or DEFAULT_CERTIFICATES_DIR)
    ca = load_ca(root, certificates_dir)
    bind_port = int((init_config.get("localAPIEndpoint") or {}).get("bindPort")
                    or DEFAULT_BIND_PORT)
    endpoint = str(cluster.get("controlPlaneEndpoint") or f"{machine['address']}:{bind_port}")
    host, port = split_host_port(endpoint, bind_port)
    server = f"https://{host}:{port}"
    etcd_url = _bring_up_control_plane(
        root, machine, name, ca, etcd_certificates(root, machine, name, certificates_dir),
        bind_port, endpoint, {name: etcdmember.peer_url(machine["address"])}, "new")
    cluster_name = str(cluster.get("clusterName") or "kubernetes")
    admin_conf = rooted(root, ADMIN_CONF)
    write_private(admin_conf, kubeconfigs.generate(cluster_name, server, ca))
    asyncio.run(upload(admin_conf, server, ca.cert, cluster,
                       list(init_config.get("bootstrapTokens") or [])))
    _start_node(root, machine, name, cluster_name, server, ca, registration,
                str(cluster.get("kubernetesVersion") or ""), True,
                {etcdmember.CLIENT_URLS_ANNOTATION: etcd_url}, cluster=cluster)


def _start_node(root: Path, machine: MachineInfo, name: str, cluster_name: str, server: str,
                ca: KeyPair, registration: dict[str, Any], version: str, control_plane: bool,
                annotations: dict[str, str], credentials: KeyPair | None = None,
                cluster: dict[str, Any] | None = None) -> None:
    pair = credentials or signer.issue(ca, name)
    kubelet_conf = rooted(root, KUBELET_CONF)
    write_private(kubelet_conf, kubeconfig_with_cert(
        cluster_name, server, ca.cert, f"{signer.NODE_USER_PREFIX}{name}", pair))
    ca_file = rooted(root, DEFAULT_CERTIFICATES_DIR) / "ca.crt"
    if not ca_file.exists():
        ca_file.parent.mkdir(parents=True, exist_ok=True)
        ca_file.write_bytes(ca.cert)
    start_kubelet(root, _kubelet_config(machine, name, registration, version, control_plane,
                                        annotations, cluster))
    asyncio.run(wait_for_node(kubelet_conf, name, root))


def discover(endpoint: str, token: str, ca_hashes: list[str], skip_verification: bool,
             timeout: float) -> tuple[str, bytes]:
    """(server URL, CA PEM) from ``cluster-info`` at ``endpoint``; see the module doc."""
    host, port = split_host_port(endpoint)
    url = f"https://{host}:{port}/api/v1/namespaces/kube-public/configmaps/cluster-info"
    token_id, _, token_secret = token.partition(".")
    deadline = time.monotonic() + timeout
    anonymous = True
    last = ""
    while True:
        headers = {"Accept": "application/json"}
        if not anonymous:
            headers["Authorization"] = f"Bearer {token}"
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                        timeout=5, context=_context(None)) as response:
                config_map = json.loads(response.read())
            data = config_map.get("data") or {}
            signature = data.get(bootstrapsigner.JWS_PREFIX + token_id)
            if signature is not None:
                if not bootstrapsigner.verify(data.get("kubeconfig", ""), signature, token_id,
                                              token_secret):
                    raise KubeadmError("failed to verify JWS signature of received cluster "
                                       "info object, can't trust this API Server")
                break
            last = (f"there is no JWS signed token in the cluster-info ConfigMap. This token "
                    f"id {token_id!r} is invalid for this cluster, or it has expired")
        except urllib.error.HTTPError as e:
            last = f"{e.code} {e.reason}"
            if e.code in (401, 403) and anonymous:
                anonymous = False  # a server refusing anonymous reads: present the token
                continue
            if e.code in (401, 403):
                raise KubeadmError(f"couldn't validate the identity of the API Server: the "
                                   f"bootstrap token was refused ({last})") from e
        except (urllib.error.URLError, OSError, ValueError) as e:
            last = str(e)
        if time.monotonic() > deadline:
            raise KubeadmError(f"couldn't validate the identity of the API Server: "
                               f"{url}: {last}")
        time.sleep(1.0)
    doc = yaml.safe_load(config_map["data"]["kubeconfig"])
    cluster = doc["clusters"][0]["cluster"]
    ca_pem = base64.b64decode(cluster["certificate-authority-data"])
    if not skip_verification:
        actual = ca_cert_hash(ca_pem)
        wanted = [h.lower() for h in ca_hashes]
        if not wanted:
            raise KubeadmError("discovery.bootstrapToken.caCertHashes is empty and "
                               "unsafeSkipCAVerification is not set")
        if actual not in wanted:
            raise KubeadmError(f"cluster CA found in cluster-info ConfigMap is invalid: none "
                               f"of the public keys \"{actual}\" are pinned")
    return str(cluster["server"]), ca_pem


def bootstrap_kubeconfig(server: str, ca_pem: bytes, token: str) -> str:
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "tls-bootstrap-token-user",
        "clusters": [{"name": "kubernetes", "cluster": {
            "server": server,
            "certificate-authority-data": base64.b64encode(ca_pem).decode()}}],
        "users": [{"name": "tls-bootstrap-token-user", "user": {"token": token}}],
        "contexts": [{"name": "tls-bootstrap-token-user", "context": {
            "cluster": "kubernetes", "user": "tls-bootstrap-token-user"}}]}, sort_keys=False)


async def _cluster_facts(bootstrap_conf: Path) -> tuple[dict[str, Any], list[str]]:
    """(ClusterConfiguration, etcd client URLs of the control-plane Nodes)."""
    async with Client.from_kubeconfig(bootstrap_conf, request_timeout=10.0) as client:
        try:
            cm = await client.get("v1", "ConfigMap", "kubeadm-config", "kube-system")
            cluster = yaml.safe_load(cm["data"]["ClusterConfiguration"]) or {}
        except (NotFound, KeyError):
            cluster = {}
        nodes = await client.list("v1", "Node", label_selector=kubelet.CONTROL_PLANE_LABEL)
    urls: list[str] = []
    for node in nodes["items"]:
        value = (node["metadata"].get("annotations") or {}).get(
            etcdmember.CLIENT_URLS_ANNOTATION)
        if value:
            urls.extend(u for u in value.split(",") if u)
    return cluster, urls


async def _obtain_node_cert(bootstrap_conf: Path, name: str) -> KeyPair:
    async with Client.from_kubeconfig(bootstrap_conf, request_timeout=10.0) as client:
        try:
            return await signer.obtain(client, name, TIMEOUT)
        except signer.SigningDenied as e:
            raise KubeadmError(f"the node certificate request was denied: {e}") from e
        except TimeoutError as e:
            raise KubeadmError(str(e)) from e


def join(root: Path, config_path: str, control_plane: bool = False,
         token: str | None = None, ca_hashes: list[str] | None = None,
         endpoint: str | None = None) -> None:
    machine = load(root)
    docs = read_config(root, config_path) if config_path else {}
    join_config = docs.get("JoinConfiguration") or {}
    discovery = join_config.get("discovery") or {}
    bootstrap = discovery.get("bootstrapToken") or {}
    token = token or str(bootstrap.get("token") or discovery.get("tlsBootstrapToken") or "")
    endpoint = endpoint or str(bootstrap.get("apiServerEndpoint") or "")
    if not token or not endpoint:
        raise KubeadmError("discovery.bootstrapToken needs token and apiServerEndpoint")
    timeout = parse_duration(discovery.get("timeout"), 300.0)
    if "discovery" in (join_config.get("timeouts") or {}):
        timeout = parse_duration(join_config["timeouts"]["discovery"], timeout)
    server, ca_pem = discover(endpoint, token, list(ca_hashes or bootstrap.get(
        "caCertHashes") or []), bool(bootstrap.get("unsafeSkipCAVerification")),
                              min(timeout, TIMEOUT))
    registration = join_config.get("nodeRegistration") or {}
    name = node_name(machine, registration)
    control_plane = control_plane or join_config.get("controlPlane") is not None
    bootstrap_conf = rooted(root, "/etc/kubernetes/bootstrap-kubelet.conf")
    write_private(bootstrap_conf, bootstrap_kubeconfig(server, ca_pem, token))
    cluster, etcd_urls = asyncio.run(_cluster_facts(bootstrap_conf))
    cluster_name = str(cluster.get("clusterName") or "kubernetes")
    version = str(cluster.get("kubernetesVersion") or "")
    if not control_plane:
        pair = asyncio.run(_obtain_node_cert(bootstrap_conf, name))
        ca = KeyPair(ca_pem, b"")
        _start_node(root, machine, name, cluster_name, server, ca, registration, version,
                    False, {}, credentials=pair)
        bootstrap_conf.unlink(missing_ok=True)
        return
    certificates_dir = str(cluster.get("certificatesDir") or DEFAULT_CERTIFICATES_DIR)
    ca = load_ca(root, certificates_dir)
    if ca.cert.strip() != ca_pem.strip():
        raise KubeadmError("the certificates in /etc/kubernetes/pki are not the cluster's CA")
    if not etcd_urls:
        raise KubeadmError("no etcd member found on the control-plane Nodes")
    pki = etcd_certificates(root, machine, name, certificates_dir)
    tls = pki.context()
    peer = etcdmember.peer_url(machine["address"])
    try:
        members, member_id = etcdmember.member_add(etcd_urls, peer, tls)
    except etcdmember.EtcdError as e:
        raise KubeadmError(str(e)) from e
    initial = {}
    for member in members:
        urls = member.get("peerURLs") or []
        if peer in urls:
            initial[name] = peer
        elif member.get("name") and urls:
            initial[str(member["name"])] = str(urls[0])
    local_endpoint = join_config.get("controlPlane", {}) or {}
    bind_port = int((local_endpoint.get("localAPIEndpoint") or {}).get("bindPort")
                    or DEFAULT_BIND_PORT)
    etcd_url = _bring_up_control_plane(
        root, machine, name, ca, pki, bind_port, endpoint, initial, "existing",
        promote=lambda: etcdmember.promote(etcd_urls, member_id, tls))
    write_private(rooted(root, ADMIN_CONF), kubeconfigs.generate(cluster_name, server, ca))
    _start_node(root, machine, name, cluster_name, server, ca, registration, version, True,
                {etcdmember.CLIENT_URLS_ANNOTATION: etcd_url}, cluster=cluster)
    bootstrap_conf.unlink(missing_ok=True)


def reset(root: Path) -> None:
    """Stop the machine's services and remove kubeadm's state (``kubeadm reset``)."""
    for name in ("kubelet", "kube-apiserver", "etcd"):
        services.stop(root, name)
    for path in ("/etc/kubernetes", "/var/lib/etcd", APISERVER_DIR, "/var/lib/kubelet"):
        shutil.rmtree(rooted(root, path), ignore_errors=True)
