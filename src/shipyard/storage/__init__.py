"""The revisioned object store behind the API server.

One global revision counter orders every write, as etcd's does; an object's resourceVersion is
the revision of its last write. `interface.Store` is the seam: the API server depends only on it.
"""

from shipyard.storage.interface import (
    CompactedError,
    ConflictError,
    Entry,
    FutureRevisionError,
    KeyExistsError,
    KeyNotFoundError,
    StorageError,
    Store,
    Watch,
    WatchEvent,
    WatchOverflowError,
)
from shipyard.storage.sqlite import SQLiteStore

__all__ = [
    "CompactedError",
    "ConflictError",
    "Entry",
    "FutureRevisionError",
    "KeyExistsError",
    "KeyNotFoundError",
    "SQLiteStore",
    "StorageError",
    "Store",
    "Watch",
    "WatchEvent",
    "WatchOverflowError",
]
