"""Read a Cluster and everything that makes it up into an `ObjectTree` (clusterctl's
`tree.Discovery`).

Why: ``describe cluster`` must show what the controllers see, so it reads the same objects the
same way: the Cluster, the objects its contract references name (infrastructure, control
plane, each Machine's infrastructure and bootstrap config), and the Machines, MachineSets and
MachineDeployments labelled ``cluster.x-k8s.io/cluster-name``, tied together by controller
owner references. The layout, as upstream:

    Cluster
    ├─ClusterInfrastructure - <kind>/<name>
    ├─ControlPlane - <kind>/<name>          (control-plane Machines, grouped)
    └─Workers
      ├─MachineDeployment/<name>            (its Machines, grouped; or its MachineSets and
      │                                      their Machines with show_machine_sets)
      └─Other                               (Machines owned by no MachineDeployment)

Only the reader half of the client is used; a missing referenced object is left out, as
clusterctl does, while a missing Cluster raises the client's `NotFound`.
"""

from __future__ import annotations

from typing import Any

from shipyard.api.core.constants import CLUSTER_NAME_LABEL, MACHINE_CONTROL_PLANE_LABEL
from shipyard.apimachinery.errors import NotFound
from shipyard.client.interfaces import Object, ReaderWriter
from shipyard.controllers.external import ContractVersionNotFound, ExternalObjects
from shipyard.describe.tree import Node, ObjectTree, TreeOptions

V2 = "cluster.x-k8s.io/v1beta2"


async def _referenced(external: ExternalObjects, ref: Any, namespace: str) -> Object | None:
    if not isinstance(ref, dict) or not ref.get("name") or not ref.get("kind"):
        return None
    try:
        return await external.get_or_none(ref, namespace)
    except (ContractVersionNotFound, NotFound):
        return None


def _controller_uid(obj: Object) -> str | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid"))
    return None


def _uid(obj: Object) -> str:
    return str((obj.get("metadata") or {}).get("uid"))


def _by_name(objs: list[Object]) -> list[Object]:
    return sorted(objs, key=lambda o: str((o.get("metadata") or {}).get("name", "")))


async def discover(client: ReaderWriter, namespace: str, name: str,
                   options: TreeOptions) -> ObjectTree:
    """The tree of Cluster ``namespace/name``; raises `NotFound` if there is no such Cluster."""
    cluster = await client.get(V2, "Cluster", name, namespace)
    external = ExternalObjects(client)
    root = Node.of(cluster)
    tree = ObjectTree(root, options)
    spec = cluster.get("spec") or {}

    infra = await _referenced(external, spec.get("infrastructureRef"), namespace)
    if infra is not None:
        tree.add(root, Node.of(infra, meta_name="ClusterInfrastructure"))

    control_plane: Node | None = None
    cp_obj = await _referenced(external, spec.get("controlPlaneRef"), namespace)
    if cp_obj is not None:
        control_plane = Node.of(cp_obj, meta_name="ControlPlane", contract="ControlPlane")
        tree.add(root, control_plane, grouping=True)
        if options.show_templates:
            template = (((cp_obj.get("spec") or {}).get("machineTemplate") or {}).get("spec")
                        or (cp_obj.get("spec") or {}).get("machineTemplate") or {})
            await _add_templates(tree, external, control_plane, namespace,
                                 template.get("infrastructureRef"), None)

    selector = f"{CLUSTER_NAME_LABEL}={name}"
    machines = _by_name((await client.list(V2, "Machine", namespace,
                                           label_selector=selector))["items"])
    shown: set[str] = set()

    async def add_machine(parent: Node, machine: Object) -> None:
        shown.add(_uid(machine))
        if not tree.add(parent, node := Node.of(machine)):
            return
        mspec = machine.get("spec") or {}
        m_infra = await _referenced(external, mspec.get("infrastructureRef"), namespace)
        if m_infra is not None:
            tree.add(node, Node.of(m_infra, meta_name="MachineInfrastructure"), no_echo=True)
        config = await _referenced(external, (mspec.get("bootstrap") or {}).get("configRef"),
                                   namespace)
        if config is not None:
            tree.add(node, Node.of(config, meta_name="BootstrapConfig"), no_echo=True)

    cp_machines = [m for m in machines
                   if MACHINE_CONTROL_PLANE_LABEL in ((m.get("metadata") or {}).get("labels")
                                                      or {})]
    if cp_machines and control_plane is None:
        # Machines of a control plane without a provider object (created one by one):
        # clusterctl would hide them; they get a virtual ControlPlane node instead.
        control_plane = Node.virtual("ControlPlaneGroup", "ControlPlane")
        tree.add(root, control_plane, grouping=True)
    for m in cp_machines:
        assert control_plane is not None
        await add_machine(control_plane, m)
    if len(machines) == len(cp_machines):
        return tree

    workers = Node.virtual("WorkerGroup", "Workers")
    tree.add(root, workers)
    deployments = _by_name((await client.list(V2, "MachineDeployment", namespace,
                                              label_selector=selector))["items"])
    machine_sets = _by_name((await client.list(V2, "MachineSet", namespace,
                                               label_selector=selector))["items"])
    for md in deployments:
        md_node = Node.of(md)
        tree.add(workers, md_node, grouping=not options.show_machine_sets)
        if options.show_templates:
            tspec = ((md.get("spec") or {}).get("template") or {}).get("spec") or {}
            await _add_templates(tree, external, md_node, namespace,
                                 tspec.get("infrastructureRef"),
                                 (tspec.get("bootstrap") or {}).get("configRef"))
        for ms in (s for s in machine_sets if _controller_uid(s) == _uid(md)):
            parent = md_node
            if options.show_machine_sets:
                parent = Node.of(ms)
                tree.add(md_node, parent, grouping=True)
            for m in (m for m in machines if _controller_uid(m) == _uid(ms)):
                await add_machine(parent, m)

    orphans = [m for m in machines if _uid(m) not in shown]
    if orphans:
        other = Node.virtual("OtherGroup", "Other")
        tree.add(workers, other)
        for m in orphans:
            await add_machine(other, m)
    return tree


async def _add_templates(tree: ObjectTree, external: ExternalObjects, parent: Node,
                         namespace: str, infra_ref: Any, bootstrap_ref: Any) -> None:
    infra = await _referenced(external, infra_ref, namespace)
    bootstrap = await _referenced(external, bootstrap_ref, namespace)
    if infra is None and bootstrap is None:
        return
    templates = Node.virtual("TemplateGroup", "Templates")
    tree.add(parent, templates)
    if infra is not None:
        tree.add(templates, Node.of(infra, meta_name="MachineInfrastructureTemplate"))
    if bootstrap is not None:
        tree.add(templates, Node.of(bootstrap, meta_name="BootstrapConfigTemplate"))
