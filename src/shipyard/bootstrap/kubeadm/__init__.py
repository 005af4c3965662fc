"""The kubeadm bootstrap provider (upstream's CABPK): `KubeadmConfig` → cloud-init user-data
that runs `kubeadm init` on the first control-plane machine and `kubeadm join` on the others,
plus the cluster certificates, bootstrap tokens and init lock that make that work.

Modules: `types` (kinds, CRDs), `kubeadmapi` (kubeadm's own configuration documents),
`cloudinit` (the `#cloud-config` renderer), `certs` (cluster CAs as Secrets), `kubeconfig`
(the `<cluster>-kubeconfig` Secret), `tokens` (bootstrap tokens in the workload cluster),
`locking` (the init lock), `controller` (the KubeadmConfig reconciler, `setup(mgr)`).
"""
