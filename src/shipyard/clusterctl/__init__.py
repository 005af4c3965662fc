"""clusterctl's client-side algorithms, re-thought for Shipyard: today `move` (the pivot of
Cluster API objects from one management plane to another, and backup/restore to a directory).

Everything here talks to API servers through `shipyard.client` only, so it moves clusters
between any two Kubernetes APIs (Shipyard's embedded one or a real cluster).
"""

from shipyard.clusterctl.mover import MoveError, Mover
from shipyard.clusterctl.objectgraph import Node, ObjectGraph, TypeInfo, discover_types

__all__ = ["MoveError", "Mover", "Node", "ObjectGraph", "TypeInfo", "discover_types"]
