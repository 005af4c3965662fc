"""The core kinds as the controllers address them: always the v1beta2 storage version."""

from __future__ import annotations

from typing import Final

from shipyard.client.interfaces import GVK

API_VERSION: Final = "cluster.x-k8s.io/v1beta2"
CLUSTER: Final = GVK(API_VERSION, "Cluster")
MACHINE: Final = GVK(API_VERSION, "Machine")
MACHINE_SET: Final = GVK(API_VERSION, "MachineSet")
MACHINE_DEPLOYMENT: Final = GVK(API_VERSION, "MachineDeployment")
MACHINE_HEALTH_CHECK: Final = GVK(API_VERSION, "MachineHealthCheck")
SECRET: Final = GVK("v1", "Secret")
NODE: Final = GVK("v1", "Node")
