"""Upstream Cluster API's admission checks, written as CRD ``x-kubernetes-validations`` rules.

Why: upstream rejects much bad input in its validating webhooks (``internal/webhooks/*.go``),
which a server without those webhooks would accept. Every check a CEL rule can express lives
here instead, in the CRD itself, with upstream's field path and message, so Shipyard's own server
and a real kube-apiserver give the same verdict on the same manifest without a webhook.

Contract: each constant is one ``x-kubernetes-validations`` entry (or list of them), attached to
the model or field it judges with :func:`validations`; the rules only use CEL that both
kube-apiserver (1.30+) and Shipyard's evaluator (cel-expr-python) provide: no ``cel.bind``, no
Kubernetes ``quantity``/``ip``/``cidr``/``format`` libraries.

Not expressible here (see the module's callers' docs): checks that need ``metadata.namespace``,
``metadata.labels``, ``ownerReferences`` or other objects (ClusterClass), and CIDR parsing.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CLUSTER_REFS_NOT_REMOVED",
    "CLUSTER_NAME_IMMUTABLE",
    "INT_OR_PERCENT",
    "MACHINE_NAMING_RANDOM",
    "MD_SELECTOR_MATCHES_TEMPLATE",
    "MHC_NODE_STARTUP_TIMEOUT_DURATION",
    "MHC_NODE_STARTUP_TIMEOUT_SECONDS",
    "MHC_SELECTOR",
    "MS_SELECTOR_MATCHES_TEMPLATE",
    "SELECTOR_VALID",
    "SEMVER",
    "TOPOLOGY_SEMVER",
    "UNHEALTHY_MACHINE_CONDITION_TYPE",
    "rule",
    "validations",
]


def rule(expression: str, message: str = "", *, message_expression: str = "",
         field_path: str = "", reason: str = "") -> dict[str, Any]:
    """One ``x-kubernetes-validations`` entry, keys in the order kube-apiserver lists them."""
    out: dict[str, Any] = {}
    if field_path:
        out["fieldPath"] = field_path
    if message:
        out["message"] = message
    if message_expression:
        out["messageExpression"] = message_expression
    if reason:
        out["reason"] = reason
    out["rule"] = expression
    return out


def validations(*rules: dict[str, Any]) -> dict[str, Any]:
    """``json_schema_extra`` for a model or field carrying these rules."""
    return {"x-kubernetes-validations": list(rules)}


# util/version.KubeSemver, written without backslashes so it reads the same in CEL and Go.
_KUBE_SEMVER = r"^v?(0|[1-9][0-9]*)[.](0|[1-9][0-9]*)[.](0|[1-9][0-9]*)([-0-9a-zA-Z_.+]*)?$"

SEMVER = rule(f"self.matches('{_KUBE_SEMVER}')", "must be a valid semantic version")
"""Machine (and MachineSet/MachineDeployment template) ``spec.version``."""

TOPOLOGY_SEMVER = rule(f"self.matches('{_KUBE_SEMVER}')",
                       "version must be a valid semantic version")
"""Cluster ``spec.topology.version``."""

# intstr.GetScaledValueFromIntOrPercent: an int, or a string that is Atoi-able before a "%".
_NOT_INT_OR_PERCENT = "must be either an int or a percentage: invalid value for IntOrString: "
INT_OR_PERCENT = rule(
    "type(self) == int || self.matches('^[-+]?[0-9]+%$')",
    message_expression=(
        f"self.endsWith('%') ? '{_NOT_INT_OR_PERCENT}invalid value \"' + self + "
        "'\": strconv.Atoi: parsing \"' + self.substring(0, size(self) - 1) + "
        "'\": invalid syntax' : "
        f"'{_NOT_INT_OR_PERCENT}invalid type: string is not a percentage'"),
)
"""maxSurge, maxUnavailable, maxInFlight, MachineHealthCheck maxUnhealthy and
unhealthyLessThanOrEqualTo; the message is the webhook's, error text included."""

CLUSTER_NAME_IMMUTABLE = rule("self.clusterName == oldSelf.clusterName", "field is immutable",
                              field_path=".clusterName", reason="FieldValueForbidden")
"""On a Machine, MachineSet, MachineDeployment or MachineHealthCheck spec."""

_LABELS = "self.template.metadata.labels"
_HAS_LABELS = f"has(self.template) && has(self.template.metadata) && has({_LABELS})"


def _has_label(key: str) -> str:
    return f"({_HAS_LABELS} && {key} in {_LABELS})"


_SELECTOR_MATCHES = (
    "(!has(self.selector.matchLabels) || self.selector.matchLabels.all(k, "
    f"{_has_label('k')} && {_LABELS}[k] == self.selector.matchLabels[k])) && "
    "(!has(self.selector.matchExpressions) || self.selector.matchExpressions.all(r, "
    f"r.operator == 'In' ? {_has_label('r.key')} && has(r.values) && {_LABELS}[r.key] in r.values"
    f" : r.operator == 'NotIn' ? !{_has_label('r.key')} || !has(r.values) || "
    f"!({_LABELS}[r.key] in r.values)"
    f" : r.operator == 'Exists' ? {_has_label('r.key')}"
    f" : r.operator == 'DoesNotExist' ? !{_has_label('r.key')} : true))"
)

_OPERATORS = "['In', 'NotIn', 'Exists', 'DoesNotExist']"
_TERMS = "self.selector.matchExpressions"

SELECTOR_VALID = [
    rule(f"!has({_TERMS}) || {_TERMS}.all(r, r.operator in {_OPERATORS})",
         # Upstream quotes the operator first; kube cannot afford printing it (the estimated
         # cost of a filter() result is unbounded).
         "matchExpressions[].operator is not a valid label selector operator (In, NotIn, "
         "Exists, DoesNotExist)", field_path=".selector"),
    rule(f"!has({_TERMS}) || {_TERMS}.all(r, !(r.operator in ['In', 'NotIn']) || "
         "(has(r.values) && size(r.values) > 0))",
         "for 'in', 'notin' operators, values set can't be empty", field_path=".selector"),
    rule(f"!has({_TERMS}) || {_TERMS}.all(r, !(r.operator in ['Exists', 'DoesNotExist']) || "
         "!has(r.values) || size(r.values) == 0)",
         "values set must be empty for exists and does not exist", field_path=".selector"),
]
"""metav1.LabelSelectorAsSelector's errors, which the MachineSet, MachineDeployment and
MachineHealthCheck webhooks report as Invalid at spec.selector (label key syntax is not checked)."""

MD_SELECTOR_MATCHES_TEMPLATE = rule(_SELECTOR_MATCHES, "must match spec.selector",
                                    field_path=".template.metadata.labels",
                                    reason="FieldValueForbidden")
"""MachineDeployment webhook: Forbidden at spec.template.metadata.labels (upstream quotes the
selector after the message; CEL cannot print it in a stable order)."""

MS_SELECTOR_MATCHES_TEMPLATE = rule(_SELECTOR_MATCHES, "must match spec.selector",
                                    field_path=".template.metadata.labels")
"""MachineSet webhook: Invalid at spec.template.metadata.labels."""

MACHINE_NAMING_RANDOM = rule("self.contains('{{ .random }}')",
                             "invalid template, {{ .random }} is missing")
"""machineNaming.template (v1beta1: machineNamingStrategy.template)."""

MHC_SELECTOR = [
    rule("(has(self.selector.matchLabels) && size(self.selector.matchLabels) > 0) || "
         "(has(self.selector.matchExpressions) && size(self.selector.matchExpressions) > 0)",
         "selector must not be empty", field_path=".selector", reason="FieldValueRequired"),
    rule("!has(self.selector.matchLabels) || "
         "!('cluster.x-k8s.io/cluster-name' in self.selector.matchLabels) || "
         "self.selector.matchLabels['cluster.x-k8s.io/cluster-name'] == self.clusterName",
         "cannot specify a cluster selector other than the one specified by ClusterName",
         field_path=".selector"),
]
"""MachineHealthCheck webhook, on its spec."""

MHC_NODE_STARTUP_TIMEOUT_SECONDS = rule("self == 0 || self >= 30", "must be at least 30s")
MHC_NODE_STARTUP_TIMEOUT_DURATION = rule(
    "duration(self) == duration('0s') || duration(self) >= duration('30s')",
    "must be at least 30s")
"""0 disables the check; anything else must leave a node 30 s to start."""

UNHEALTHY_MACHINE_CONDITION_TYPE = rule(
    "!(self in ['Ready','Available','HealthCheckSucceeded','OwnerRemediated',"
    "'ExternallyRemediated'])",
    "type must not be one of: Ready, Available, HealthCheckSucceeded, OwnerRemediated, "
    "ExternallyRemediated")
"""Upstream's own CRD rule (v1beta2 UnhealthyMachineCondition.type)."""


def _not_removed(field: str, message: str = "cannot be removed") -> dict[str, Any]:
    return rule(f"!has(oldSelf.{field}) || has(self.{field})", message,
                field_path=f".{field}", reason="FieldValueForbidden")


CLUSTER_REFS_NOT_REMOVED = [
    rule("has(self.controlPlaneRef) || has(self.infrastructureRef) || has(self.topology)",
         "one of spec.controlPlaneRef, spec.infrastructureRef or spec.topology must be set",
         reason="FieldValueForbidden"),
    _not_removed("infrastructureRef"),
    _not_removed("controlPlaneRef"),
    _not_removed("topology", "cannot be removed from an existing Cluster"),
]
"""Cluster webhook, on its spec."""
