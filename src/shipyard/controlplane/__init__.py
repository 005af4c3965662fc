"""Control-plane providers (controlplane.cluster.x-k8s.io): objects that own a cluster's
control-plane Machines. `kubeadm` is upstream's KubeadmControlPlane (KCP)."""
