"""The KubeadmConfig controller: turns a Machine's KubeadmConfig into cloud-init user-data.

Contract (upstream's `KubeadmConfigReconciler`, v1beta2 BootstrapConfig contract):
- Acts on configs owned by a Machine (ownerReference kind Machine); others wait for one.
  Paused configs (Cluster `spec.paused` or the paused annotation) only get `Paused`.
- Waits for the Cluster's `status.initialization.infrastructureProvisioned`.
- While the Cluster's control plane is not initialized (`status.initialization.
  controlPlaneInitialized` or condition ControlPlaneInitialized), only a control-plane Machine
  may proceed, and only the one holding the init lock (`locking`): it gets (or generates, if
  the Cluster has no controlPlaneRef) the cluster certificates and renders `kubeadm init`.
  Everyone else is requeued (30 s, and woken by Cluster changes).
- Afterwards the init lock is released and machines join: the join configuration's discovery
  is completed and persisted in the spec (CA pin from `<cluster>-ca`, the Cluster's
  controlPlaneEndpoint, a fresh bootstrap token in the workload cluster, reached through
  `<cluster>-kubeconfig`); a control-plane join gets `joinConfiguration.controlPlane` (default
  `{}`) and all the cluster certificates; a worker join is refused if `controlPlane` is set,
  and gets the `node.cluster.x-k8s.io/uninitialized:NoSchedule` taint (not persisted).
- The data Secret is named like the config, type `cluster.x-k8s.io/secret`, labelled with the
  cluster name, controller-owned by the config, keys `value` and `format` (`cloud-config`);
  then `status.dataSecretName` and `status.initialization.dataSecretCreated` are set. Data is
  rendered once: a config with `dataSecretCreated` is not rendered again.
- While the Machine has no `status.nodeRef`, its bootstrap token is refreshed (checked every
  TTL/3, extended when it expires within 5/6 TTL).
- `spec.format: ignition` is refused (DataSecretAvailable False): upstream gates it (alpha).
- Conditions: DataSecretAvailable, CertificatesAvailable, and Ready summarising both.
KubeadmConfigTemplate has no controller (it is only a template).
"""

from __future__ import annotations

import base64
import copy
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from shipyard.api.core import constants as c
from shipyard.apimachinery.errors import AlreadyExists, NotFound
from shipyard.client.interfaces import Object, ReaderWriter
from shipyard.controllers import conditions, ownership, pausing
from shipyard.controllers.kinds import CLUSTER, MACHINE
from shipyard.controllers.ownership import owner_machine_name
from shipyard.controllers.patching import patch, snapshot
from shipyard.controllers.predicates import cluster_update_relevant
from shipyard.runtime import Manager, Request, Result, logs

from . import certs, cloudinit, kubeadmapi, locking, tokens, types
from .workload import WorkloadClients, WorkloadUnavailable

log = logs.get_logger(__name__)

UNINITIALIZED_TAINT = {"key": "node.cluster.x-k8s.io/uninitialized", "effect": "NoSchedule"}
WAIT = 30.0
"""Seconds before re-checking while another machine initializes the control plane."""


@dataclass
class KubeadmConfigOptions:
    token_ttl: timedelta = tokens.DEFAULT_TTL
    concurrency: int = 10
    workload_factory: Any = field(default=None)
    """kubeconfig text → workload client; default `shipyard.client.Client`."""


class FileResolutionError(Exception):
    """A `contentFrom`/`passwdFrom` Secret or key does not exist."""



def is_control_plane(machine: Object) -> bool:
    return c.MACHINE_CONTROL_PLANE_LABEL in ((machine.get("metadata") or {}).get("labels") or {})


def control_plane_initialized(cluster: Object) -> bool:
    status = cluster.get("status") or {}
    return bool((status.get("initialization") or {}).get("controlPlaneInitialized")
                or conditions.is_true(cluster, c.CLUSTER_CONTROL_PLANE_INITIALIZED_CONDITION))


def control_plane_endpoint(cluster: Object) -> str:
    endpoint = (cluster.get("spec") or {}).get("controlPlaneEndpoint") or {}
    host, port = endpoint.get("host"), endpoint.get("port")
    return f"{host}:{port}" if host and port else ""


def _decode(secret: Object, key: str) -> str:
    data = secret.get("data") or {}
    if key not in data:
        raise FileResolutionError(
            f"secret references non-existent secret key: {key!r}")
    return base64.b64decode(data[key]).decode()


def _machine_view(machine: Object) -> tuple[Any, ...]:
    spec, meta = machine.get("spec") or {}, machine.get("metadata") or {}
    return (spec.get("bootstrap"), spec.get("version"), spec.get("clusterName"),
            meta.get("labels"), ((machine.get("status") or {}).get("nodeRef") or {}).get("name"))


def machine_update_relevant(old: Object, new: Object) -> bool:
    """Only what a config acts on: its bootstrap ref and data, version, cluster, control-plane
    label and nodeRef (not the status churn of provisioning)."""
    return _machine_view(old) != _machine_view(new)


class KubeadmConfigReconciler:
    def __init__(self, mgr: Manager, options: KubeadmConfigOptions) -> None:
        self.client: ReaderWriter = mgr.client
        self.configs = mgr.informer(types.CONFIG).cache
        self.machines = mgr.informer(MACHINE).cache
        self.clusters = mgr.informer(CLUSTER).cache
        self.ttl = options.token_ttl
        self.workloads = WorkloadClients(mgr.client, options.workload_factory)

    # ------------------------------------------------------------------ mapping

    def map_machine(self, machine: Object) -> list[Request]:
        ref = ((machine.get("spec") or {}).get("bootstrap") or {}).get("configRef") or {}
        if ref.get("kind") == types.CONFIG.kind and ref.get("apiGroup") == types.GROUP:
            return [Request(machine["metadata"]["namespace"], str(ref["name"]))]
        return []

    def map_cluster(self, cluster: Object) -> list[Request]:
        # By spec.clusterName, not the cluster-name label: the Machine controller may not have
        # labelled a new Machine yet, and missing this wake-up would stall it for WAIT seconds.
        namespace, name = cluster["metadata"]["namespace"], cluster["metadata"]["name"]
        return [r for m in self.machines.list(namespace)
                if (m.get("spec") or {}).get("clusterName") == name
                for r in self.map_machine(m)]

    # ------------------------------------------------------------------ reconcile

    async def reconcile(self, req: Request) -> Result:
        cached = self.configs.get(req.name, req.namespace)
        if cached is None or cached["metadata"].get("deletionTimestamp"):
            return Result()
        machine_name = owner_machine_name(cached)
        machine = self.machines.get(machine_name, req.namespace) if machine_name else None
        if machine is None:
            return Result()  # a Machine event brings us back
        cluster_name = str((machine.get("spec") or {}).get("clusterName") or "")
        cluster = self.clusters.get(cluster_name, req.namespace) if cluster_name else None
        if cluster is None:
            return Result()
        before, config = snapshot(cached), snapshot(cached)
        ownership.ensure_cluster_label(config, cluster_name)
        pausing.set_paused_condition(cluster, config)
        if pausing.is_paused(cluster, config):
            await patch(self.client, before, config)
            return Result()
        try:
            return await self._reconcile(config, machine, cluster)
        finally:
            self._summarize(config)
            await patch(self.client, before, config)

    def _summarize(self, config: Object) -> None:
        generation = config["metadata"].get("generation")
        if generation:
            config.setdefault("status", {})["observedGeneration"] = generation
        for type_ in (types.DATA_SECRET_AVAILABLE_CONDITION,
                      types.CERTIFICATES_AVAILABLE_CONDITION):
            cond = conditions.get_condition(config, type_)
            if cond is None or cond.get("status") != "True":
                message = f"{type_}: {cond.get('message') or cond.get('reason')}" if cond \
                    else f"{type_} not yet reported"
                conditions.set_condition(config, types.READY_CONDITION, "False",
                                         c.NOT_READY_REASON, message)
                return
        conditions.set_condition(config, types.READY_CONDITION, "True", c.READY_REASON)

    def _data_secret(self, config: Object, status: conditions.Status, reason: str,
                     message: str = "") -> None:
        conditions.set_condition(config, types.DATA_SECRET_AVAILABLE_CONDITION, status, reason,
                                 message)

    def _certificates(self, config: Object, ok: bool, message: str = "") -> None:
        if ok:
            conditions.set_condition(config, types.CERTIFICATES_AVAILABLE_CONDITION, "True",
                                     types.AVAILABLE_REASON)
        else:
            conditions.set_condition(config, types.CERTIFICATES_AVAILABLE_CONDITION, "Unknown",
                                     types.INTERNAL_ERROR_REASON, message)

    async def _reconcile(self, config: Object, machine: Object, cluster: Object) -> Result:
        status = config.setdefault("status", {})
        created = bool((status.get("initialization") or {}).get("dataSecretCreated"))
        cluster_init = (cluster.get("status") or {}).get("initialization") or {}
        if not cluster_init.get("infrastructureProvisioned"):
            self._data_secret(config, "False", types.NOT_AVAILABLE_REASON,
                              "Waiting for Cluster status.initialization."
                              "infrastructureProvisioned to be true")
            return Result()
        machine_secret = ((machine.get("spec") or {}).get("bootstrap") or {}).get(
            "dataSecretName")
        if machine_secret and (not created or not status.get("dataSecretName")):
            # Pivot or restore: the Machine already has its data, our status was lost.
            status["initialization"] = {"dataSecretCreated": True}
            status["dataSecretName"] = machine_secret
            self._data_secret(config, "True", types.AVAILABLE_REASON)
            self._certificates(config, True)
            return Result()
        if created:
            self._data_secret(config, "True", types.AVAILABLE_REASON)
            self._certificates(config, True)
            return await self._refresh_token(config, machine, cluster)
        if (config.get("spec") or {}).get("format", types.BOOTSTRAP_FORMAT) != \
                types.BOOTSTRAP_FORMAT:
            # Ignition sits behind upstream's alpha KubeadmBootstrapFormatIgnition gate.
            self._data_secret(config, "False", types.NOT_AVAILABLE_REASON,
                              "spec.format: only cloud-config is supported")
            return Result()
        if not control_plane_initialized(cluster):
            return await self._init(config, machine, cluster)
        await locking.unlock(self.client, cluster)
        return await self._join(config, machine, cluster, is_control_plane(machine))

    # ------------------------------------------------------------------ init

    async def _init(self, config: Object, machine: Object, cluster: Object) -> Result:
        if conditions.get_condition(config, types.DATA_SECRET_AVAILABLE_CONDITION) is None:
            self._data_secret(config, "False", types.NOT_AVAILABLE_REASON,
                              "Waiting for Cluster control plane to be initialized")
        if not is_control_plane(machine):
            return Result(requeue_after=WAIT)
        if not await locking.lock(self.client, cluster, machine["metadata"]["name"]):
            log.info("a control plane is already being initialized, requeuing",
                     extra={"config": config["metadata"]["name"]})
            return Result(requeue_after=WAIT)
        try:
            return await self._render_init(config, machine, cluster)
        except BaseException:
            await locking.unlock(self.client, cluster)
            raise

    async def _rendered_already(self, config: Object) -> bool:
        """Read the live object before rendering: a cache that has not yet seen our own last
        write must not make us render twice (a second token, rewritten data)."""
        meta = config["metadata"]
        try:
            live = await self.client.get(*types.CONFIG, meta["name"], meta["namespace"])
        except NotFound:
            return True
        return bool(((live.get("status") or {}).get("initialization") or {}).get(
            "dataSecretCreated"))

    async def _render_init(self, config: Object, machine: Object, cluster: Object) -> Result:
        if await self._rendered_already(config):
            return Result()
        spec = config.setdefault("spec", {})
        version = str((machine.get("spec") or {}).get("version") or "")
        namespace, cluster_name = config["metadata"]["namespace"], cluster["metadata"]["name"]
        try:
            cc = kubeadmapi.cluster_configuration(
                spec.get("clusterConfiguration"), kubernetes_version=version,
                cluster_name=cluster_name, control_plane_endpoint=control_plane_endpoint(cluster),
                cluster_network=(cluster.get("spec") or {}).get("clusterNetwork"),
                init_timeouts=(spec.get("initConfiguration") or {}).get("timeouts"))
            ic = kubeadmapi.init_configuration(spec.get("initConfiguration"),
                                               kubernetes_version=version)
        except kubeadmapi.UnsupportedKubernetesVersion as e:
            self._data_secret(config, "False", types.NOT_AVAILABLE_REASON,
                              f"Machine spec.version: {e}")
            await locking.unlock(self.client, cluster)
            return Result()
        try:
            if ((cluster.get("spec") or {}).get("controlPlaneRef") or {}).get("name"):
                certificates = await certs.lookup(self.client, namespace, cluster_name)
            else:
                certificates = await certs.lookup_or_generate(
                    self.client, namespace, cluster_name,
                    ownership.owner_reference(config, controller=True),
                    ca_validity_days=int((spec.get("clusterConfiguration") or {}).get(
                        "caCertificateValidityPeriodDays") or certs.DEFAULT_CA_VALIDITY_DAYS))
        except certs.MissingCertificate as e:
            self._certificates(config, False, str(e))
            raise
        self._certificates(config, True)
        files, users = await self._resolve(config)
        certificates_dir = (spec.get("clusterConfiguration") or {}).get(
            "certificatesDir") or certs.DEFAULT_CERTIFICATES_DIR
        user_data = cloudinit.render_init(
            {**spec, "users": users}, cluster_configuration=kubeadmapi.marshal(cc),
            init_configuration=kubeadmapi.marshal(ic),
            certificate_files=certs.as_files(certificates, certificates_dir), files=files)
        await self._store(config, cluster_name, user_data)
        return Result()

    # ------------------------------------------------------------------ join

    async def _join(self, config: Object, machine: Object, cluster: Object,
                    control_plane: bool) -> Result:
        if await self._rendered_already(config):
            return Result()
        spec = config.setdefault("spec", {})
        namespace, cluster_name = config["metadata"]["namespace"], cluster["metadata"]["name"]
        join = spec.setdefault("joinConfiguration", {})
        purposes = certs.CONTROL_PLANE_PURPOSES if control_plane else (certs.CA,)
        try:
            certificates = await certs.lookup(self.client, namespace, cluster_name, purposes)
        except certs.MissingCertificate as e:
            self._certificates(config, False, str(e))
            raise
        self._certificates(config, True)
        if control_plane:
            if join.get("controlPlane") is None:
                join["controlPlane"] = {}
        elif join.get("controlPlane") is not None:
            self._data_secret(config, "False", types.NOT_AVAILABLE_REASON,
                              "Machine is a Worker, but JoinConfiguration.ControlPlane is set "
                              "in the KubeadmConfig object")
            return Result()
        discovery = join.setdefault("discovery", {})
        if not discovery.get("file"):
            token_discovery = discovery.setdefault("bootstrapToken", {})
            if not token_discovery.get("caCertHashes"):
                token_discovery["caCertHashes"] = [certs.ca_cert_hash(certificates[certs.CA].cert)]
            if not token_discovery.get("apiServerEndpoint"):
                endpoint = control_plane_endpoint(cluster)
                if not endpoint:
                    self._data_secret(config, "False", types.NOT_AVAILABLE_REASON,
                                      "Waiting for Cluster spec.controlPlaneEndpoint")
                    return Result(requeue_after=10)
                token_discovery["apiServerEndpoint"] = endpoint
            if not token_discovery.get("token"):
                try:
                    workload = await self.workloads.get(namespace, cluster_name)
                except WorkloadUnavailable as e:
                    self._data_secret(config, "False", types.NOT_AVAILABLE_REASON,
                                      f"Cannot reach the workload cluster: {e}")
                    return Result(requeue_after=5)
                token_discovery["token"] = await tokens.create(workload, self.ttl)
        version = str((machine.get("spec") or {}).get("version") or "")
        rendered = copy.deepcopy(join)
        if not control_plane:
            registration = rendered.setdefault("nodeRegistration", {})
            taints = list(registration.get("taints") or [])
            if not any(t.get("key") == UNINITIALIZED_TAINT["key"] for t in taints):
                taints.append(dict(UNINITIALIZED_TAINT))
            registration["taints"] = taints
        try:
            jc = kubeadmapi.join_configuration(rendered, kubernetes_version=version)
        except kubeadmapi.UnsupportedKubernetesVersion as e:
            self._data_secret(config, "False", types.NOT_AVAILABLE_REASON,
                              f"Machine spec.version: {e}")
            return Result()
        files, users = await self._resolve(config)
        certificates_dir = (spec.get("clusterConfiguration") or {}).get(
            "certificatesDir") or certs.DEFAULT_CERTIFICATES_DIR
        user_data = cloudinit.render_join(
            {**spec, "users": users}, join_configuration=kubeadmapi.marshal(jc),
            certificate_files=(certs.as_files(certificates, certificates_dir)
                               if control_plane else None), files=files)
        await self._store(config, cluster_name, user_data)
        return Result(requeue_after=tokens.check_interval(self.ttl).total_seconds())

    async def _refresh_token(self, config: Object, machine: Object, cluster: Object) -> Result:
        token = ((((config.get("spec") or {}).get("joinConfiguration") or {}).get("discovery")
                  or {}).get("bootstrapToken") or {}).get("token")
        if not token or ((machine.get("status") or {}).get("nodeRef") or {}).get("name"):
            return Result()
        interval = tokens.check_interval(self.ttl).total_seconds()
        try:
            workload = await self.workloads.get(config["metadata"]["namespace"],
                                                cluster["metadata"]["name"])
        except WorkloadUnavailable as e:
            log.info("cannot refresh the bootstrap token yet",
                     extra={"config": config["metadata"]["name"], "reason": str(e)})
            return Result(requeue_after=min(interval, 10.0))
        if await tokens.refresh_if_needed(workload, str(token), self.ttl):
            log.info("refreshed bootstrap token until the machine consumes it",
                     extra={"config": config["metadata"]["name"]})
        return Result(requeue_after=interval)

    # ------------------------------------------------------------------ helpers

    async def _secret(self, namespace: str, name: str) -> Object:
        try:
            return await self.client.get("v1", "Secret", name, namespace)
        except NotFound as e:
            raise FileResolutionError(f"secret not found: {namespace}/{name}") from e

    async def _resolve(self, config: Object) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """spec.files and spec.users with `contentFrom`/`passwdFrom` replaced by the value."""
        spec = config.get("spec") or {}
        namespace = config["metadata"]["namespace"]
        try:
            files: list[dict[str, Any]] = []
            for f in spec.get("files") or []:
                source = (f.get("contentFrom") or {}).get("secret")
                if source:
                    secret = await self._secret(namespace, source["name"])
                    f = {k: v for k, v in f.items() if k != "contentFrom"}
                    f["content"] = _decode(secret, source["key"])
                files.append(f)
        except FileResolutionError as e:
            self._data_secret(config, "False", types.NOT_AVAILABLE_REASON,
                              f"Failed to read content from secrets for spec.files: {e}")
            raise
        try:
            users: list[dict[str, Any]] = []
            for u in spec.get("users") or []:
                source = (u.get("passwdFrom") or {}).get("secret")
                if source:
                    secret = await self._secret(namespace, source["name"])
                    u = {k: v for k, v in u.items() if k != "passwdFrom"}
                    u["passwd"] = _decode(secret, source["key"])
                users.append(u)
        except FileResolutionError as e:
            self._data_secret(config, "False", types.NOT_AVAILABLE_REASON,
                              f"Failed to read password from secrets for spec.users: {e}")
            raise
        return files, users

    async def _store(self, config: Object, cluster_name: str, user_data: str) -> None:
        meta = config["metadata"]
        secret: Object = {
            "apiVersion": "v1", "kind": "Secret", "type": c.CLUSTER_SECRET_TYPE,
            "metadata": {"name": meta["name"], "namespace": meta["namespace"],
                         "labels": {c.CLUSTER_NAME_LABEL: cluster_name},
                         "ownerReferences": [ownership.owner_reference(config, controller=True)]},
            "data": {"value": base64.b64encode(user_data.encode()).decode(),
                     "format": base64.b64encode(types.BOOTSTRAP_FORMAT.encode()).decode()},
        }
        try:
            await self.client.create(secret)
        except AlreadyExists:
            existing = await self.client.get("v1", "Secret", meta["name"], meta["namespace"])
            existing["data"] = secret["data"]
            existing["type"] = secret["type"]
            ownership.ensure_owner_reference(existing, secret["metadata"]["ownerReferences"][0])
            await self.client.update(existing)
        status = config.setdefault("status", {})
        status["dataSecretName"] = meta["name"]
        status["initialization"] = {"dataSecretCreated": True}
        self._data_secret(config, "True", types.AVAILABLE_REASON)

    async def aclose(self) -> None:
        await self.workloads.aclose()


async def setup(mgr: Manager, options: KubeadmConfigOptions | None = None) -> \
        KubeadmConfigReconciler:
    """Register the KubeadmConfig controller on `mgr`; call `aclose()` on the returned
    reconciler after the manager stopped (it holds workload-cluster clients)."""
    opts = options or KubeadmConfigOptions()
    reconciler = KubeadmConfigReconciler(mgr, opts)
    controller = await mgr.new_controller("kubeadmconfig", reconciler, for_=types.CONFIG,
                                          max_concurrent_reconciles=opts.concurrency)
    controller.watch(mgr.informer(MACHINE), reconciler.map_machine,
                     update_predicate=machine_update_relevant)
    controller.watch(mgr.informer(CLUSTER), reconciler.map_cluster,
                     update_predicate=cluster_update_relevant)
    return reconciler
