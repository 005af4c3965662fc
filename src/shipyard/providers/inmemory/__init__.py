"""The in-memory infrastructure provider: machines that "boot" after a delay and join a
simulated workload cluster, so Cluster API runs end to end without real machines."""
