"""Cluster API's core controllers: Cluster, Machine, MachineSet, MachineDeployment and
MachineHealthCheck, reconciling through `shipyard.runtime` and `shipyard.client` only."""
