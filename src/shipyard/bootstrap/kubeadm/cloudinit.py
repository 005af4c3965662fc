"""Render a KubeadmConfig into cloud-init `#cloud-config` user-data, as upstream's
`bootstrap/kubeadm/internal/cloudinit` does.

Why pure: the output is what real machines (cloud-init) and our node agent execute, so it is
rendered from plain inputs only and unit tested against cloud-init's own JSON schema.

Contract (the three shapes upstream renders):
- `render_init(...)` (first control-plane machine): `write_files` = the cluster certificates
  (`certs.as_files`), the user's files, `/run/kubeadm/kubeadm.yaml` holding the
  ClusterConfiguration and InitConfiguration as one multi-document YAML (`---` before each),
  and the `/run/cluster-api/placeholder` file that creates `/run/cluster-api`; `runcmd` =
  preKubeadmCommands, `kubeadm init --config /run/kubeadm/kubeadm.yaml [--v N] && echo
  success > /run/cluster-api/bootstrap-success.complete`, postKubeadmCommands.
- `render_join(...)` (every other machine): the same with the JoinConfiguration in
  `/run/kubeadm/kubeadm-join-config.yaml` and `kubeadm join --config <that file>`; a
  control-plane join also writes the certificates (pass them), a worker join writes none.
- Both add `bootcmd` (bootCommands), `ntp`, `users`, `disk_setup`, `fs_setup` and `mounts`
  from the spec, with cloud-init's key names. One deliberate deviation: a user's
  `inactive: true` is written as `inactive: "0"`, the form cloud-init's schema accepts.
  Files referencing Secrets (`contentFrom`) must be resolved by the caller (`resolve_files`
  takes a lookup function).
- The document starts with upstream's header `## template: jinja` + `#cloud-config`, so
  cloud-init expands Jinja such as `{{ ds.meta_data.local_hostname }}` before parsing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import yaml

HEADER: Final = "## template: jinja\n#cloud-config\n"
INIT_CONFIG_PATH: Final = "/run/kubeadm/kubeadm.yaml"
JOIN_CONFIG_PATH: Final = "/run/kubeadm/kubeadm-join-config.yaml"
PLACEHOLDER_PATH: Final = "/run/cluster-api/placeholder"
PLACEHOLDER_CONTENT: Final = (
    "This placeholder file is used to create the /run/cluster-api sub directory in a way that "
    "is compatible with both Linux and Windows (mkdir -p /run/cluster-api does not work with "
    "Windows)")
SENTINEL_PATH: Final = "/run/cluster-api/bootstrap-success.complete"
SENTINEL_COMMAND: Final = f"echo success > {SENTINEL_PATH}"

SecretLookup = Callable[[str, str], str]
"""(secret name, key) → the decoded value; raises if absent."""


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def _dump(doc: dict[str, Any]) -> str:
    return str(yaml.dump(doc, Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                         width=1 << 16))


def multi_document(*docs: str) -> str:
    """`---` + each document, as upstream joins ClusterConfiguration and InitConfiguration."""
    return "".join(f"---\n{d if d.endswith(chr(10)) else d + chr(10)}" for d in docs)


def write_file(file: dict[str, Any]) -> dict[str, Any]:
    """A KubeadmConfig `files[]` entry (content already resolved) → cloud-init write_files."""
    out: dict[str, Any] = {"path": file["path"]}
    for src, dst in (("encoding", "encoding"), ("owner", "owner"),
                     ("permissions", "permissions")):
        if file.get(src):
            out[dst] = str(file[src])
    if file.get("append"):
        out["append"] = True
    out["content"] = str(file.get("content") or "")
    return out


def resolve_files(files: list[dict[str, Any]], lookup: SecretLookup) -> list[dict[str, Any]]:
    """Replace `contentFrom.secret{name,key}` by the Secret's value (upstream resolveFiles)."""
    out = []
    for file in files:
        source = (file.get("contentFrom") or {}).get("secret")
        if source:
            file = {k: v for k, v in file.items() if k != "contentFrom"}
            file["content"] = lookup(str(source["name"]), str(source["key"]))
        out.append(file)
    return out


def _users(users: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for user in users:
        u: dict[str, Any] = {"name": user["name"]}
        for src, dst in (("gecos", "gecos"), ("groups", "groups"), ("homeDir", "homedir"),
                         ("passwd", "passwd"), ("primaryGroup", "primary_group"),
                         ("shell", "shell"), ("sudo", "sudo")):
            if user.get(src):
                u[dst] = str(user[src])
        if user.get("inactive"):
            # cloud-init's schema types `inactive` as a string of days (useradd --inactive);
            # upstream writes `true`, which the schema rejects. "0": disabled at once.
            u["inactive"] = "0"
        if user.get("lockPassword") is not None:
            u["lock_passwd"] = bool(user["lockPassword"])
        if user.get("sshAuthorizedKeys"):
            u["ssh_authorized_keys"] = [str(k) for k in user["sshAuthorizedKeys"]]
        out.append(u)
    return out


def _disk_setup(disk: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for p in disk.get("partitions") or []:
        entry: dict[str, Any] = {"table_type": p.get("tableType") or "mbr",
                                 "layout": bool(p.get("layout"))}
        if p.get("overwrite") is not None:
            entry["overwrite"] = bool(p["overwrite"])
        out[str(p["device"])] = entry
    return out


def _fs_setup(disk: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for fs in disk.get("filesystems") or []:
        entry: dict[str, Any] = {}
        if fs.get("label"):
            entry["label"] = str(fs["label"])
        entry["filesystem"] = str(fs["filesystem"])
        entry["device"] = str(fs["device"])
        if fs.get("partition"):
            entry["partition"] = str(fs["partition"])
        if fs.get("overwrite") is not None:
            entry["overwrite"] = bool(fs["overwrite"])
        if fs.get("replaceFS"):
            entry["replace_fs"] = str(fs["replaceFS"])
        if fs.get("extraOpts"):
            entry["extra_opts"] = [str(o) for o in fs["extraOpts"]]
        out.append(entry)
    return out


def _verbosity(spec: dict[str, Any]) -> str:
    v = spec.get("verbosity")
    return f" --v {int(v)}" if v is not None else ""


def _render(spec: dict[str, Any], files: list[dict[str, Any]], command: str) -> str:
    doc: dict[str, Any] = {"write_files": [write_file(f) for f in files]}
    if spec.get("bootCommands"):
        doc["bootcmd"] = [str(x) for x in spec["bootCommands"]]
    doc["runcmd"] = [*[str(x) for x in spec.get("preKubeadmCommands") or []],
                     f"{command} && {SENTINEL_COMMAND}",
                     *[str(x) for x in spec.get("postKubeadmCommands") or []]]
    ntp = spec.get("ntp") or {}
    if ntp:
        doc["ntp"] = {k: ntp[k] for k in ("enabled", "servers") if k in ntp}
    if spec.get("users"):
        doc["users"] = _users(spec["users"])
    disk = spec.get("diskSetup") or {}
    if disk.get("partitions"):
        doc["disk_setup"] = _disk_setup(disk)
    if disk.get("filesystems"):
        doc["fs_setup"] = _fs_setup(disk)
    if spec.get("mounts"):
        doc["mounts"] = [[str(x) for x in m] for m in spec["mounts"]]
    return HEADER + _dump(doc)


def _placeholder() -> dict[str, Any]:
    return {"path": PLACEHOLDER_PATH, "owner": "root:root", "permissions": "0640",
            "content": PLACEHOLDER_CONTENT}


def render_init(spec: dict[str, Any], *, cluster_configuration: str, init_configuration: str,
                certificate_files: list[dict[str, Any]],
                files: list[dict[str, Any]] | None = None) -> str:
    """User-data for the machine that runs `kubeadm init`. `cluster_configuration` and
    `init_configuration` are kubeadm YAML documents; `files` are the spec's files with
    content resolved (default: `spec["files"]` as they are)."""
    kubeadm_yaml = {"path": INIT_CONFIG_PATH, "owner": "root:root", "permissions": "0640",
                    "content": multi_document(cluster_configuration, init_configuration)}
    all_files = [*certificate_files, *(spec.get("files") or [] if files is None else files),
                 kubeadm_yaml, _placeholder()]
    return _render(spec, all_files, f"kubeadm init --config {INIT_CONFIG_PATH}{_verbosity(spec)}")


def render_join(spec: dict[str, Any], *, join_configuration: str,
                certificate_files: list[dict[str, Any]] | None = None,
                files: list[dict[str, Any]] | None = None) -> str:
    """User-data for `kubeadm join` (a control-plane join passes `certificate_files`)."""
    join_yaml = {"path": JOIN_CONFIG_PATH, "owner": "root:root", "permissions": "0640",
                 "content": multi_document(join_configuration)}
    all_files = [*(certificate_files or []),
                 *(spec.get("files") or [] if files is None else files), join_yaml,
                 _placeholder()]
    return _render(spec, all_files, f"kubeadm join --config {JOIN_CONFIG_PATH}{_verbosity(spec)}")
