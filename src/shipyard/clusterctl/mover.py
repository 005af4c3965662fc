"""Moving Cluster API objects between management planes (`shipyard move`, upstream clusterctl's
`mover.go` re-thought): the pivot that makes a cluster manage itself, and backup/restore.

Why so careful: a cluster must be managed by exactly one management plane at a time. Two planes
reconciling the same Machines would each create and delete infrastructure; none would lose it.
So the source is paused before anything is copied, the target copy stays paused until the
source copy is gone, and a failure either undoes what was done or says exactly what is left.

Contract of `move(source, target, namespace)`:
1. Discover the object graph (`objectgraph`) in `namespace` (None: all namespaces).
2. Preconditions, all reported together: every Cluster has its infrastructure provisioned
   (`status.initialization.infrastructureProvisioned`), the `ControlPlaneInitialized`
   condition True, and, with a controlPlaneRef, `status.initialization.controlPlaneInitialized`;
   every Machine has a `status.nodeRef` ("cannot start the move operation while ..."). The
   target serves every kind to move, and has no Cluster of the same name that is live there
   (not paused: a previous interrupted move leaves its Clusters paused, so re-running works).
3. Pause: `spec.paused: true` on each Cluster, the `cluster.x-k8s.io/paused` annotation on
   each ClusterClass; then wait (up to `wait_for_unblock`) until no object carries
   `clusterctl.cluster.x-k8s.io/block-move`.
4. Create group by group, owners first: each object re-read from the source, without uid,
   resourceVersion, creationTimestamp, managedFields, generateName; ownerReferences rebuilt with
   the owners' new UIDs; status restored through the status subresource. An object that exists
   already (a re-run) is updated instead. Namespaces are created when missing.
5. Delete from the source, last group first: annotate `clusterctl.cluster.x-k8s.io/
   delete-for-move`, remove finalizers, delete. Cluster-scoped objects (and what hangs below
   them) are copied but neither updated nor deleted.
6. Unpause the ClusterClasses and Clusters on the target.

A failure before step 5 deletes what this run created on the target and unpauses the source; a
failure in step 5 leaves every object on the target (paused) and names those still on the
source: re-running `move` finishes the job. `MoveError` carries the message.

`dry_run` prints the plan and changes nothing. `to_directory` writes each object (status
included) as `Kind_namespace_name.yaml` with the source paused meanwhile; `from_directory`
recreates them on a target the same way as step 4 (existing objects are kept) and unpauses.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from shipyard.api.core import constants as c
from shipyard.apimachinery.errors import AlreadyExists, Conflict, NotFound
from shipyard.client import NoKindMatchError, Object, ReaderWriter
from shipyard.clusterctl.objectgraph import (
    Node,
    ObjectGraph,
    discover_types,
)

Log = Callable[[str], None]

STRIPPED_METADATA = ("uid", "resourceVersion", "creationTimestamp", "managedFields",
                     "generation", "selfLink", "deletionTimestamp",
                     "deletionGracePeriodSeconds", "ownerReferences")


class MoveError(RuntimeError):
    """The move did not happen (or not completely); the message says what state is left."""


def _silent(_: str) -> None:
    pass


class Mover:
    def __init__(self, source: ReaderWriter | None, *, log: Log = _silent,
                 wait_for_unblock: float = 300.0, poll_interval: float = 1.0) -> None:
        self.source = source
        self.log = log
        self.wait_for_unblock = wait_for_unblock
        self.poll_interval = poll_interval

    # ------------------------------------------------------------------ entry points

    async def graph(self, namespace: str | None, *, check: bool = True) -> ObjectGraph:
        """The object graph of the source; `check` applies the provisioning preconditions."""
        assert self.source is not None
        graph = ObjectGraph(await discover_types(self.source))
        await graph.discover(self.source, namespace)
        if check:
            await self._check_provisioned(graph)
        return graph

    async def move(self, target: ReaderWriter | None, namespace: str | None, *,
                   dry_run: bool = False) -> ObjectGraph:
        """Move every Cluster API object of `namespace` to `target` (see module doc)."""
        assert self.source is not None
        if dry_run:
            self.log("This is a dry-run move, will not perform any real action")
        graph = await self.graph(namespace, check=not dry_run)
        sequence = graph.move_sequence()
        self._print_plan(graph, sequence)
        if dry_run:
            return graph
        assert target is not None
        await self._check_target(graph, target)
        paused = await self._pause(self.source, graph, True)
        created: list[Node] = []
        try:
            await self._wait_unblocked(graph)
            self.log("Creating objects in the target cluster")
            for group in sequence:
                for node in group:
                    if await self._create(node, target, self._read_source):
                        created.append(node)
        except Exception as e:
            raise MoveError(await self._roll_back(e, target, created, paused, graph)) from e
        self.log("Deleting objects from the source cluster")
        left: list[Node] = []
        failure: BaseException | None = None
        for group in reversed(sequence):
            for node in group:
                if failure is not None:
                    left.append(node)
                    continue
                try:
                    await self._delete_source(node)
                except Exception as e:
                    failure = e
                    left.append(node)
        if failure is not None:
            names = ", ".join(n.ref() for n in left if not (n.is_global or n.global_hierarchy))
            raise MoveError(
                f"every object was created on the target (its Clusters stay paused), but "
                f"deleting from the source failed: {failure}. Still on the source: {names}. "
                f"Re-run the move to finish it.") from failure
        try:
            await self._unpause_target(graph, target)
        except Exception as e:
            raise MoveError(
                f"every object was moved, but unpausing on the target failed: {e}. Set "
                f"spec.paused=false there on {', '.join(n.ref() for n in graph.clusters())}"
                ) from e
        self.log(f"Moved {sum(len(g) for g in sequence)} objects")
        return graph

    async def to_directory(self, namespace: str | None, directory: Path) -> ObjectGraph:
        """Write every object to move as `Kind_namespace_name.yaml` in `directory`."""
        assert self.source is not None
        graph = await self.graph(namespace)
        directory.mkdir(parents=True, exist_ok=True)
        paused = await self._pause(self.source, graph, True)
        try:
            for group in graph.move_sequence():
                for node in group:
                    obj = await self._read_source(node)
                    (directory / node.filename()).write_text(yaml.safe_dump(obj))
                    self.log(f"Saved {node.ref()}")
        finally:
            await self._pause(self.source, graph, False, only=paused)
        return graph

    async def from_directory(self, target: ReaderWriter, directory: Path) -> ObjectGraph:
        """Recreate on `target` the objects `to_directory` wrote, then unpause them."""
        if not directory.is_dir():
            raise MoveError(f"directory {directory} does not exist")
        graph = ObjectGraph(await discover_types(target))
        for path in sorted(directory.iterdir()):
            if path.suffix not in (".yaml", ".yml", ".json"):
                continue
            try:
                for doc in yaml.safe_load_all(path.read_text()):
                    if doc:
                        graph.add(doc, keep=True)
            except (yaml.YAMLError, ValueError, KeyError, TypeError, AttributeError) as e:
                raise MoveError(f"{path} is not a Kubernetes object written by a move: "
                                f"{e}") from e
        graph.finish()
        # Existing objects are kept as they are, so a live cluster there is not overwritten.
        await self._check_target(graph, target, refuse_live=False)
        created: list[Node] = []
        try:
            for group in graph.move_sequence():
                for node in group:
                    if await self._create(node, target, _restored, keep_existing=True):
                        created.append(node)
        except Exception as e:
            raise MoveError(await self._roll_back(e, target, created, [], graph)) from e
        await self._unpause_target(graph, target)
        return graph

    # ------------------------------------------------------------------ preconditions

    async def _check_provisioned(self, graph: ObjectGraph) -> None:
        assert self.source is not None
        errors: list[str] = []
        for node in sorted(graph.clusters(), key=lambda n: (n.namespace, n.name)):
            cluster = await self.source.get(node.api_version, node.kind, node.name,
                                            node.namespace)
            what = f'"{node.api_version}, Kind={node.kind}" {node.namespace}/{node.name}'
            status = cluster.get("status") or {}
            init = status.get("initialization") or {}
            if not init.get("infrastructureProvisioned"):
                errors.append(f"cannot start the move operation while {what} is still "
                              f"provisioning the infrastructure")
            elif not _condition_true(cluster, c.CLUSTER_CONTROL_PLANE_INITIALIZED_CONDITION):
                errors.append(f"cannot start the move operation while the control plane for "
                              f"{what} is not yet initialized")
            elif ((cluster.get("spec") or {}).get("controlPlaneRef")
                  and not init.get("controlPlaneInitialized")):
                errors.append(f"cannot start the move operation while the control plane for "
                              f"{what} is not yet ready")
        for node in sorted(graph.machines(), key=lambda n: (n.namespace, n.name)):
            machine = await self.source.get(node.api_version, node.kind, node.name,
                                            node.namespace)
            if not (machine.get("status") or {}).get("nodeRef"):
                errors.append(f'cannot start the move operation while "{node.api_version}, '
                              f'Kind={node.kind}" {node.namespace}/{node.name} is still '
                              f"provisioning the node")
        if errors:
            raise MoveError("; ".join(errors))

    async def _check_target(self, graph: ObjectGraph, target: ReaderWriter, *,
                            refuse_live: bool = True) -> None:
        missing = set()
        for node in graph.move_nodes():
            try:
                await target.mapper.mapping(node.api_version, node.kind)
            except NoKindMatchError:
                missing.add(f"{node.kind}.{node.api_version}")
        if missing:
            raise MoveError(
                "the target management cluster does not serve "
                f"{', '.join(sorted(missing))}: install the same providers on it first "
                "(nothing was changed)")
        for node in graph.clusters() if refuse_live else []:
            try:
                existing = await target.get(node.api_version, node.kind, node.name,
                                            node.namespace)
            except NotFound:
                continue
            if not (existing.get("spec") or {}).get("paused"):
                raise MoveError(
                    f"Cluster {node.namespace}/{node.name} already exists on the target "
                    "management cluster and is not paused there: refusing to overwrite a "
                    "cluster it manages (nothing was changed)")

    async def _wait_unblocked(self, graph: ObjectGraph) -> None:
        assert self.source is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_for_unblock
        for node in graph.move_nodes():
            if not node.blocking_move:
                continue
            self.log(f"Move blocked by {c.CLUSTERCTL_BLOCK_MOVE_ANNOTATION} annotation on "
                     f"{node.ref()}, waiting for it to be removed")
            while True:
                obj = await self.source.get(node.api_version, node.kind, node.name,
                                            node.namespace)
                annotations = (obj.get("metadata") or {}).get("annotations") or {}
                if c.CLUSTERCTL_BLOCK_MOVE_ANNOTATION not in annotations:
                    break
                if loop.time() >= deadline:
                    raise MoveError(
                        f"{node.ref()} still has the {c.CLUSTERCTL_BLOCK_MOVE_ANNOTATION} "
                        f"annotation after {self.wait_for_unblock:g}s")
                await asyncio.sleep(self.poll_interval)

    # ------------------------------------------------------------------ pausing

    async def _pause(self, client: ReaderWriter, graph: ObjectGraph, pause: bool, *,
                     only: list[Node] | None = None) -> list[Node]:
        """Pause (or unpause) the graph's Clusters and ClusterClasses on `client`; returns
        those whose state changed (pausing), so a rollback unpauses only those."""
        changed: list[Node] = []
        for node in [*graph.clusters(), *graph.cluster_classes()]:
            if only is not None and node not in only:
                continue
            obj = await client.get(node.api_version, node.kind, node.name, node.namespace)
            if node.kind == "Cluster":
                was = bool((obj.get("spec") or {}).get("paused"))
                body: dict[str, Any] = {"spec": {"paused": True if pause else None}}
            else:
                was = c.PAUSED_ANNOTATION in ((obj.get("metadata") or {}).get("annotations")
                                              or {})
                body = {"metadata": {"annotations": {c.PAUSED_ANNOTATION: "" if pause
                                                     else None}}}
            if was != pause:
                await client.patch(node.api_version, node.kind, node.name, body,
                                   node.namespace)
                changed.append(node)
        return changed

    async def _unpause_target(self, graph: ObjectGraph, target: ReaderWriter) -> None:
        for node in [*graph.cluster_classes(), *graph.clusters()]:
            body: dict[str, Any] = (
                {"spec": {"paused": None}} if node.kind == "Cluster"
                else {"metadata": {"annotations": {c.PAUSED_ANNOTATION: None}}})
            await target.patch(node.api_version, node.kind, node.name, body, node.namespace)
            self.log(f"Resumed {node.ref()} on the target")

    # ------------------------------------------------------------------ creating

    async def _read_source(self, node: Node) -> Object:
        assert self.source is not None
        return await self.source.get(node.api_version, node.kind, node.name, node.namespace)

    async def _create(self, node: Node, target: ReaderWriter,
                      read: Callable[[Node], Any], *, keep_existing: bool = False) -> bool:
        """Create `node` on `target`; True if this call created it (False: it existed)."""
        obj = copy.deepcopy(await read(node))
        mapping = await target.mapper.mapping(node.api_version, node.kind)
        # With a status subresource the create ignores status: it is written afterwards.
        status = obj.pop("status", None) if "status" in mapping.subresources else None
        meta = obj.setdefault("metadata", {})
        for key in STRIPPED_METADATA:
            meta.pop(key, None)
        if meta.get("name") and meta.get("generateName"):
            meta.pop("generateName")
        refs = [self._owner_ref(owner, attrs) for owner, attrs in node.owners.items()]
        if refs:
            meta["ownerReferences"] = refs
        if node.namespace and not node.is_global:
            await _ensure_namespace(target, node.namespace)
        created = True
        try:
            result = await target.create(obj)
        except AlreadyExists:
            created = False
            existing = await target.get(node.api_version, node.kind, node.name, node.namespace)
            if keep_existing or node.is_global or node.global_hierarchy:
                node.new_uid = str(existing["metadata"]["uid"])
                return False
            result = await _update(target, node, obj, existing, status=False)
        node.new_uid = str(result["metadata"]["uid"])
        if status:
            result["status"] = status
            await _update(target, node, result, result, status=True)
        self.log(f"{'Created' if created else 'Updated'} {node.ref()}")
        return created

    def _owner_ref(self, owner: Node, attrs: dict[str, bool]) -> dict[str, Any]:
        if not owner.new_uid:
            raise MoveError(f"owner {owner.ref()} has no UID on the target")
        return {"apiVersion": owner.api_version, "kind": owner.kind, "name": owner.name,
                "uid": owner.new_uid, **attrs}

    async def _roll_back(self, error: BaseException, target: ReaderWriter,
                         created: list[Node], paused: list[Node], graph: ObjectGraph) -> str:
        """Undo a failed creation phase; the message for the user."""
        left: list[str] = []
        for node in reversed(created):
            try:
                await _force_delete(target, node, annotate=False)
            except Exception:
                left.append(node.ref())
        source_note = ""
        if self.source is not None and paused:
            try:
                await self._pause(self.source, graph, False, only=paused)
                source_note = " The source is unchanged and unpaused."
            except Exception as e:
                source_note = (f" Unpausing the source failed ({e}): set spec.paused=false "
                               f"on {', '.join(n.ref() for n in paused)}.")
        elif self.source is not None:
            source_note = " The source is unchanged."
        target_note = (" Nothing was left on the target." if not left else
                       f" Left on the target (delete them): {', '.join(left)}.")
        return f"move failed: {error}.{target_note}{source_note}"

    # ------------------------------------------------------------------ deleting

    async def _delete_source(self, node: Node) -> None:
        if node.is_global or node.global_hierarchy:
            return
        assert self.source is not None
        await _force_delete(self.source, node, annotate=True)
        self.log(f"Deleted {node.ref()} from the source")

    # ------------------------------------------------------------------ printing

    def _print_plan(self, graph: ObjectGraph, sequence: list[list[Node]]) -> None:
        self.log(f"Moving Cluster API objects Clusters={len(graph.clusters())}")
        self.log(f"Moving Cluster API objects ClusterClasses={len(graph.cluster_classes())}")
        for index, group in enumerate(sequence, 1):
            self.log(f"Group {index}:")
            for node in group:
                self.log(f"  {node.ref()} ({node.api_version})")
        for node in graph.unmovable():
            self.log(f"Not moved (an owner is not moved): {node.ref()}")


CONFLICT_RETRIES = 10


async def _update(client: ReaderWriter, node: Node, obj: Object, current: Object, *,
                  status: bool) -> Object:
    """PUT `obj` (or its status) over `current`; on a Conflict (the target's own controllers
    wrote in between, e.g. their Paused condition) re-read and try again."""
    for _ in range(CONFLICT_RETRIES):
        obj["metadata"]["uid"] = current["metadata"]["uid"]
        obj["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        try:
            if status:
                return await client.update_status(obj)
            return await client.update(obj)
        except Conflict:
            current = await client.get(node.api_version, node.kind, node.name, node.namespace)
            if status:
                obj = {**current, "status": obj.get("status")}
    raise MoveError(f"{node.ref()} kept changing on the target; giving up")


async def _ensure_namespace(client: ReaderWriter, namespace: str) -> None:
    try:
        await client.get("v1", "Namespace", namespace)
    except NotFound:
        try:
            await client.create({"apiVersion": "v1", "kind": "Namespace",
                                 "metadata": {"name": namespace}})
        except AlreadyExists:
            pass


async def _force_delete(client: ReaderWriter, node: Node, *, annotate: bool) -> None:
    """Delete `node` at once: finalizers removed first (nothing must clean up after it)."""
    try:
        obj = await client.get(node.api_version, node.kind, node.name, node.namespace)
        if annotate:
            await client.patch(node.api_version, node.kind, node.name, {"metadata": {
                "annotations": {c.CLUSTERCTL_DELETE_FOR_MOVE_ANNOTATION: ""}}},
                node.namespace)
        if (obj.get("metadata") or {}).get("finalizers"):
            await client.patch(node.api_version, node.kind, node.name,
                               {"metadata": {"finalizers": None}}, node.namespace)
        await client.delete(node.api_version, node.kind, node.name, node.namespace)
    except NotFound:
        pass


async def _restored(node: Node) -> Object:
    assert node.restore is not None
    return node.restore


def _condition_true(obj: Object, type_: str) -> bool:
    return any(cond.get("type") == type_ and cond.get("status") == "True"
               for cond in (obj.get("status") or {}).get("conditions") or [])


__all__ = ["Mover", "MoveError"]
