"""Cluster API types per group and version, conversion between versions, and the CRD manifests
generated from them."""
