"""Cluster API core group ``cluster.x-k8s.io``: models per version, conversion, constants."""
