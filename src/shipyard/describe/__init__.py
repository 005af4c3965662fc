"""``shipyard describe cluster``'s model: clusterctl's object tree of a Cluster, its discovery
through the client, and its table. No I/O but the client's reads; never the server's code."""

from shipyard.describe.discovery import discover
from shipyard.describe.render import human_duration, render
from shipyard.describe.tree import Node, ObjectTree, TreeOptions

__all__ = ["Node", "ObjectTree", "TreeOptions", "discover", "human_duration", "render"]
