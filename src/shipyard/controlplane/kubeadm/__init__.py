"""The kubeadm control-plane provider (upstream's KCP): `KubeadmControlPlane` creates, scales,
rolls out and remediates a cluster's control-plane Machines, one at a time, keeping the stacked
etcd cluster's membership in step.

Modules: `types` (kinds, CRDs, admission rules), `etcd` (the `EtcdMembership` seam and its
implementation on etcd's JSON gateway), `machines` (pure selection logic: up-to-date checks,
failure domains, which machine goes next), `state` (what one reconcile observed), `status`
(status fields and conditions from it), `controller` (the reconciler, `setup(mgr)`).
"""
