"""``shipyard create cluster NAME``: what `clusterctl create cluster` did — a throw-away
management plane, the cluster created from it, then the Cluster API objects and controllers
moved ("pivoted") into the new cluster, so it manages itself.

Steps, each announced; a failure names its step:
1. bootstrap  — an ephemeral `shipyard apiserver` (SQLite, loopback, TLS) under
   `<dir>/bootstrap`, port chosen by the kernel.
2. init       — the core, kubeadm bootstrap, kubeadm control-plane and infrastructure providers'
   CRDs and inventory records; their controllers run inside this command.
3. apply      — the provider's cluster template (`shipyard generate cluster`), plus, on
   Shipyard-native machines, a static Pod manifest in the control plane's kubeadmConfigSpec
   files: every control-plane machine's kubelet runs `shipyard controllers` from boot, with
   leader election in kube-system, talking to the machine's own API server (`--master`
   from the downward API's host IP), as kubeadm runs kube-controller-manager.
4. wait       — live progress until the control plane and workers are Running with Nodes.
5. init on the new cluster — CRDs and inventory records there.
6. move       — `shipyard move` from the bootstrap plane to the new cluster.
7. teardown   — this command's controllers stop (machines keep running), the bootstrap plane
   is stopped and removed; the new cluster's controllers take over (the control-plane load
   balancer moves to them) and the command waits until the cluster answers again.
It ends by printing the kubeconfig path (`<dir>/kubeconfig`) and the next commands. The
in-process controllers log to `<dir>.log`, not the terminal.

With ``-i docker`` the machines are containers; the static Pod is the same, plus what CAPD's
self-hosted layout gives its controllers: the engine's unix socket (``DOCKER_HOST``) mounted
into the control-plane containers at /var/run/docker.sock, and the container's own name (its
Node name), so the controllers attach it to the private network of every cluster they create.
The load balancer is a container of its own and needs no hand-over. The engine, its socket and
the node image are checked before anything starts.

Deleting a self-managed cluster (`destroy_self_managed`) is the same path backwards, in a
throw-away plane under ``<clusters>/.<NAME>-delete-*``. Once the objects are moved there, a
failure keeps that plane (stopped controllers, objects intact) instead of losing them with it;
``shipyard delete cluster NAME`` finds it and goes on from there (`resume_deletion`).

On failure before the move, the Cluster is deleted from the bootstrap plane (its controllers
remove the machines) and the bootstrap plane is torn down; whatever could not be removed is
listed with the command that removes it. `<dir>` is `~/.shipyard/clusters/<NAME>`
(`$SHIPYARD_HOME` moves it); an existing one is refused.
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import yaml

from shipyard.cli import management
from shipyard.cli import providers as registry

V2 = "cluster.x-k8s.io/v1beta2"
KCP = ("controlplane.cluster.x-k8s.io/v1beta2", "KubeadmControlPlane")
STATIC_POD_PATH = "/etc/kubernetes/manifests/shipyard-controller-manager.yaml"
KUBECONFIG_IN_MACHINE = "/etc/kubernetes/admin.conf"
API_SERVER_PORT = 6443
"""kubeadm's default bind port: where each control-plane machine's own API server listens."""
T = TypeVar("T")
NATIVE = {"process", "docker"}
"""Infrastructure whose machines run Shipyard's node agent (and so static pods)."""
ENGINE_SOCKET_IN_MACHINE = "/var/run/docker.sock"
"""Where a Docker control-plane machine sees the engine's socket (CAPD's self-hosted layout)."""
WORKLOAD_DIR_IN_MACHINE = "/var/lib/shipyard/machines"


def log_to_file(path: Path) -> None:
    """The in-process controllers' logs go to `path`, not the terminal the progress is on."""
    import logging

    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in ("shipyard", "aiohttp", "asyncio"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.propagate = False
        logger.setLevel(logging.INFO if name == "shipyard" else logging.WARNING)


def clusters_home() -> Path:
    root = os.environ.get("SHIPYARD_HOME")
    return (Path(root).expanduser() if root else Path.home() / ".shipyard") / "clusters"


class StepFailed(click.ClickException):
    def __init__(self, step: str, cause: BaseException | str) -> None:
        super().__init__(f"step {step!r} failed: {cause}")
        self.step = step


def controllers_static_pod(workload_dir: Path | str, flags: list[str],
                           env: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The static Pod that runs Cluster API's controllers on a control-plane machine."""
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "shipyard-controller-manager", "namespace": "kube-system",
                     "labels": {"component": "shipyard-controller-manager",
                                "tier": "control-plane"}},
        "spec": {
            "priorityClassName": "system-node-critical",
            "containers": [{
                "name": "manager",
                "command": ["shipyard", "controllers", f"--kubeconfig={KUBECONFIG_IN_MACHINE}",
                            f"--master=https://$(HOST_IP):{API_SERVER_PORT}",
                            "--leader-elect", "--leader-election-namespace=kube-system",
                            "--metrics-bind-address=0", f"--workload-dir={workload_dir}",
                            *flags],
                # The machine's own API server, not the control-plane endpoint: the endpoint's
                # load balancer is served by whichever controllers lead, so these must not
                # depend on it (kubeadm points kube-controller-manager at the local one too).
                "env": [{"name": "HOST_IP",
                         "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
                        *(env or [])],
                "volumeMounts": [{"name": "kubeconfig", "mountPath": "/etc/kubernetes",
                                  "readOnly": True}],
            }],
            "volumes": [{"name": "kubeconfig",
                         "hostPath": {"path": "/etc/kubernetes", "type": "Directory"}}],
        },
    }


def docker_controllers_env() -> list[dict[str, Any]]:
    """What the controllers need inside a Docker control-plane machine: the engine through
    the socket mounted there, and the machine's own container name (its Node name), which
    joins the networks of the clusters they create."""
    from shipyard.providers.docker.setup import SELF_CONTAINER_ENV

    return [{"name": "DOCKER_HOST", "value": f"unix://{ENGINE_SOCKET_IN_MACHINE}"},
            {"name": SELF_CONTAINER_ENV,
             "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]


def engine_socket() -> str:
    """The Docker engine's unix socket on this host (``DOCKER_HOST``, else docker's default),
    to be mounted into the control-plane containers; a TCP engine cannot be."""
    from shipyard.providers.docker.engine import unix_socket

    path = unix_socket(None)
    if path is None:
        raise click.UsageError(
            f"create cluster -i docker mounts the engine's socket into the control-plane "
            f"machines, so the cluster can manage itself; DOCKER_HOST="
            f"{os.environ.get('DOCKER_HOST')} is not a unix socket")
    return path


def on_engine(call: Callable[[Any], T]) -> T:
    """``call`` with a connection to the Docker engine (``DOCKER_HOST``), closed afterwards;
    engine errors become a clear CLI error."""
    from shipyard.providers.docker.engine import Engine, EngineError

    engine = Engine()
    try:
        return call(engine)
    except EngineError as e:
        raise click.ClickException(str(e)) from e
    finally:
        engine.close()


def with_engine_socket(objects: list[dict[str, Any]], socket: str) -> None:
    """Mount ``socket`` into the control plane's DockerMachineTemplate (CAPD's extraMounts)."""
    kcp = next((o for o in objects if o.get("kind") == "KubeadmControlPlane"), None)
    ref = ((((kcp or {}).get("spec") or {}).get("machineTemplate") or {}).get("spec")
           or {}).get("infrastructureRef") or {}
    for obj in objects:
        if obj.get("kind") == "DockerMachineTemplate" and \
                obj["metadata"]["name"] == ref.get("name"):
            spec = obj["spec"]["template"].setdefault("spec", {}) or {}
            obj["spec"]["template"]["spec"] = spec
            spec.setdefault("extraMounts", []).append(
                {"containerPath": ENGINE_SOCKET_IN_MACHINE, "hostPath": socket})


def with_static_pod(objects: list[dict[str, Any]], pod: dict[str, Any]) -> None:
    for obj in objects:
        if obj.get("kind") == "KubeadmControlPlane":
            spec = obj["spec"].setdefault("kubeadmConfigSpec", {}) or {}
            obj["spec"]["kubeadmConfigSpec"] = spec
            spec.setdefault("files", []).append({
                "path": STATIC_POD_PATH, "owner": "root:root", "permissions": "0600",
                "content": yaml.safe_dump(pod, sort_keys=False)})


# ----------------------------------------------------------------------------- progress

def summary(cluster: dict[str, Any] | None, kcp: dict[str, Any] | None,
            machines: list[dict[str, Any]]) -> str:
    phases: dict[str, int] = {}
    for m in machines:
        phase = str((m.get("status") or {}).get("phase") or "Pending")
        phases[phase] = phases.get(phase, 0) + 1
    parts = [f"cluster {((cluster or {}).get('status') or {}).get('phase') or 'Pending'}"]
    if kcp is not None:
        st = kcp.get("status") or {}
        parts.append(f"control plane {st.get('readyReplicas', 0)}/"
                     f"{(kcp.get('spec') or {}).get('replicas', 1)} ready")
    parts.append("machines " + (", ".join(f"{n} {p}" for p, n in sorted(phases.items()))
                                or "none yet"))
    return "; ".join(parts)


def converged(kcp: dict[str, Any] | None, machines: list[dict[str, Any]],
              expected: int) -> bool:
    if kcp is not None:
        st = kcp.get("status") or {}
        if st.get("readyReplicas", 0) < (kcp.get("spec") or {}).get("replicas", 1):
            return False
    running = [m for m in machines if (m.get("status") or {}).get("phase") == "Running"
               and (m.get("status") or {}).get("nodeRef")]
    return len(running) == expected == len(machines)


# ----------------------------------------------------------------------------- the flow

class Flow:
    def __init__(self, name: str, namespace: str, home: Path, infrastructure: str,
                 flavor: str, values: dict[str, str], timeout: float,
                 echo: Callable[[str], None]) -> None:
        self.name, self.namespace, self.home = name, namespace, home
        self.infrastructure, self.flavor = infrastructure, flavor
        self.values, self.timeout, self.echo = values, timeout, echo
        self.plane = management.Plane(home / "bootstrap")
        self.workload_dir = home / "machines"
        self.kubeconfig = home / "kubeconfig"
        self.started = time.monotonic()
        self.mgr: Any = None
        self.mgr_task: asyncio.Task[None] | None = None
        self.ctx: registry.RunContext | None = None
        self.applied = False
        self.moved = False

    def say(self, text: str) -> None:
        self.echo(f"[{time.monotonic() - self.started:6.1f}s] {text}")

    async def step(self, name: str, what: Callable[[], Awaitable[Any]]) -> Any:
        try:
            return await what()
        except click.ClickException:
            raise
        except Exception as e:  # noqa: BLE001 - reported with its step, then cleaned up
            raise StepFailed(name, f"{type(e).__name__}: {e}") from e

    def chosen(self) -> list[registry.Provider]:
        return registry.select([self.infrastructure], ["kubeadm"], ["kubeadm"])

    def flags(self) -> list[str]:
        return ["--infrastructure", self.infrastructure, "--bootstrap", "kubeadm",
                "--control-plane", "kubeadm"]

    async def run(self) -> None:
        from shipyard.client import Client

        self.say(f"Starting the bootstrap management plane in {self.plane.dir}")
        await self.step("bootstrap", self.start_bootstrap)
        async with Client.from_kubeconfig(self.plane.kubeconfig) as boot:
            await self.step("init", lambda: self.init_bootstrap(boot))
            try:
                await self.step("apply", lambda: self.apply(boot))
                await self.step("wait", lambda: self.wait(boot))
                await self.step("kubeconfig", lambda: self.write_kubeconfig(boot))
                direct = await self.step("kubeconfig", lambda: self.control_plane_url(boot))
                async with Client.from_kubeconfig(self.kubeconfig) as target:
                    if direct:
                        # Past the load balancer: this command's controllers serve it, and
                        # the move takes its backends away before the new cluster's own
                        # controllers serve it again.
                        target.config.server = direct
                    await self.step("init on the new cluster",
                                    lambda: self.init_target(target))
                    await self.step("move", lambda: self.move(boot, target))
            finally:
                await self.stop_controllers()
        await self.step("teardown", self.teardown)
        async with Client.from_kubeconfig(self.kubeconfig) as target:
            await self.step("self-management", lambda: self.wait_self_managed(target))

    async def start_bootstrap(self) -> None:
        self.plane.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        await asyncio.to_thread(management._start, self.plane, 0, 60.0)

    async def init_bootstrap(self, boot: Any) -> None:
        from shipyard.cli.init import install
        from shipyard.runtime import Manager

        self.say("Installing Cluster API and providers: " +
                 ", ".join(p.key for p in self.chosen()))
        await install(boot, self.chosen(), echo=lambda _: None)
        self.ctx = registry.RunContext(workload_dir=self.workload_dir)
        self.mgr = Manager(boot)
        for provider in self.chosen():
            await provider.start(self.mgr, self.ctx)
        self.mgr_task = asyncio.create_task(self.mgr.run())

    async def stop_controllers(self) -> None:
        if self.mgr is not None:
            self.mgr.stop()
            if self.mgr_task is not None:
                try:
                    await self.mgr_task
                except Exception:  # noqa: BLE001 - stopping; the error was logged
                    pass
        if self.ctx is not None:
            while self.ctx.closers:
                await self.ctx.closers.pop()()
        self.mgr = None

    def manifest(self) -> list[dict[str, Any]]:
        from shipyard import templates

        text = templates.template_text(self.infrastructure, self.flavor)
        rendered = templates.render(text, templates.Values(self.values, os.environ,
                                                           templates.load_config(None)))
        objects = [d for d in yaml.safe_load_all(rendered) if d]
        if self.infrastructure == "docker":
            with_engine_socket(objects, engine_socket())
            with_static_pod(objects, controllers_static_pod(
                WORKLOAD_DIR_IN_MACHINE, self.flags(), docker_controllers_env()))
        elif self.infrastructure in NATIVE:
            with_static_pod(objects, controllers_static_pod(self.workload_dir, self.flags()))
        return objects

    async def apply(self, boot: Any) -> None:
        from shipyard.apimachinery.errors import AlreadyExists

        objects = self.manifest()
        try:
            await boot.create({"apiVersion": "v1", "kind": "Namespace",
                               "metadata": {"name": self.namespace}})
        except AlreadyExists:
            pass
        self.say(f"Creating cluster {self.namespace}/{self.name} "
                 f"({len(objects)} objects, infrastructure {self.infrastructure})")
        self.applied = True
        for obj in objects:
            await boot.create(obj)

    async def observe(self, client: Any) -> tuple[Any, Any, list[dict[str, Any]]]:
        from shipyard.apimachinery.errors import NotFound
        from shipyard.client import NoKindMatchError

        try:
            cluster = await client.get(V2, "Cluster", self.name, self.namespace)
        except NotFound:
            cluster = None
        kcp = None
        ref = ((cluster or {}).get("spec") or {}).get("controlPlaneRef")
        if ref:
            try:
                kcp = await client.get(*KCP, ref["name"], self.namespace)
            except (NotFound, NoKindMatchError):
                kcp = None
        machines = (await client.list(V2, "Machine", self.namespace, label_selector=(
            f"cluster.x-k8s.io/cluster-name={self.name}")))["items"]
        return cluster, kcp, machines

    async def wait(self, boot: Any) -> None:
        expected = int(self.values["CONTROL_PLANE_MACHINE_COUNT"]) + int(
            self.values["WORKER_MACHINE_COUNT"])
        deadline = time.monotonic() + self.timeout
        last = ""
        while True:
            cluster, kcp, machines = await self.observe(boot)
            line = summary(cluster, kcp, machines)
            if line != last:
                self.say(line)
                last = line
            if converged(kcp, machines, expected):
                return
            if time.monotonic() > deadline:
                problems = [f"{m['metadata']['name']}: {c.get('type')} {c.get('reason')}: "
                            f"{c.get('message')}" for m in machines
                            for c in (m.get("status") or {}).get("conditions") or []
                            if c.get("status") == "False" and c.get("message")]
                raise TimeoutError(f"not Running after {self.timeout:g}s ({line})"
                                   + ("; " + "; ".join(problems[:5]) if problems else ""))
            await asyncio.sleep(1.0)

    async def write_kubeconfig(self, boot: Any) -> None:
        secret = await boot.get("v1", "Secret", f"{self.name}-kubeconfig", self.namespace)
        self.kubeconfig.write_bytes(base64.b64decode(secret["data"]["value"]))
        self.kubeconfig.chmod(0o600)
        self.say(f"Workload cluster kubeconfig written to {self.kubeconfig}")

    async def control_plane_url(self, boot: Any) -> str | None:
        """A control-plane machine's own API server, for Shipyard-native machines."""
        if self.infrastructure not in NATIVE:
            return None
        return await control_plane_server(boot, self.name, self.namespace)

    async def init_target(self, target: Any) -> None:
        from shipyard.cli.init import install

        self.say("Installing Cluster API and providers on the new cluster")
        await install(target, self.chosen(), echo=lambda _: None)
        if self.infrastructure in NATIVE:
            await self.wait_for_lease(target)

    async def wait_for_lease(self, target: Any) -> None:
        """The new cluster's own controllers (static pods) are up when one holds the Lease."""
        from shipyard.apimachinery.errors import NotFound

        deadline = time.monotonic() + 120
        while True:
            try:
                lease = await target.get("coordination.k8s.io/v1", "Lease",
                                         "controller-leader-election-capi", "kube-system")
                holder = (lease.get("spec") or {}).get("holderIdentity")
                if holder:
                    self.say(f"The new cluster's controllers are running (leader {holder})")
                    return
            except NotFound:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("the new cluster's controllers did not take the leader "
                                   "Lease kube-system/controller-leader-election-capi")
            await asyncio.sleep(1.0)

    async def move(self, boot: Any, target: Any) -> None:
        from shipyard.clusterctl.mover import Mover

        self.say("Moving Cluster API objects to the new cluster")
        await Mover(boot, log=lambda line: self.say(f"  {line}")).move(target, self.namespace)
        self.moved = True

    async def teardown(self) -> None:
        self.say("Deleting the bootstrap management plane")
        pid = self.plane.running_pid()
        if pid is not None:
            await asyncio.to_thread(management.stop, pid, 30.0)
        shutil.rmtree(self.plane.dir, ignore_errors=True)

    async def wait_self_managed(self, target: Any) -> None:
        """The new cluster's controllers serve it: its API answers through the control-plane
        endpoint again and its Cluster is reconciled and not paused."""
        deadline = time.monotonic() + 180
        last_error = ""
        while True:
            try:
                cluster, kcp, machines = await self.observe(target)
                paused = ((cluster or {}).get("spec") or {}).get("paused")
                conds = {c["type"]: c for c in ((cluster or {}).get("status") or {}).get(
                    "conditions") or []}
                if cluster is not None and not paused and conds.get("Paused", {}).get(
                        "status") == "False":
                    self.say(f"The cluster manages itself: {summary(cluster, kcp, machines)}")
                    return
            except Exception as e:  # noqa: BLE001 - the endpoint is moving; keep trying
                last_error = f"{type(e).__name__}: {e}"
            if time.monotonic() > deadline:
                raise TimeoutError("the new cluster did not take over its own management"
                                   + (f" (last error: {last_error})" if last_error else ""))
            await asyncio.sleep(1.0)

    async def wait_deleted(self, boot: Any, timeout: float) -> str | None:
        """Wait until the Cluster and its Machines are gone, saying how it goes; None once
        they are, else (after ``timeout`` seconds) the last progress line."""
        deadline = time.monotonic() + timeout
        last = ""
        while True:
            cluster, kcp, machines = await self.observe(boot)
            if cluster is None and not machines:
                return None
            line = summary(cluster, kcp, machines)
            if line != last:
                self.say(line)
                last = line
            if time.monotonic() > deadline:
                return line
            await asyncio.sleep(1.0)

    async def clean_up(self) -> list[str]:
        """After a failure before the move: delete the Cluster from the bootstrap plane (the
        controllers remove its machines), stop everything; returns what is left."""
        from shipyard.client import Client

        left: list[str] = []
        if self.applied and not self.moved and self.plane.running_pid() is not None:
            self.say(f"Deleting cluster {self.name} from the bootstrap plane")
            try:
                async with Client.from_kubeconfig(self.plane.kubeconfig) as boot:
                    # Controllers on this client: any earlier ones held a client now closed.
                    await self.stop_controllers()
                    await self.init_bootstrap(boot)
                    await boot.delete(V2, "Cluster", self.name, self.namespace)
                    if await self.wait_deleted(boot, 120) is not None:
                        left.append(leftovers(self))
            except Exception as e:  # noqa: BLE001 - report what is left instead
                left.append(f"cluster {self.name} could not be deleted: {e}")
            finally:
                await self.stop_controllers()
        await self.teardown()
        machines_dir = self.workload_dir / "process" / "machines" / self.namespace
        if machines_dir.exists() and any(machines_dir.iterdir()):
            left.append(f"machine directories under {machines_dir}")
        if not left:
            shutil.rmtree(self.home, ignore_errors=True)
        return left


async def control_plane_server(client: Any, name: str, namespace: str) -> str | None:
    """A control-plane machine's own API server URL (Shipyard-native machines), else None."""
    machines = (await client.list(V2, "Machine", namespace, label_selector=(
        f"cluster.x-k8s.io/cluster-name={name},cluster.x-k8s.io/control-plane")))["items"]
    for m in machines:
        for address in (m.get("status") or {}).get("addresses") or []:
            if address.get("type") == "InternalIP":
                return f"https://{address['address']}:{API_SERVER_PORT}"
    return None


async def is_self_managed(client: Any, name: str, namespace: str) -> bool:
    """The Cluster lives in its own API server: its controlPlaneEndpoint is the server this
    client talks to."""
    from urllib.parse import urlsplit

    cluster = await client.get(V2, "Cluster", name, namespace)
    endpoint = (cluster.get("spec") or {}).get("controlPlaneEndpoint") or {}
    url = urlsplit(client.config.server)
    return bool(endpoint.get("host")) and (url.hostname, url.port or 443) == (
        endpoint.get("host"), int(endpoint.get("port") or 0))


async def destroy_self_managed(name: str, namespace: str, kubeconfig: Path,
                               echo: Callable[[str], None], timeout: float = 600.0) -> None:
    """Delete a cluster that manages itself, the way it was created in reverse: a throw-away
    management plane, the Cluster API objects moved back into it, the Cluster deleted from
    there (its controllers remove every machine, the control plane's last), the plane torn
    down. Deleting it in place would have its controllers delete the machines they run on."""
    from shipyard.client import Client
    from shipyard.clusterctl.mover import Mover

    async with Client.from_kubeconfig(kubeconfig) as probe:
        cluster = await probe.get(V2, "Cluster", name, namespace)
        infra = str(((cluster.get("spec") or {}).get("infrastructureRef") or {}).get(
            "kind", "")).removesuffix("Cluster").lower()
        direct = await control_plane_server(probe, name, namespace)
        others = [f"{c['metadata']['namespace']}/{c['metadata']['name']}"
                  for c in (await probe.list(V2, "Cluster"))["items"]
                  if (c["metadata"]["namespace"], c["metadata"]["name"]) != (namespace, name)]
    if others:
        raise click.ClickException(
            f"cluster {namespace}/{name} manages itself and {', '.join(others)}: delete or "
            "move those first, or they would lose their management cluster")
    if infra == "docker":
        # This command's controllers delete the containers: without the engine the move
        # would strand the objects in a throw-away plane.
        await asyncio.to_thread(docker_engine_check)
    home = clusters_home() / name
    flow = deletion_flow(name, namespace, Path(tempfile_dir(home)), infra or "process", timeout,
                         echo)
    flow.say(f"Starting a management plane to delete {namespace}/{name} from")
    await flow.step("bootstrap", flow.start_bootstrap)
    moved = False
    try:
        async with Client.from_kubeconfig(flow.plane.kubeconfig) as boot, \
                Client.from_kubeconfig(kubeconfig) as source:
            if direct:
                source.config.server = direct
            await flow.step("init", lambda: flow.init_bootstrap(boot))
            flow.say(f"Moving {namespace}/{name}'s Cluster API objects off the cluster")
            await flow.step("move", lambda: Mover(source, log=lambda x: flow.say(f"  {x}"))
                            .move(boot, namespace))
            moved = True
            flow.say(f"Deleting cluster {namespace}/{name}")
            await boot.delete(V2, "Cluster", name, namespace)
            await _wait_deleted(flow, boot)
    except BaseException as e:
        await flow.stop_controllers()
        if not moved:
            await flow.teardown()
            shutil.rmtree(flow.home, ignore_errors=True)
            raise
        # The objects live in the plane now: keep it, so that nothing is lost and the
        # deletion can go on from where it stopped.
        raise StepFailed("delete", f"{e}; the cluster's Cluster API objects are kept in the "
                         f"management plane at {flow.plane.dir}: run `shipyard delete cluster "
                         f"{name} -n {namespace}` again to go on deleting from there") from e
    await finish_deletion(flow, home)


def deletion_flow(name: str, namespace: str, directory: Path, infrastructure: str,
                  timeout: float, echo: Callable[[str], None]) -> Flow:
    """The flow that deletes a self-managed cluster from a plane under ``directory``: its
    machines are the ones `create cluster` made under the cluster's home."""
    home = clusters_home() / name
    log_to_file(home.parent / f"{name}.log")
    flow = Flow(name, namespace, directory, infrastructure, "", {}, timeout, echo)
    flow.workload_dir = home / "machines"
    return flow


async def _wait_deleted(flow: Flow, boot: Any) -> None:
    line = await flow.wait_deleted(boot, flow.timeout)
    if line is not None:
        raise StepFailed("delete", f"still present after {flow.timeout:g}s: {line}; "
                         f"left running: {leftovers(flow)}")


async def finish_deletion(flow: Flow, home: Path) -> None:
    await flow.stop_controllers()
    await flow.teardown()
    shutil.rmtree(flow.home, ignore_errors=True)
    if home.exists() and not any((home / "machines").rglob("machine.json")):
        shutil.rmtree(home, ignore_errors=True)
    flow.say(f"Cluster {flow.namespace}/{flow.name} deleted")


def interrupted_deletion(name: str) -> Path | None:
    """The plane a failed self-managed deletion of ``name`` left, holding its objects."""
    home = clusters_home() / name
    if not home.parent.is_dir():
        return None
    for candidate in sorted(home.parent.glob(f".{name}-delete-*")):
        if (candidate / "bootstrap").is_dir():
            return candidate
    return None


async def resume_deletion(name: str, namespace: str, left: Path,
                          echo: Callable[[str], None], timeout: float = 600.0) -> None:
    """Go on deleting ``name`` from the plane an interrupted deletion kept (``left``): start
    it if it stopped, run the controllers again, wait until the cluster is gone, tear down."""
    from shipyard.client import Client

    home = clusters_home() / name
    flow = deletion_flow(name, namespace, left, "process", timeout, echo)
    flow.say(f"Going on deleting {namespace}/{name} from the management plane at "
             f"{flow.plane.dir}")
    if flow.plane.running_pid() is None:
        await flow.step("bootstrap", flow.start_bootstrap)
    try:
        async with Client.from_kubeconfig(flow.plane.kubeconfig) as boot:
            cluster, _, _ = await flow.observe(boot)
            ref = ((cluster or {}).get("spec") or {}).get("infrastructureRef") or {}
            if ref.get("kind"):
                flow.infrastructure = str(ref["kind"]).removesuffix("Cluster").lower()
            if flow.infrastructure == "docker":
                await asyncio.to_thread(docker_engine_check)
            await flow.step("init", lambda: flow.init_bootstrap(boot))
            if cluster is not None and not cluster["metadata"].get("deletionTimestamp"):
                await boot.delete(V2, "Cluster", name, namespace)
            await _wait_deleted(flow, boot)
    except BaseException as e:
        await flow.stop_controllers()
        raise StepFailed("delete", f"{e}; the management plane at {flow.plane.dir} is kept: "
                         f"run `shipyard delete cluster {name} -n {namespace}` again") from e
    await finish_deletion(flow, home)


def leftovers(flow: Flow) -> str:
    """What a failed deletion leaves running, and how to remove it by hand."""
    if flow.infrastructure == "docker":
        from shipyard.providers.docker import engine

        owner = engine.owner_key(flow.namespace, flow.name)
        return (f"the containers labelled {engine.OWNER_LABEL}={owner} and the network "
                f"{engine.network_name(flow.namespace, flow.name)} (`docker rm -f $(docker ps "
                f"-aq --filter label={engine.OWNER_LABEL}={owner})`, then `docker network rm "
                f"{engine.network_name(flow.namespace, flow.name)}`)")
    return (f"the machines' processes under {flow.workload_dir} (stop them, then "
            f"`rm -rf {flow.workload_dir}`)")


def docker_engine_check() -> None:
    on_engine(lambda engine: engine.ping())


def tempfile_dir(home: Path) -> str:
    import tempfile

    home.parent.mkdir(parents=True, exist_ok=True)
    return tempfile.mkdtemp(prefix=f".{home.name}-delete-", dir=home.parent)


@click.group("create")
def create() -> None:
    """Create workload clusters (clusterctl create)."""


def docker_preflight() -> str:
    """Before anything starts: the engine answers, its socket can be mounted, and the node
    image is there; returns the image (``DOCKER_NODE_IMAGE`` picks another)."""
    from shipyard.providers.docker.image import default_node_image

    engine_socket()
    image = os.environ.get("DOCKER_NODE_IMAGE") or default_node_image()
    if not on_engine(lambda engine: engine.image_present(image)):
        raise click.ClickException(
            f"the node image {image} is not in the Docker engine; build it with "
            "`shipyard build node-image`")
    return image


@create.command("cluster")
@click.argument("name")
@click.option("-i", "--infrastructure", default="process", show_default=True,
              help="Infrastructure provider of the machines.")
@click.option("-f", "--flavor", default="", help="The template variant.")
@click.option("--kubernetes-version", default="v1.33.0", show_default=True)
@click.option("--control-plane-machine-count", type=click.IntRange(min=1), default=1,
              show_default=True)
@click.option("--worker-machine-count", type=click.IntRange(min=0), default=1,
              show_default=True)
@click.option("-n", "--target-namespace", default="default", show_default=True)
@click.option("--timeout", type=click.FloatRange(min=1), default=600.0, show_default=True,
              help="Seconds to wait for the machines.")
def cluster(name: str, infrastructure: str, flavor: str, kubernetes_version: str,
            control_plane_machine_count: int, worker_machine_count: int,
            target_namespace: str, timeout: float) -> None:
    """Create a self-managed workload cluster: bootstrap, create, pivot."""
    from shipyard import templates

    if infrastructure not in registry.available(registry.INFRASTRUCTURE):
        raise click.UsageError(f"unknown infrastructure provider {infrastructure!r}; available: "
                               f"{', '.join(registry.available(registry.INFRASTRUCTURE))}")
    if infrastructure not in NATIVE:
        raise click.UsageError(
            f"create cluster pivots the cluster onto its own machines, which {infrastructure!r} "
            "machines cannot run; use `shipyard init` and `shipyard generate cluster` with a "
            f"management cluster instead (self-managing providers: {', '.join(sorted(NATIVE))})")
    try:
        templates.template_text(infrastructure, flavor)
    except templates.TemplateNotFound as e:
        raise click.UsageError(str(e)) from e
    if control_plane_machine_count % 2 == 0:
        raise click.UsageError("--control-plane-machine-count cannot be an even number when "
                               "etcd is stacked")
    home = clusters_home() / name
    if home.exists():
        raise click.ClickException(
            f"a cluster named {name!r} already exists here ({home}); delete it with "
            f"`shipyard delete cluster {name} --kubeconfig {home / 'kubeconfig'}` or pick "
            "another name")
    values = {"CLUSTER_NAME": name, "NAMESPACE": target_namespace,
              "KUBERNETES_VERSION": kubernetes_version,
              "CONTROL_PLANE_MACHINE_COUNT": str(control_plane_machine_count),
              "WORKER_MACHINE_COUNT": str(worker_machine_count)}
    if infrastructure == "docker":
        values["DOCKER_NODE_IMAGE"] = docker_preflight()
    log_to_file(home.parent / f"{name}.log")
    flow = Flow(name, target_namespace, home, infrastructure, flavor, values, timeout,
                click.echo)
    try:
        asyncio.run(flow.run())
    except (click.ClickException, KeyboardInterrupt) as e:
        if flow.moved:
            raise
        left = asyncio.run(flow.clean_up())
        if left:
            click.echo("Left behind (remove with `shipyard management down --data-dir "
                       f"{flow.plane.dir}` and `rm -rf {home}` after removing the machines):\n"
                       + "\n".join(f"  - {x}" for x in left), err=True)
        raise e if isinstance(e, click.ClickException) else click.Abort() from e
    kubeconfig = flow.kubeconfig
    click.echo(f"""
Your cluster {name} manages itself now. Its kubeconfig: {kubeconfig}

  export KUBECONFIG={kubeconfig}
  kubectl get nodes
  kubectl get cluster,kubeadmcontrolplane,machinedeployment,machines -n {target_namespace}
  kubectl scale machinedeployment {name}-md-0 -n {target_namespace} --replicas=3
  shipyard describe cluster {name} -n {target_namespace}
""")
