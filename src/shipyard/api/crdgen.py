"""Generate the Cluster API core CRD manifests from the pydantic models.

Why: the schemas the API server validates against and the models controllers use must not drift,
so the CRDs are derived from the models (``model_json_schema``), then made *structural* the way
Kubernetes requires: ``$ref`` inlined, ``$defs``/``title``/``default`` dropped, ``anyOf [X, null]``
collapsed to ``X`` (optional fields are omitted, never null), ``additionalProperties: true`` (the
models' ``extra="allow"``) removed. The Kubernetes extensions come from markers in the models
(:mod:`shipyard.api.meta`), the CEL ``x-kubernetes-validations`` that stand in for upstream's
validating webhooks from :mod:`shipyard.api.core.rules` (a field's rules and its type's rules
both apply). Names, short names, categories, printer columns, the status and scale
subresources and the contract labels are upstream's.

``python -m shipyard.api.crdgen [--conversion Webhook|None] [OUTDIR]`` writes
``cluster.x-k8s.io_<plural>.yaml``; the checked-in copies in ``shipyard/api/crds`` use
``Webhook`` (for real clusters, with upstream's placeholder service). ``None`` is for a server
without the webhook reachable; Shipyard's own server converts in process
(:mod:`shipyard.api.converting`) whatever the strategy says.
"""

from __future__ import annotations

import argparse
import copy
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from shipyard.api.core import v1beta1, v1beta2
from shipyard.api.meta import KubeModel

__all__ = ["CRDS_DIR", "KINDS", "bound_selector", "crd", "crds", "file_name", "render",
           "structural", "write"]

GROUP = "cluster.x-k8s.io"
CRDS_DIR = Path(__file__).parent / "crds"
CONTRACT_LABELS = {"cluster.x-k8s.io/v1beta1": "v1beta1", "cluster.x-k8s.io/v1beta2": "v1beta2"}
WEBHOOK_SERVICE = {"namespace": "capi-system", "name": "capi-webhook-service",
                   "path": "/convert"}
PLACEHOLDER_CA_BUNDLE = "Cg=="  # "\n": kube rejects an empty caBundle; cert-manager fills it.


def _col(name: str, type_: str, path: str, description: str, priority: int = 0
         ) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "type": type_, "jsonPath": path,
                           "description": description}
    if priority:
        out["priority"] = priority
    return out


def _cond(name: str, cond: str, description: str, priority: int = 0) -> dict[str, Any]:
    return _col(name, "string", f'.status.conditions[?(@.type=="{cond}")].status',
                description, priority)


def _age(kind: str) -> dict[str, Any]:
    return _col("Age", "date", ".metadata.creationTimestamp",
                f"Time duration since creation of {kind}")


_CLASS_DOC = "ClusterClass of this Cluster, empty if the Cluster is not using a ClusterClass"
_CLUSTER = _col("Cluster", "string", ".spec.clusterName", "Cluster")
_PAUSED = _cond("Paused", "Paused", "Reconciliation paused", 10)


@dataclass(frozen=True)
class Kind:
    kind: str
    plural: str
    short_names: tuple[str, ...]
    scale: bool
    columns: dict[str, list[dict[str, Any]]]

    @property
    def singular(self) -> str:
        return self.kind.lower()


KINDS: tuple[Kind, ...] = (
    Kind("Cluster", "clusters", ("cl",), False, {
        "v1beta1": [
            _col("ClusterClass", "string", ".spec.topology.class", _CLASS_DOC),
            _col("Phase", "string", ".status.phase",
                 "Cluster status such as Pending/Provisioning/Provisioned/Deleting/Failed"),
            _age("Cluster"),
            _col("Version", "string", ".spec.topology.version",
                 "Kubernetes version associated with this Cluster"),
        ],
        "v1beta2": [
            _col("ClusterClass", "string", ".spec.topology.classRef.name", _CLASS_DOC),
            _cond("Available", "Available", "Cluster pass all availability checks"),
            _col("CP Desired", "integer", ".status.controlPlane.desiredReplicas",
                 "The desired number of control plane machines"),
            _col("CP Current", "integer", ".status.controlPlane.replicas",
                 "The number of control plane machines", 10),
            _col("CP Ready", "integer", ".status.controlPlane.readyReplicas",
                 "The number of control plane machines with Ready condition true", 10),
            _col("CP Available", "integer", ".status.controlPlane.availableReplicas",
                 "The number of control plane machines with Available condition true"),
            _col("CP Up-to-date", "integer", ".status.controlPlane.upToDateReplicas",
                 "The number of control plane machines with UpToDate condition true"),
            _col("W Desired", "integer", ".status.workers.desiredReplicas",
                 "The desired number of worker machines"),
            _col("W Current", "integer", ".status.workers.replicas",
                 "The number of worker machines", 10),
            _col("W Ready", "integer", ".status.workers.readyReplicas",
                 "The number of worker machines with Ready condition true", 10),
            _col("W Available", "integer", ".status.workers.availableReplicas",
                 "The number of worker machines with Available condition true"),
            _col("W Up-to-date", "integer", ".status.workers.upToDateReplicas",
                 "The number of worker machines with UpToDate condition true"),
            _PAUSED,
            _col("Phase", "string", ".status.phase",
                 "Cluster status such as Pending/Provisioning/Provisioned/Deleting/Failed"),
            _age("Cluster"),
            _col("Version", "string", ".spec.topology.version",
                 "Kubernetes version associated with this Cluster"),
        ],
    }),
    Kind("Machine", "machines", ("ma",), False, {
        "v1beta1": [
            _CLUSTER,
            _col("NodeName", "string", ".status.nodeRef.name",
                 "Node name associated with this machine"),
            _col("ProviderID", "string", ".spec.providerID", "Provider ID"),
            _col("Phase", "string", ".status.phase",
                 "Machine status such as Terminating/Pending/Running/Failed etc"),
            _age("Machine"),
            _col("Version", "string", ".spec.version",
                 "Kubernetes version associated with this Machine"),
        ],
        "v1beta2": [
            _CLUSTER,
            _col("Node Name", "string", ".status.nodeRef.name",
                 "Node name associated with this machine"),
            _col("Provider ID", "string", ".spec.providerID", "Provider ID", 10),
            _cond("Ready", "Ready", "Machine pass all readiness checks"),
            _cond("Available", "Available", "Machine is Ready for at least MinReadySeconds"),
            _cond("Up-to-date", "UpToDate", " Machine spec matches the spec of the Machine's owner"
                  " resource, e.g. MachineDeployment"),
            _col("Internal-IP", "string", '.status.addresses[?(@.type=="InternalIP")].address',
                 "Internal IP of the machine", 10),
            _col("External-IP", "string", '.status.addresses[?(@.type=="ExternalIP")].address',
                 "External IP of the machine", 10),
            _col("OS-Image", "string", ".status.nodeInfo.osImage", "OS Image reported by the node",
                 10),
            _PAUSED,
            _col("Phase", "string", ".status.phase",
                 "Machine status such as Terminating/Pending/Running/Failed etc"),
            _age("Machine"),
            _col("Version", "string", ".spec.version",
                 "Kubernetes version associated with this Machine"),
        ],
    }),
    Kind("MachineSet", "machinesets", ("ms",), True, {
        "v1beta1": [
            _CLUSTER,
            _col("Desired", "integer", ".spec.replicas",
                 "Total number of machines desired by this machineset", 10),
            _col("Replicas", "integer", ".status.replicas",
                 "Total number of non-terminated machines targeted by this machineset"),
            _col("Ready", "integer", ".status.readyReplicas",
                 "Total number of ready machines targeted by this machineset."),
            _col("Available", "integer", ".status.availableReplicas",
                 "Total number of available machines (ready for at least minReadySeconds)"),
            _age("MachineSet"),
            _col("Version", "string", ".spec.template.spec.version",
                 "Kubernetes version associated with this MachineSet"),
        ],
        "v1beta2": [
            _CLUSTER,
            _col("Desired", "integer", ".spec.replicas", "The desired number of machines"),
            _col("Current", "integer", ".status.replicas", "The number of machines"),
            _col("Ready", "integer", ".status.readyReplicas",
                 "The number of machines with Ready condition true"),
            _col("Available", "integer", ".status.availableReplicas",
                 "The number of machines with Available condition true"),
            _col("Up-to-date", "integer", ".status.upToDateReplicas",
                 "The number of machines with UpToDate condition true"),
            _PAUSED,
            _age("MachineSet"),
            _col("Version", "string", ".spec.template.spec.version",
                 "Kubernetes version associated with this MachineSet"),
        ],
    }),
    Kind("MachineDeployment", "machinedeployments", ("md",), True, {
        "v1beta1": [
            _CLUSTER,
            _col("Desired", "integer", ".spec.replicas",
                 "Total number of machines desired by this MachineDeployment", 10),
            _col("Replicas", "integer", ".status.replicas",
                 "Total number of non-terminated machines targeted by this MachineDeployment"),
            _col("Ready", "integer", ".status.readyReplicas",
                 "Total number of ready machines targeted by this MachineDeployment"),
            _col("Updated", "integer", ".status.updatedReplicas",
                 "Total number of non-terminated machines targeted by this deployment that have"
                 " the desired template spec"),
            _col("Unavailable", "integer", ".status.unavailableReplicas",
                 "Total number of unavailable machines targeted by this MachineDeployment"),
            _col("Phase", "string", ".status.phase",
                 "MachineDeployment status such as ScalingUp/ScalingDown/Running/Failed/Unknown"),
            _age("MachineDeployment"),
            _col("Version", "string", ".spec.template.spec.version",
                 "Kubernetes version associated with this MachineDeployment"),
        ],
        "v1beta2": [
            _CLUSTER,
            _cond("Available", "Available", "Cluster pass all availability checks"),
            _col("Desired", "integer", ".spec.replicas", "The desired number of machines"),
            _col("Current", "integer", ".status.replicas", "The number of machines"),
            _col("Ready", "integer", ".status.readyReplicas",
                 "The number of machines with Ready condition true"),
            _col("Available", "integer", ".status.availableReplicas",
                 "The number of machines with Available condition true"),
            _col("Up-to-date", "integer", ".status.upToDateReplicas",
                 "The number of machines with UpToDate condition true"),
            _PAUSED,
            _col("Phase", "string", ".status.phase",
                 "MachineDeployment status such as ScalingUp/ScalingDown/Running/Failed/Unknown"),
            _age("MachineDeployment"),
            _col("Version", "string", ".spec.template.spec.version",
                 "Kubernetes version associated with this MachineDeployment"),
        ],
    }),
    Kind("MachineHealthCheck", "machinehealthchecks", ("mhc", "mhcs"), False, {
        "v1beta1": [
            _CLUSTER,
            _col("ExpectedMachines", "integer", ".status.expectedMachines",
                 "Number of machines currently monitored"),
            _col("MaxUnhealthy", "string", ".spec.maxUnhealthy",
                 "Maximum number of unhealthy machines allowed"),
            _col("CurrentHealthy", "integer", ".status.currentHealthy",
                 "Current observed healthy machines"),
            _age("MachineHealthCheck"),
        ],
        "v1beta2": [
            _CLUSTER,
            _col("Replicas", "integer", ".status.expectedMachines",
                 "Number of machines currently monitored"),
            _col("Healthy", "integer", ".status.currentHealthy",
                 "Current observed healthy machines"),
            _PAUSED,
            _age("MachineHealthCheck"),
        ],
    }),
)

_DROP = ("title", "default", "$defs")
_CEL = "x-kubernetes-validations"


def structural(schema: dict[str, Any]) -> dict[str, Any]:
    """A pydantic JSON schema made into a Kubernetes structural schema (see module doc)."""
    defs = schema.get("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(n) for n in node]
        if not isinstance(node, dict):
            return node
        node = dict(node)
        ref = node.pop("$ref", None)
        if ref is not None:
            target = copy.deepcopy(defs[ref.rsplit("/", 1)[-1]])
            node = _merge(target, node)
        any_of = node.get("anyOf")
        if isinstance(any_of, list) and any(b == {"type": "null"} for b in any_of):
            rest = [b for b in any_of if b != {"type": "null"}]
            del node["anyOf"]
            if len(rest) == 1:
                node = _merge(walk(rest[0]), node)
            else:
                node["anyOf"] = rest
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in _DROP:
                continue
            if key == "additionalProperties" and value is True:
                continue
            if key in ("properties",):
                out[key] = {name: walk(prop) for name, prop in value.items()}
            else:
                out[key] = walk(value)
        if "properties" in out and "type" not in out:
            out["type"] = "object"
        return out

    result = walk(schema)
    assert isinstance(result, dict)
    return result


def _merge(inner: dict[str, Any], outer: dict[str, Any]) -> dict[str, Any]:
    """`outer`'s keywords over `inner`'s, except that CEL rules of both apply."""
    out = {**inner, **outer}
    rules = [*inner.get(_CEL, []), *outer.get(_CEL, [])]
    if rules:
        out[_CEL] = rules
    return out


def _schema(model: type[KubeModel]) -> dict[str, Any]:
    return structural(model.model_json_schema(by_alias=True))


# Bounds on the selectors the selector rules walk: without them kube-apiserver
# estimates that rule far over its CEL cost budget and refuses the CRD. Label values longer than
# 63 characters and keys longer than 317 are invalid anyway (upstream's webhook refuses them), and
# so is an operator of more than 12; the counts are Shipyard's own, far above any real selector.
LABEL_VALUE_MAX, LABEL_KEY_MAX, SELECTOR_TERMS_MAX = 63, 317, 64
SELECTOR_KINDS = ("MachineSet", "MachineDeployment", "MachineHealthCheck")


def bound_selector(spec: dict[str, Any]) -> None:
    """Add the bounds above to ``spec.selector`` of a kind in `SELECTOR_KINDS`."""
    selector = spec["properties"]["selector"]["properties"]
    labels = selector["matchLabels"]
    labels["maxProperties"] = SELECTOR_TERMS_MAX
    labels["additionalProperties"]["maxLength"] = LABEL_VALUE_MAX
    terms = selector["matchExpressions"]
    terms["maxItems"] = SELECTOR_TERMS_MAX
    term = terms["items"]["properties"]
    term["key"]["maxLength"] = LABEL_KEY_MAX
    term["operator"]["maxLength"] = LABEL_VALUE_MAX
    term["values"]["maxItems"] = SELECTOR_TERMS_MAX
    term["values"]["items"]["maxLength"] = LABEL_VALUE_MAX


def crd(kind: Kind, *, conversion: str = "Webhook") -> dict[str, Any]:
    versions = []
    for module, storage in ((v1beta1, False), (v1beta2, True)):
        schema = _schema(module.KINDS[kind.kind])
        if kind.kind in SELECTOR_KINDS:
            bound_selector(schema["properties"]["spec"])
        version: dict[str, Any] = {
            "name": module.VERSION,
            "served": True,
            "storage": storage,
            "schema": {"openAPIV3Schema": schema},
            "subresources": {"status": {}},
            "additionalPrinterColumns": kind.columns[module.VERSION],
        }
        if kind.scale:
            version["subresources"]["scale"] = {
                "specReplicasPath": ".spec.replicas",
                "statusReplicasPath": ".status.replicas",
                "labelSelectorPath": ".status.selector",
            }
        if not storage:
            version["deprecated"] = True
        versions.append(version)
    spec: dict[str, Any] = {
        "group": GROUP,
        "names": {"kind": kind.kind, "listKind": f"{kind.kind}List", "plural": kind.plural,
                  "singular": kind.singular, "shortNames": list(kind.short_names),
                  "categories": ["cluster-api"]},
        "scope": "Namespaced",
        "versions": versions,
    }
    if conversion == "Webhook":
        spec["conversion"] = {"strategy": "Webhook", "webhook": {
            "conversionReviewVersions": ["v1", "v1beta1"],
            "clientConfig": {"caBundle": PLACEHOLDER_CA_BUNDLE,
                             "service": dict(WEBHOOK_SERVICE)}}}
    elif conversion == "None":
        spec["conversion"] = {"strategy": "None"}
    else:
        raise ValueError(f"conversion strategy must be Webhook or None, not {conversion!r}")
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{kind.plural}.{GROUP}", "labels": dict(CONTRACT_LABELS)},
        "spec": spec,
    }


def crds(*, conversion: str = "Webhook") -> list[dict[str, Any]]:
    return [crd(kind, conversion=conversion) for kind in KINDS]


def file_name(kind: Kind) -> str:
    return f"{GROUP}_{kind.plural}.yaml"


def render(manifest: dict[str, Any]) -> str:
    return "---\n" + yaml.safe_dump(manifest, sort_keys=False, width=100)


def write(out_dir: Path = CRDS_DIR, *, conversion: str = "Webhook") -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for kind in KINDS:
        path = out_dir / file_name(kind)
        path.write_text(render(crd(kind, conversion=conversion)))
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m shipyard.api.crdgen", description=__doc__)
    parser.add_argument("out_dir", nargs="?", type=Path, default=CRDS_DIR)
    parser.add_argument("--conversion", choices=("Webhook", "None"), default="Webhook")
    args = parser.parse_args(argv)
    for path in write(args.out_dir, conversion=args.conversion):
        print(path)


if __name__ == "__main__":
    main()
