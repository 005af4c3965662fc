"""CRD manifests for provider kinds written in Python (the in-memory infrastructure and
bootstrap providers): one builder, so every provider's CRDs carry the same contract labels,
names and subresources that Cluster API reads off a provider's CRD."""

from __future__ import annotations

from typing import Any


def provider_crd(
    *,
    group: str,
    version: str,
    kind: str,
    provider: str,
    spec: dict[str, Any],
    status: dict[str, Any] | None,
    categories: tuple[str, ...] = ("cluster-api",),
) -> dict[str, Any]:
    """A namespaced, single-version CRD labelled for the v1beta1 contract
    (``cluster.x-k8s.io/v1beta1: <version>``) and ``cluster.x-k8s.io/provider: <provider>``;
    a status subresource when ``status`` is given."""
    plural = kind.lower() + "s"
    properties: dict[str, Any] = {"apiVersion": {"type": "string"},
                                  "kind": {"type": "string"},
                                  "metadata": {"type": "object"}, "spec": spec}
    served: dict[str, Any] = {"name": version, "served": True, "storage": True}
    if status is not None:
        properties["status"] = status
        served["subresources"] = {"status": {}}
    served["schema"] = {"openAPIV3Schema": {"type": "object", "properties": properties}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}", "labels": {
            "cluster.x-k8s.io/v1beta1": version, "cluster.x-k8s.io/provider": provider}},
        "spec": {"group": group, "scope": "Namespaced",
                 "names": {"kind": kind, "listKind": f"{kind}List", "plural": plural,
                           "singular": kind.lower(), "categories": list(categories)},
                 "versions": [served]},
    }
