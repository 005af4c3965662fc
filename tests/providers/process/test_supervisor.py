"""Machine addresses: unique per data directory, and never one whose API server or etcd port
something else on the host (another provider's machine) already listens on."""

from __future__ import annotations

import random
import socket
from pathlib import Path

from shipyard.providers.process.supervisor import Supervisor


def test_addresses_are_unique_reused_and_freed(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path, f"127.{random.randint(100, 250)}")
    first = supervisor.address("ns", "m0")
    second = supervisor.address("ns", "m1")
    assert first != second
    assert supervisor.address("ns", "m0") == first  # stable
    supervisor.remove("ns", "m0")
    assert not supervisor.machine_dir("ns", "m0").exists()
    assert supervisor.address("ns", "m2") == first  # freed with the directory


def _free(address: str) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((address, 6443))
        except OSError:
            return False
    return True


def test_an_address_in_use_on_the_host_is_skipped(tmp_path: Path) -> None:
    # A prefix whose first two addresses are free: machines of other tests may hold some.
    prefix = next(p for p in (f"127.{random.randint(100, 250)}" for _ in range(100))
                  if _free(f"{p}.0.1") and _free(f"{p}.0.2"))
    with socket.socket() as foreign:
        foreign.bind((f"{prefix}.0.1", 6443))
        foreign.listen()
        address = Supervisor(tmp_path, prefix).address("ns", "m0")
    assert address == f"{prefix}.0.2"
