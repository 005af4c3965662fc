"""Static pods for process machines: the kubelet runs the Pod manifests it finds in
`/etc/kubernetes/manifests`, as the real kubelet runs kube-apiserver and friends on a kubeadm
control plane.

Why: after `shipyard create cluster` pivots, Cluster API's controllers must run on the new
cluster's own control-plane machines. kubeadm puts control-plane components there as static
pods; a process machine has no container runtime, so its kubelet runs each container of a
static Pod as a process of the machine instead.

Contract (`StaticPods(root).sync()`, called by the kubelet every few seconds; `stop()` on exit):
- Every `*.yaml`/`*.yml`/`*.json` file in `<root>/etc/kubernetes/manifests` holding a v1 Pod is
  run: each container becomes one process, `command + args`. A command starting with
  `shipyard` runs this Shipyard (`python -m shipyard.cli ...`); others are looked up on PATH.
- Paths: a container sees its `volumeMounts`; an argument (or `--flag=value` value) under a
  mountPath is rewritten to the volume's `hostPath.path` inside the machine's root, so
  `/etc/kubernetes/admin.conf` means the machine's own file. `env` values are passed as given,
  or from the downward API (`valueFrom.fieldRef`: `status.hostIP`, `status.podIP`,
  `spec.nodeName`, `metadata.name`, `metadata.namespace`); `$(VAR)` in command and args expands
  to the container's env as the kubelet does (`$$` escapes, unknown names stay as written).
- `restartPolicy` Always (the default for static pods): a container that exits is restarted
  after a back-off doubling from 1 s to 60 s, reset after it ran 60 s. OnFailure restarts only
  on a non-zero exit; Never runs it once.
- A manifest that changes restarts its containers; one that disappears stops them (SIGTERM,
  then SIGKILL after the Pod's `terminationGracePeriodSeconds`, default 30, capped at 30).
- Processes stay in the machine's process group, so stopping the machine stops them too.
  Output goes to `<root>/var/log/pods/<namespace>_<name>/<container>.log`.
- No mirror Pods are created in the API server (Shipyard's servers run no kubelet-facing
  Pod status), and no resource limits, probes or image pulls apply.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

from shipyard.node.machine import rooted

log = logging.getLogger(__name__)

MANIFESTS_DIR: Final = "/etc/kubernetes/manifests"
LOG_DIR: Final = "/var/log/pods"
BACKOFF_START: Final = 1.0
BACKOFF_MAX: Final = 60.0
RESET_AFTER: Final = 60.0
GRACE_MAX: Final = 30.0


class ManifestError(ValueError):
    pass


@dataclass
class Container:
    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    restart: str
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    next_start: float = 0.0
    backoff: float = BACKOFF_START
    done: bool = False


@dataclass
class Pod:
    key: str
    digest: str
    grace: float
    containers: list[Container] = field(default_factory=list)


def load_manifest(path: Path) -> dict[str, Any]:
    text = path.read_text()
    doc = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    if not isinstance(doc, dict) or doc.get("kind") != "Pod" or doc.get("apiVersion") != "v1":
        raise ManifestError(f"{path.name}: not a v1 Pod")
    if not (doc.get("spec") or {}).get("containers"):
        raise ManifestError(f"{path.name}: spec.containers is empty")
    return doc


def _mounts(root: Path, spec: dict[str, Any], container: dict[str, Any]) -> list[tuple[str, str]]:
    """(mountPath, path on this host) for the container's hostPath volume mounts, longest
    mountPath first."""
    volumes = {v.get("name"): v for v in spec.get("volumes") or []}
    out = []
    for mount in container.get("volumeMounts") or []:
        volume = volumes.get(mount.get("name")) or {}
        host = (volume.get("hostPath") or {}).get("path")
        if host and mount.get("mountPath"):
            out.append((str(mount["mountPath"]).rstrip("/") or "/",
                        str(rooted(root, str(host)))))
    return sorted(out, key=lambda m: len(m[0]), reverse=True)


def _rewrite(arg: str, mounts: list[tuple[str, str]]) -> str:
    """`arg` with a path under a mountPath mapped to the host (`--flag=PATH` too)."""
    flag, sep, value = arg.partition("=") if arg.startswith("--") else ("", "", arg)
    if arg.startswith("--") and not sep:
        return arg
    for mount_path, host in mounts:
        if value == mount_path or value.startswith(mount_path + "/"):
            value = host + value[len(mount_path):]
            break
    return f"{flag}={value}" if sep else value


def container_argv(root: Path, spec: dict[str, Any], container: dict[str, Any],
                   env: dict[str, str] | None = None) -> list[str]:
    words = [expand(str(w), env or {}) for w in [*(container.get("command") or []),
                                                 *(container.get("args") or [])]]
    if not words:
        raise ManifestError(f"container {container.get('name')!r} has no command")
    mounts = _mounts(root, spec, container)
    words = [words[0], *(_rewrite(w, mounts) for w in words[1:])]
    if words[0] == "shipyard":
        return [sys.executable, "-m", "shipyard.cli", *words[1:]]
    found = shutil.which(words[0])
    if found is None:
        raise ManifestError(f"container {container.get('name')!r}: {words[0]!r} not found")
    return [found, *words[1:]]


def expand(word: str, env: dict[str, str]) -> str:
    """The kubelet's `$(VAR)` expansion of command and args."""
    out: list[str] = []
    i = 0
    while i < len(word):
        if word.startswith("$$", i):
            out.append("$")
            i += 2
        elif word.startswith("$(", i) and ")" in word[i + 2:]:
            end = word.index(")", i + 2)
            name = word[i + 2:end]
            out.append(env[name] if name in env else word[i:end + 1])
            i = end + 1
        else:
            out.append(word[i])
            i += 1
    return "".join(out)


def container_env(container: dict[str, Any], fields: dict[str, str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for entry in container.get("env") or []:
        name = entry.get("name")
        if not name:
            continue
        ref = ((entry.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath")
        if ref is not None:
            if ref not in fields:
                raise ManifestError(f"env {name}: fieldRef {ref!r} is not supported")
            env[str(name)] = fields[ref]
        else:
            env[str(name)] = expand(str(entry.get("value", "")), env)
    return env


class StaticPods:
    def __init__(self, root: Path, *, node_name: str = "", host_ip: str = "") -> None:
        self.root = Path(root)
        self.node_name = node_name
        self.host_ip = host_ip
        self.pods: dict[str, Pod] = {}
        self.errors: dict[str, str] = {}

    @property
    def manifests(self) -> Path:
        return rooted(self.root, MANIFESTS_DIR)

    def sync(self) -> None:
        """Start, restart and stop containers to match the manifests; call periodically."""
        seen: set[str] = set()
        directory = self.manifests
        files = sorted(directory.iterdir()) if directory.is_dir() else []
        for path in files:
            if path.suffix not in (".yaml", ".yml", ".json") or not path.is_file():
                continue
            seen.add(path.name)
            try:
                raw = path.read_bytes()
                digest = hashlib.sha256(raw).hexdigest()
                current = self.pods.get(path.name)
                if current is not None and current.digest == digest:
                    continue
                pod = self._pod(path, digest)
            except (OSError, ValueError, yaml.YAMLError, ManifestError) as e:
                if self.errors.get(path.name) != str(e):
                    log.error("static pod %s: %s", path.name, e)
                    self.errors[path.name] = str(e)
                continue
            self.errors.pop(path.name, None)
            if current is not None:
                log.info("static pod %s changed; restarting it", path.name)
                self._stop_pod(current)
            self.pods[path.name] = pod
        for name in list(self.pods):
            if name not in seen:
                log.info("static pod %s removed; stopping it", name)
                self._stop_pod(self.pods.pop(name))
        now = time.monotonic()
        for pod in self.pods.values():
            for c in pod.containers:
                self._tend(pod, c, now)

    def _pod(self, path: Path, digest: str) -> Pod:
        doc = load_manifest(path)
        meta, spec = doc.get("metadata") or {}, doc["spec"]
        key = f"{meta.get('namespace') or 'kube-system'}_{meta.get('name') or path.stem}"
        restart = str(spec.get("restartPolicy") or "Always")
        grace = min(float(spec.get("terminationGracePeriodSeconds", GRACE_MAX)), GRACE_MAX)
        pod = Pod(key, digest, grace)
        fields = {"status.hostIP": self.host_ip, "status.podIP": self.host_ip,
                  "spec.nodeName": self.node_name,
                  "metadata.name": str(meta.get("name") or path.stem),
                  "metadata.namespace": str(meta.get("namespace") or "kube-system")}
        for container in spec["containers"]:
            name = str(container.get("name") or "main")
            env = container_env(container, fields)
            log_path = rooted(self.root, f"{LOG_DIR}/{key}/{name}.log")
            pod.containers.append(Container(
                name, container_argv(self.root, spec, container, env), env, log_path, restart))
        return pod

    def _tend(self, pod: Pod, c: Container, now: float) -> None:
        if c.process is not None:
            code = c.process.poll()
            if code is None:
                if now - c.started > RESET_AFTER:
                    c.backoff = BACKOFF_START
                return
            log.warning("static pod %s container %s exited with %s", pod.key, c.name, code)
            c.process = None
            if c.restart == "Never" or (c.restart == "OnFailure" and code == 0):
                c.done = True
                return
            c.next_start = now + c.backoff
            c.backoff = min(c.backoff * 2, BACKOFF_MAX)
        if c.done or now < c.next_start:
            return
        c.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(c.log_path, "ab") as out:
            out.write(f"--- starting {' '.join(c.argv)}\n".encode())
            out.flush()
            c.process = subprocess.Popen(c.argv, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, cwd=self.root,
                                         env={**os.environ, **c.env})
        c.started = now
        log.info("static pod %s container %s started (pid %d)", pod.key, c.name,
                 c.process.pid)

    def _stop_pod(self, pod: Pod) -> None:
        running = [c for c in pod.containers if c.process is not None and
                   c.process.poll() is None]
        for c in running:
            assert c.process is not None
            c.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + pod.grace
        for c in running:
            assert c.process is not None
            try:
                c.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                c.process.kill()
                c.process.wait()
            c.process = None

    def stop(self) -> None:
        for pod in self.pods.values():
            self._stop_pod(pod)
        self.pods.clear()

    def running(self) -> dict[str, list[int]]:
        """Pid of each running container, by pod key (for status and tests)."""
        return {pod.key: [c.process.pid for c in pod.containers
                          if c.process is not None and c.process.poll() is None]
                for pod in self.pods.values()}
