"""The seed format: Cluster API's first API (`cluster.k8s.io/v1alpha1`) turned into today's.

Why: the first Cluster API kept a machine's infrastructure inline (`spec.providerSpec`, or a
`MachineClass` named by `providerSpec.valueFrom.machineClass`) and had no bootstrap or
control-plane objects: control-plane machines were Machines with `versions.controlPlane`. Today's
API splits each of those into references. `convert(docs, infrastructure)` does that split and
reports every field it could not carry, so nothing is dropped silently.

Mapping (v1alpha1 → v1beta2):
- Cluster → Cluster (`clusterNetwork` kept; `infrastructureRef` to an infrastructure cluster of
  the target provider built from `providerSpec`; `controlPlaneRef` to a KubeadmControlPlane when
  there are control-plane Machines).
- Control-plane Machines (`versions.controlPlane` set) → one KubeadmControlPlane (replicas = their
  count, version from `versions.controlPlane`) and one machine template from the first one's
  provider spec.
- Other Machines → Machine + KubeadmConfig + infrastructure Machine.
- MachineSet / MachineDeployment → the same kinds with KubeadmConfigTemplate and an
  infrastructure machine template; `strategy` → `rollout.strategy`, `minReadySeconds` →
  `template.spec.minReadySeconds`, `deletePolicy` → `deletion.order`, `paused` kept.
- MachineClass: read through `providerSpec.valueFrom.machineClass`, not emitted.
- Labels `cluster.k8s.io/*` become `cluster.x-k8s.io/*`; taints become Machine taints
  (propagation Always).
- Provider specs: AWS's (`AWSMachineProviderSpec`, `AWSClusterProviderSpec`) map field by field to
  CAPA's AWSMachineTemplate/AWSCluster; any other provider spec becomes an empty spec of the
  chosen target provider, and each of its fields is reported.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

LEGACY_GROUP = "cluster.k8s.io"
V1BETA2 = "cluster.x-k8s.io/v1beta2"
BOOTSTRAP = "bootstrap.cluster.x-k8s.io/v1beta2"
CONTROL_PLANE = "controlplane.cluster.x-k8s.io/v1beta2"
INFRA_GROUP = "infrastructure.cluster.x-k8s.io"
CLUSTER_NAME_LABEL = "cluster.x-k8s.io/cluster-name"


@dataclass(frozen=True)
class Target:
    version: str
    cluster: str
    machine: str
    template: str


TARGETS = {
    "process": Target("v1beta2", "ProcessCluster", "ProcessMachine", "ProcessMachineTemplate"),
    "docker": Target("v1beta1", "DockerCluster", "DockerMachine", "DockerMachineTemplate"),
    "in-memory": Target("v1beta1", "InMemoryCluster", "InMemoryMachine",
                        "InMemoryMachineTemplate"),
    "aws": Target("v1beta2", "AWSCluster", "AWSMachine", "AWSMachineTemplate"),
}
AWS_SPEC_KINDS = {"AWSMachineProviderSpec", "AWSClusterProviderSpec"}
AWS_MACHINE_FIELDS = {
    "instanceType": "instanceType", "iamInstanceProfile": "iamInstanceProfile",
    "keyName": "sshKeyName", "ami": "ami", "publicIP": "publicIP", "subnet": "subnet",
    "additionalSecurityGroups": "additionalSecurityGroups", "additionalTags": "additionalTags",
    "rootDeviceSize": "rootVolume.size",
}
AWS_CLUSTER_FIELDS = {"region": "region", "sshKeyName": "sshKeyName",
                      "networkSpec": "network", "additionalTags": "additionalTags"}


class ConversionError(ValueError):
    """The input cannot be converted at all (not Cluster API v1alpha1 objects)."""


@dataclass
class Result:
    objects: list[dict[str, Any]] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)
    """Human-readable notes: `<Kind>/<name>: <field> (why)`."""


def _flatten(docs: list[Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for doc in docs:
        if not doc:
            continue
        if not isinstance(doc, dict):
            raise ConversionError(f"expected Kubernetes objects, got {type(doc).__name__}")
        if str(doc.get("kind", "")).endswith("List") and "items" in doc:
            out.extend(_flatten(list(doc["items"] or [])))
        else:
            out.append(doc)
    return out


def _labels(meta: dict[str, Any]) -> dict[str, str]:
    return {k.replace("cluster.k8s.io/", "cluster.x-k8s.io/"): v
            for k, v in (meta.get("labels") or {}).items()}


def _meta(src: dict[str, Any], name: str | None = None,
          cluster: str | None = None) -> dict[str, Any]:
    meta = src.get("metadata") or {}
    out: dict[str, Any] = {"name": name or meta.get("name")}
    if meta.get("namespace"):
        out["namespace"] = meta["namespace"]
    labels = _labels(meta)
    if cluster:
        labels[CLUSTER_NAME_LABEL] = cluster
    if labels:
        out["labels"] = labels
    if meta.get("annotations"):
        out["annotations"] = dict(meta["annotations"])
    return out


def _set_path(target: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for part in parents:
        target = target.setdefault(part, {})
    target[last] = value


class _Converter:
    def __init__(self, objects: list[dict[str, Any]], infrastructure: str) -> None:
        if infrastructure not in TARGETS:
            raise ConversionError(f"unknown infrastructure {infrastructure!r}; one of "
                                  f"{', '.join(sorted(TARGETS))}")
        self.default_target = infrastructure
        self.objects = objects
        self.result = Result()
        self.classes = {(o.get("metadata", {}).get("namespace"), o["metadata"]["name"]): o
                        for o in objects if o.get("kind") == "MachineClass"}

    def note(self, obj: dict[str, Any], what: str) -> None:
        self.result.unmapped.append(f"{obj.get('kind')}/{obj['metadata']['name']}: {what}")

    # ------------------------------------------------------------------ provider specs

    def provider_spec(self, owner: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
        ps = spec.get("providerSpec") or {}
        if "valueFrom" in ps:
            ref = (ps["valueFrom"] or {}).get("machineClass") or {}
            ns = ref.get("namespace") or owner["metadata"].get("namespace")
            cls = self.classes.get((ns, ref.get("name"))) or self.classes.get(
                (None, ref.get("name")))
            if cls is None:
                self.note(owner, f"providerSpec.valueFrom.machineClass {ref.get('name')!r} "
                                 "(MachineClass not in the input)")
                return {}
            return dict(cls.get("providerSpec") or {})
        return dict(ps.get("value") or {})

    def target_for(self, value: dict[str, Any]) -> str:
        return "aws" if value.get("kind") in AWS_SPEC_KINDS else self.default_target

    def infra_spec(self, owner: dict[str, Any], value: dict[str, Any],
                   fields: dict[str, str], where: str) -> tuple[str, dict[str, Any]]:
        target = self.target_for(value)
        t = TARGETS[target]
        kind = t.cluster if fields is AWS_CLUSTER_FIELDS else t.machine
        spec: dict[str, Any] = {}
        for key, val in value.items():
            if key in ("apiVersion", "kind"):
                continue
            if target == "aws" and key in fields:
                _set_path(spec, fields[key], copy.deepcopy(val))
            else:
                self.note(owner, f"{where}.{key} (no field in {kind}"
                                 f"{'' if target == 'aws' else ' of provider ' + target})")
        return target, spec

    def infra_template(self, owner: dict[str, Any], spec: dict[str, Any], name: str,
                       cluster: str) -> dict[str, Any]:
        value = self.provider_spec(owner, spec)
        target, infra = self.infra_spec(owner, value, AWS_MACHINE_FIELDS, "providerSpec.value")
        t = TARGETS[target]
        self.result.objects.append({
            "apiVersion": f"{INFRA_GROUP}/{t.version}", "kind": t.template,
            "metadata": _meta(owner, name, cluster), "spec": {"template": {"spec": infra}}})
        return {"apiGroup": INFRA_GROUP, "kind": t.template, "name": name}

    # ------------------------------------------------------------------ kinds

    def cluster_name_of(self, obj: dict[str, Any]) -> str:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        name = labels.get("cluster.k8s.io/cluster-name") or labels.get(CLUSTER_NAME_LABEL)
        if name:
            return str(name)
        clusters = [o for o in self.objects if o.get("kind") == "Cluster"]
        if len(clusters) == 1:
            return str(clusters[0]["metadata"]["name"])
        raise ConversionError(f"{obj.get('kind')}/{obj['metadata']['name']} has no "
                              "cluster.k8s.io/cluster-name label and the input has "
                              f"{len(clusters)} Clusters")

    def cluster(self, obj: dict[str, Any], control_plane: dict[str, Any] | None) -> None:
        spec = obj.get("spec") or {}
        name = obj["metadata"]["name"]
        value = self.provider_spec(obj, spec)
        target, infra = self.infra_spec(obj, value, AWS_CLUSTER_FIELDS, "providerSpec.value")
        t = TARGETS[target]
        new_spec: dict[str, Any] = {"infrastructureRef": {
            "apiGroup": INFRA_GROUP, "kind": t.cluster, "name": name}}
        if spec.get("clusterNetwork"):
            new_spec["clusterNetwork"] = copy.deepcopy(spec["clusterNetwork"])
        if control_plane is not None:
            new_spec["controlPlaneRef"] = {"apiGroup": "controlplane.cluster.x-k8s.io",
                                           "kind": "KubeadmControlPlane",
                                           "name": control_plane["metadata"]["name"]}
        for key in spec:
            if key not in ("clusterNetwork", "providerSpec"):
                self.note(obj, f"spec.{key} (no v1beta2 field)")
        self.result.objects.append({"apiVersion": V1BETA2, "kind": "Cluster",
                                    "metadata": _meta(obj), "spec": new_spec})
        self.result.objects.append({"apiVersion": f"{INFRA_GROUP}/{t.version}",
                                    "kind": t.cluster, "metadata": _meta(obj), "spec": infra})

    def control_plane(self, machines: list[dict[str, Any]], cluster: str) -> dict[str, Any]:
        first = machines[0]
        spec = first.get("spec") or {}
        versions = spec.get("versions") or {}
        name = f"{cluster}-control-plane"
        ref = self.infra_template(first, spec, name, cluster)
        kcp: dict[str, Any] = {
            "apiVersion": CONTROL_PLANE, "kind": "KubeadmControlPlane",
            "metadata": {**_meta(first, name, cluster)},
            "spec": {"replicas": len(machines),
                     "version": versions.get("controlPlane") or versions.get("kubelet"),
                     "machineTemplate": {"spec": {"infrastructureRef": ref}},
                     "kubeadmConfigSpec": {}}}
        kcp["metadata"].get("labels", {}).pop("set", None)
        for m in machines:
            self.machine_leftovers(m, "control-plane Machine")
        return kcp

    def machine_leftovers(self, m: dict[str, Any], what: str) -> None:
        spec = m.get("spec") or {}
        if spec.get("configSource"):
            self.note(m, "spec.configSource (kubelet dynamic config has no successor)")
        if what == "control-plane Machine" and spec.get("taints"):
            self.note(m, "spec.taints (a control plane's taints go in its kubeadmConfigSpec)")

    def machine_spec(self, owner: dict[str, Any], spec: dict[str, Any], cluster: str,
                     bootstrap_kind: str, bootstrap_name: str,
                     infra_ref: dict[str, Any]) -> dict[str, Any]:
        versions = spec.get("versions") or {}
        out: dict[str, Any] = {
            "clusterName": cluster,
            "bootstrap": {"configRef": {"apiGroup": "bootstrap.cluster.x-k8s.io",
                                        "kind": bootstrap_kind, "name": bootstrap_name}},
            "infrastructureRef": infra_ref}
        if versions.get("kubelet"):
            out["version"] = versions["kubelet"]
        if spec.get("providerID"):
            out["providerID"] = spec["providerID"]
        if spec.get("taints"):
            out["taints"] = [{**{k: v for k, v in t.items() if k != "timeAdded"},
                              "propagation": "Always"} for t in spec["taints"]]
        return out

    def machine(self, m: dict[str, Any], cluster: str) -> None:
        spec = m.get("spec") or {}
        name = m["metadata"]["name"]
        value = self.provider_spec(m, spec)
        target, infra = self.infra_spec(m, value, AWS_MACHINE_FIELDS, "providerSpec.value")
        t = TARGETS[target]
        ref = {"apiGroup": INFRA_GROUP, "kind": t.machine, "name": name}
        self.machine_leftovers(m, "Machine")
        self.result.objects += [
            {"apiVersion": V1BETA2, "kind": "Machine", "metadata": _meta(m, cluster=cluster),
             "spec": self.machine_spec(m, spec, cluster, "KubeadmConfig", name, ref)},
            {"apiVersion": BOOTSTRAP, "kind": "KubeadmConfig",
             "metadata": _meta(m, cluster=cluster), "spec": {"joinConfiguration": {}}},
            {"apiVersion": f"{INFRA_GROUP}/{t.version}", "kind": t.machine,
             "metadata": _meta(m, cluster=cluster), "spec": infra},
        ]

    def machine_group(self, obj: dict[str, Any], cluster: str) -> None:
        kind = obj["kind"]
        spec = obj.get("spec") or {}
        name = obj["metadata"]["name"]
        template = spec.get("template") or {}
        tspec = template.get("spec") or {}
        ref = self.infra_template(obj, tspec, name, cluster)
        self.result.objects.append({
            "apiVersion": BOOTSTRAP, "kind": "KubeadmConfigTemplate",
            "metadata": _meta(obj, name, cluster),
            "spec": {"template": {"spec": {"joinConfiguration": {}}}}})
        machine_spec = self.machine_spec(obj, tspec, cluster, "KubeadmConfigTemplate", name,
                                         ref)
        if spec.get("minReadySeconds") is not None:
            machine_spec["minReadySeconds"] = spec["minReadySeconds"]
        template_meta = template.get("metadata") or {}
        labels = {**_labels(template_meta), CLUSTER_NAME_LABEL: cluster}
        selector = copy.deepcopy(spec.get("selector") or {})
        if selector.get("matchLabels"):
            selector["matchLabels"] = _labels({"labels": selector["matchLabels"]})
        new: dict[str, Any] = {"clusterName": cluster, "selector": selector,
                               "template": {"metadata": {"labels": labels},
                                            "spec": machine_spec}}
        if spec.get("replicas") is not None:
            new["replicas"] = spec["replicas"]
        if kind == "MachineSet" and spec.get("deletePolicy"):
            new["deletion"] = {"order": spec["deletePolicy"]}
        if kind == "MachineDeployment":
            strategy = spec.get("strategy") or {}
            if strategy:
                new["rollout"] = {"strategy": copy.deepcopy(strategy)}
            if spec.get("paused"):
                new["paused"] = True
            for dropped in ("revisionHistoryLimit", "progressDeadlineSeconds"):
                if dropped in spec:
                    self.note(obj, f"spec.{dropped} (removed in v1beta2)")
        if tspec.get("configSource"):
            self.note(obj, "spec.template.spec.configSource (no successor)")
        self.result.objects.append({"apiVersion": V1BETA2, "kind": kind,
                                    "metadata": _meta(obj, cluster=cluster), "spec": new})

    def run(self) -> Result:
        known = {"Cluster", "Machine", "MachineSet", "MachineDeployment", "MachineClass"}
        legacy = [o for o in self.objects
                  if str(o.get("apiVersion", "")).startswith(LEGACY_GROUP + "/")]
        if not legacy:
            raise ConversionError("no cluster.k8s.io/v1alpha1 objects in the input")
        for o in self.objects:
            if o not in legacy or o.get("kind") not in known:
                self.result.unmapped.append(
                    f"{o.get('kind')}/{(o.get('metadata') or {}).get('name')}: "
                    f"{o.get('apiVersion')} {o.get('kind')} is not a Cluster API v1alpha1 kind "
                    "this converter knows; left out")
        machines = [o for o in legacy if o.get("kind") == "Machine"]
        control_planes: dict[str, list[dict[str, Any]]] = {}
        for m in machines:
            if ((m.get("spec") or {}).get("versions") or {}).get("controlPlane"):
                control_planes.setdefault(self.cluster_name_of(m), []).append(m)
        kcps = {c: self.control_plane(ms, c) for c, ms in control_planes.items()}
        for c in (o for o in legacy if o.get("kind") == "Cluster"):
            self.cluster(c, kcps.get(c["metadata"]["name"]))
        self.result.objects += list(kcps.values())
        for m in machines:
            if not ((m.get("spec") or {}).get("versions") or {}).get("controlPlane"):
                self.machine(m, self.cluster_name_of(m))
        for o in legacy:
            if o.get("kind") in ("MachineSet", "MachineDeployment"):
                self.machine_group(o, self.cluster_name_of(o))
        return self.result


def convert(docs: list[Any], infrastructure: str = "process") -> Result:
    """Convert the v1alpha1 objects in `docs` (YAML documents, Lists flattened)."""
    return _Converter(_flatten(docs), infrastructure).run()


__all__ = ["TARGETS", "ConversionError", "Result", "convert"]
