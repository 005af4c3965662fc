"""The Docker infrastructure provider, compatible with upstream Cluster API's CAPD: each machine
a container created through the Docker Engine API (or podman's compatible service) on a private
network per cluster, behind a load-balancer container for the control plane. Manifests written
for CAPD (DockerCluster, DockerMachine and their templates, v1beta1 or v1beta2) work unchanged."""
