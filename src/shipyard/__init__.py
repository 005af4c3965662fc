"""Shipyard: Kubernetes Cluster API in Python, with its own Kubernetes-compatible API server."""

__version__ = "0.1.0"
