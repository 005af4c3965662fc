"""A minimal bootstrap provider for in-memory machines: `InMemoryBootstrapConfig`, which only
writes a data Secret, so Machines can use `spec.bootstrap.configRef` end to end before the
kubeadm provider exists."""
