"""Rendering KubeadmConfig into cloud-init user-data: every document is checked against
cloud-init's own schema, and its content against what kubeadm and the node agent read."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from shipyard.bootstrap.kubeadm import certs, cloudinit, kubeadmapi
from tests.bootstrap.kubeadm.cloudconfig_schema import assert_valid_cloud_config, validator

CERTS = {p: certs.KeyPair(f"-----CERT {p}-----\n".encode(), f"-----KEY {p}-----\n".encode())
         for p in certs.CONTROL_PLANE_PURPOSES}

FULL_SPEC: dict[str, Any] = {
    "files": [{"path": "/etc/motd", "content": "hello\nworld\n", "owner": "root:root",
               "permissions": "0644"},
              {"path": "/etc/b64", "content": "aGk=", "encoding": "base64", "append": True}],
    "preKubeadmCommands": ["echo pre", "swapoff -a"],
    "postKubeadmCommands": ["echo post"],
    "bootCommands": ["echo boot"],
    "users": [{"name": "capi", "sudo": "ALL=(ALL) NOPASSWD:ALL", "shell": "/bin/bash",
               "sshAuthorizedKeys": ["ssh-ed25519 AAAA test"], "lockPassword": True,
               "groups": "admin", "homeDir": "/home/capi", "gecos": "CAPI user",
               "primaryGroup": "capi", "passwd": "$6$x$y", "inactive": True}],
    "ntp": {"enabled": True, "servers": ["0.pool.ntp.org", "1.pool.ntp.org"]},
    "mounts": [["LABEL=etcd_disk", "/var/lib/etcddisk"]],
    "diskSetup": {"partitions": [{"device": "/dev/sdb", "layout": True, "overwrite": False,
                                  "tableType": "gpt"}],
                  "filesystems": [{"device": "/dev/sdb1", "filesystem": "ext4",
                                   "label": "etcd_disk", "partition": "auto",
                                   "overwrite": False, "extraOpts": ["-E", "lazy_itable_init=1"]}]},
    "verbosity": 5,
}


def _files(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["path"]: f for f in doc["write_files"]}


def _init(spec: dict[str, Any], version: str = "v1.31.2") -> str:
    cc = kubeadmapi.marshal(kubeadmapi.cluster_configuration(
        spec.get("clusterConfiguration"), kubernetes_version=version, cluster_name="c1",
        control_plane_endpoint="10.0.0.1:6443",
        cluster_network={"pods": {"cidrBlocks": ["192.168.0.0/16"]},
                         "services": {"cidrBlocks": ["10.96.0.0/12"]},
                         "serviceDomain": "cluster.local"}))
    ic = kubeadmapi.marshal(kubeadmapi.init_configuration(
        spec.get("initConfiguration"), kubernetes_version=version))
    return cloudinit.render_init(spec, cluster_configuration=cc, init_configuration=ic,
                                 certificate_files=certs.as_files(CERTS))


def test_the_schema_rejects_what_cloud_init_rejects() -> None:
    """The validator is real: a wrong type and an unknown write_files key are errors."""
    errors = list(validator().iter_errors({"runcmd": "not-a-list",
                                           "write_files": [{"path": "/a", "bogus": 1}]}))
    assert len(errors) == 2


@pytest.mark.parametrize("spec", [{}, FULL_SPEC], ids=["minimal", "full"])
def test_init_renders_valid_cloud_config(spec: dict[str, Any]) -> None:
    user_data = _init(spec)
    assert user_data.startswith("## template: jinja\n#cloud-config\n")
    doc = assert_valid_cloud_config(user_data)
    files = _files(doc)
    for path in ("/etc/kubernetes/pki/ca.crt", "/etc/kubernetes/pki/ca.key",
                 "/etc/kubernetes/pki/etcd/ca.crt", "/etc/kubernetes/pki/etcd/ca.key",
                 "/etc/kubernetes/pki/front-proxy-ca.crt",
                 "/etc/kubernetes/pki/front-proxy-ca.key",
                 "/etc/kubernetes/pki/sa.pub", "/etc/kubernetes/pki/sa.key",
                 cloudinit.INIT_CONFIG_PATH, cloudinit.PLACEHOLDER_PATH):
        assert path in files, path
    assert files["/etc/kubernetes/pki/ca.key"]["permissions"] == "0600"
    assert files["/etc/kubernetes/pki/ca.crt"]["content"] == "-----CERT ca-----\n"
    kubeadm_docs = list(yaml.safe_load_all(files[cloudinit.INIT_CONFIG_PATH]["content"]))
    assert [d["kind"] for d in kubeadm_docs] == ["ClusterConfiguration", "InitConfiguration"]
    assert {d["apiVersion"] for d in kubeadm_docs} == {"kubeadm.k8s.io/v1beta4"}
    cc = kubeadm_docs[0]
    assert cc["clusterName"] == "c1" and cc["kubernetesVersion"] == "v1.31.2"
    assert cc["controlPlaneEndpoint"] == "10.0.0.1:6443"
    assert cc["networking"] == {"podSubnet": "192.168.0.0/16", "serviceSubnet": "10.96.0.0/12",
                                "dnsDomain": "cluster.local"}
    verbosity = " --v 5" if spec else ""
    kubeadm_cmd = (f"kubeadm init --config /run/kubeadm/kubeadm.yaml{verbosity} && "
                   "echo success > /run/cluster-api/bootstrap-success.complete")
    assert doc["runcmd"] == [*spec.get("preKubeadmCommands", []), kubeadm_cmd,
                             *spec.get("postKubeadmCommands", [])]


def test_full_spec_maps_every_section_to_cloud_init_keys() -> None:
    doc = assert_valid_cloud_config(_init(FULL_SPEC))
    files = _files(doc)
    assert files["/etc/motd"] == {"path": "/etc/motd", "owner": "root:root",
                                  "permissions": "0644", "content": "hello\nworld\n"}
    assert files["/etc/b64"]["encoding"] == "base64" and files["/etc/b64"]["append"] is True
    # user files come after the certificates and before kubeadm's configuration
    paths = [f["path"] for f in doc["write_files"]]
    assert paths.index("/etc/kubernetes/pki/sa.key") < paths.index("/etc/motd") \
        < paths.index(cloudinit.INIT_CONFIG_PATH)
    assert doc["bootcmd"] == ["echo boot"]
    assert doc["ntp"] == {"enabled": True, "servers": ["0.pool.ntp.org", "1.pool.ntp.org"]}
    user = doc["users"][0]
    assert user["name"] == "capi" and user["lock_passwd"] is True
    assert user["ssh_authorized_keys"] == ["ssh-ed25519 AAAA test"]
    assert user["homedir"] == "/home/capi" and user["primary_group"] == "capi"
    assert user["inactive"] == "0"  # cloud-init wants days as a string, not `true`
    assert doc["mounts"] == [["LABEL=etcd_disk", "/var/lib/etcddisk"]]
    assert doc["disk_setup"] == {"/dev/sdb": {"table_type": "gpt", "layout": True,
                                              "overwrite": False}}
    assert doc["fs_setup"][0]["extra_opts"] == ["-E", "lazy_itable_init=1"]
    assert doc["fs_setup"][0]["label"] == "etcd_disk"


@pytest.mark.parametrize("control_plane", [False, True], ids=["worker", "control-plane"])
@pytest.mark.parametrize("spec", [{}, FULL_SPEC], ids=["minimal", "full"])
def test_join_renders_valid_cloud_config(spec: dict[str, Any], control_plane: bool) -> None:
    join_spec: dict[str, Any] = {"discovery": {"bootstrapToken": {
        "token": "abcdef.0123456789abcdef", "apiServerEndpoint": "10.0.0.1:6443",
        "caCertHashes": ["sha256:00"]}}}
    if control_plane:
        join_spec["controlPlane"] = {}
    join = kubeadmapi.marshal(kubeadmapi.join_configuration(join_spec,
                                                            kubernetes_version="v1.30.0"))
    user_data = cloudinit.render_join(
        spec, join_configuration=join,
        certificate_files=certs.as_files(CERTS) if control_plane else None)
    doc = assert_valid_cloud_config(user_data)
    files = _files(doc)
    assert ("/etc/kubernetes/pki/ca.key" in files) is control_plane
    (jc,) = yaml.safe_load_all(files[cloudinit.JOIN_CONFIG_PATH]["content"])
    assert jc["apiVersion"] == "kubeadm.k8s.io/v1beta3" and jc["kind"] == "JoinConfiguration"
    assert ("controlPlane" in jc) is control_plane
    assert jc["discovery"]["bootstrapToken"]["token"] == "abcdef.0123456789abcdef"
    verbosity = " --v 5" if spec else ""
    assert (f"kubeadm join --config /run/kubeadm/kubeadm-join-config.yaml{verbosity} && "
            "echo success > /run/cluster-api/bootstrap-success.complete") in doc["runcmd"]


def test_jinja_in_node_name_survives_as_text() -> None:
    spec = {"initConfiguration": {"nodeRegistration": {
        "name": "{{ ds.meta_data.local_hostname }}",
        "kubeletExtraArgs": [{"name": "cloud-provider", "value": "external"}]}}}
    doc = assert_valid_cloud_config(_init(spec))
    content = _files(doc)[cloudinit.INIT_CONFIG_PATH]["content"]
    init = list(yaml.safe_load_all(content))[1]
    assert init["nodeRegistration"]["name"] == "{{ ds.meta_data.local_hostname }}"
    assert init["nodeRegistration"]["kubeletExtraArgs"] == [{"name": "cloud-provider",
                                                              "value": "external"}]


def test_resolve_files_reads_secret_content() -> None:
    files: list[dict[str, Any]] = [
        {"path": "/a", "contentFrom": {"secret": {"name": "s", "key": "k"}},
         "permissions": "0600"},
        {"path": "/b", "content": "x"}]
    resolved = cloudinit.resolve_files(files, lambda name, key: f"{name}/{key}")
    assert resolved == [{"path": "/a", "permissions": "0600", "content": "s/k"},
                        {"path": "/b", "content": "x"}]
    doc = assert_valid_cloud_config(cloudinit.render_join(
        {}, join_configuration="kind: JoinConfiguration\n", files=resolved))
    assert _files(doc)["/a"]["content"] == "s/k"
