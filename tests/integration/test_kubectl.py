"""Client conformance: the real kubectl binaries (1.27 to 1.33) against the real server.

Every test runs once per kubectl version, in its own namespace with its own names, and asserts
what kubectl printed (its exact success lines and table columns) *and* what the server holds
afterwards (read back over HTTP with the test client, never through kubectl). CRs go through
JSON merge patches; ConfigMap, Namespace and Secret go through strategic merge patches, because
kubectl compiles those kinds in.
"""

from __future__ import annotations

import base64
import os
import queue
import re
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml

from tests.integration.testdata import (
    CRD_NAME,
    GROUP,
    MD_API,
    MD_RESOURCE,
    install_crd,
    machinedeployment,
    manifest,
    to_yaml,
    wait_until_gone,
)
from tests.kube import KUBECTL_VERSIONS, Client, Server, kubectl_binary

pytestmark = pytest.mark.kubectl

HOLD = "conformance.shipyard.test/hold"


# ---------------------------------------------------------------------------------- helpers


def parse_table(text: str) -> list[dict[str, str]]:
    """Rows of kubectl's human-readable table, keyed by header; cells cut at header offsets."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return []
    head = lines[0]
    starts = [i for i, ch in enumerate(head) if ch != " " and (i == 0 or head[i - 1] == " ")]
    # Header names with one inner space (kubectl has a few) would split; ours have none.
    ends = starts[1:] + [None]
    names = [head[s:e].strip() for s, e in zip(starts, ends, strict=True)]
    return [dict(zip(names, (line[s:e].strip() for s, e in zip(starts, ends, strict=True)),
                     strict=True))
            for line in lines[1:]]


def header(text: str) -> list[str]:
    return text.splitlines()[0].split() if text.strip() else []


class LineReader:
    """Lines of a long-running kubectl (get -w, wait) read on threads, so a test waits for the
    next line with a bound instead of blocking forever on a silent server.

    With ``-v=6`` kubectl logs each response as it arrives; `watching` is set once the log
    shows the response to its watch request, so a test can change the object knowing kubectl
    already watches (rather than racing kubectl's start-up).
    """

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stderr: list[str] = []
        self.watching = threading.Event()
        threading.Thread(target=self._pump_stdout, daemon=True).start()
        threading.Thread(target=self._pump_stderr, daemon=True).start()

    def _pump_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def _pump_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            if "watch=true" in line and "200" in line:
                self.watching.set()
            if "] " not in line[:40]:  # keep kubectl's own messages, not its klog lines
                self.stderr.append(line)

    def wait_watching(self, timeout: float = 30) -> None:
        assert self.watching.wait(timeout), f"kubectl never watched: {self.stderr}"

    def next(self, timeout: float = 30) -> str:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("kubectl printed nothing more") from None
        if line is None:
            raise AssertionError(f"kubectl ended ({self.proc.wait(5)}): {self.stderr}")
        return line


@dataclass
class Kubectl:
    """One kubectl version bound to the test's namespace."""

    server: Server
    version: str
    namespace: str
    procs: list[subprocess.Popen[str]] = field(default_factory=list)

    def run(self, *args: str, stdin: str | None = None,
            check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.server.kubectl("-n", self.namespace, *args, version=self.version,
                                   stdin=stdin, check=check)

    def out(self, *args: str, stdin: str | None = None) -> str:
        return self.run(*args, stdin=stdin).stdout

    def fail(self, *args: str, stdin: str | None = None) -> str:
        proc = self.run(*args, stdin=stdin, check=False)
        assert proc.returncode != 0, proc.stdout
        return proc.stderr

    def apply(self, *docs: dict[str, Any]) -> str:
        return self.out("apply", "-f", "-", stdin=to_yaml(*docs)).strip()

    def start(self, *args: str, verbose: bool = False) -> LineReader:
        """Start kubectl in the background; ``verbose`` enables `LineReader.wait_watching`."""
        env = {**os.environ, "HOME": str(self.server.home),
               "KUBECONFIG": str(self.server.kubeconfig)}
        proc = subprocess.Popen(
            [str(kubectl_binary(self.version)), "-n", self.namespace, *args,
             *(["-v=6"] if verbose else [])],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )
        self.procs.append(proc)
        return LineReader(proc)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="session")
def crd(server: Server) -> dict[str, Any]:
    return install_crd(server.client())


@pytest.fixture(params=KUBECTL_VERSIONS, ids=lambda v: f"kubectl-{v}")
def kubectl(
    request: pytest.FixtureRequest, server: Server, namespace: str, crd: dict[str, Any]
) -> Iterator[Kubectl]:
    k = Kubectl(server, request.param, namespace)
    try:
        yield k
    finally:
        k.stop()


def md_path(ns: str, name: str = "") -> str:
    return f"{MD_API}/namespaces/{ns}/machinedeployments" + (f"/{name}" if name else "")


def cm_path(ns: str, name: str = "") -> str:
    return f"/api/v1/namespaces/{ns}/configmaps" + (f"/{name}" if name else "")


def get(api: Client, path: str) -> dict[str, Any]:
    resp = api.get(path)
    assert resp.status == 200, resp.body
    obj: dict[str, Any] = resp.json()
    return obj


def set_status(api: Client, ns: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
    resp = api.patch(md_path(ns, name) + "/status", {"status": status})
    assert resp.status == 200, resp.body
    obj: dict[str, Any] = resp.json()
    return obj


def create_md(api: Client, ns: str, name: str, **spec: Any) -> dict[str, Any]:
    resp = api.post(md_path(ns), machinedeployment(name, **spec))
    assert resp.status == 201, resp.body
    obj: dict[str, Any] = resp.json()
    return obj


# ------------------------------------------------------------------------------------ apply


def test_apply_configmap_created_unchanged_configured(kubectl: Kubectl, api: Client) -> None:
    name = unique("settings")
    doc = manifest("configmap.yaml", name)
    assert kubectl.apply(doc) == f"configmap/{name} created"
    assert kubectl.apply(doc) == f"configmap/{name} unchanged"

    live = get(api, cm_path(kubectl.namespace, name))
    assert live["data"] == doc["data"]
    last = live["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
    assert yaml.safe_load(last)["data"] == doc["data"]

    # A key dropped from the manifest is deleted (3-way SMP); a changed one is replaced.
    doc["data"] = {"cluster-name": "beta", "service-cidr": "10.96.0.0/12"}
    assert kubectl.apply(doc) == f"configmap/{name} configured"
    live = get(api, cm_path(kubectl.namespace, name))
    assert live["data"] == {"cluster-name": "beta", "service-cidr": "10.96.0.0/12"}
    assert live["metadata"]["labels"] == {"app.kubernetes.io/part-of": "shipyard"}


def test_apply_custom_resource_created_unchanged_configured(
    kubectl: Kubectl, api: Client
) -> None:
    name = unique("md")
    doc = machinedeployment(name, paused=True)
    del doc["spec"]["replicas"]
    assert kubectl.apply(doc) == f"{MD_RESOURCE}/{name} created"
    live = get(api, md_path(kubectl.namespace, name))
    assert live["spec"]["replicas"] == 1  # the CRD's default
    assert live["metadata"]["generation"] == 1
    assert kubectl.apply(doc) == f"{MD_RESOURCE}/{name} unchanged"
    assert get(api, md_path(kubectl.namespace, name))["metadata"]["resourceVersion"] == \
        live["metadata"]["resourceVersion"]

    # Dropping `paused` from the manifest removes it (3-way JSON merge patch sends null).
    del doc["spec"]["paused"]
    doc["spec"]["replicas"] = 4
    assert kubectl.apply(doc) == f"{MD_RESOURCE}/{name} configured"
    live = get(api, md_path(kubectl.namespace, name))
    assert "paused" not in live["spec"]
    assert live["spec"]["replicas"] == 4
    assert live["metadata"]["generation"] == 2


def test_apply_rejected_by_cel_transition_rule(kubectl: Kubectl, api: Client) -> None:
    name = unique("md")
    kubectl.apply(machinedeployment(name))
    err = kubectl.fail("apply", "-f", "-", stdin=to_yaml(machinedeployment(name, "beta")))
    assert "clusterName is immutable" in err
    assert get(api, md_path(kubectl.namespace, name))["spec"]["clusterName"] == "alpha"


def test_apply_namespace_and_secret(kubectl: Kubectl, api: Client) -> None:
    ns_name = unique("tenant")
    ns_doc = manifest("namespace.yaml", ns_name)
    try:
        assert kubectl.apply(ns_doc) == f"namespace/{ns_name} created"
        assert kubectl.apply(ns_doc) == f"namespace/{ns_name} unchanged"
        ns_doc["metadata"]["labels"] = {"tenant": "beta", "tier": "gold"}
        assert kubectl.apply(ns_doc) == f"namespace/{ns_name} configured"
        live = get(api, f"/api/v1/namespaces/{ns_name}")
        assert live["metadata"]["labels"]["tenant"] == "beta"
        assert live["metadata"]["labels"]["tier"] == "gold"
        assert live["status"]["phase"] == "Active"
    finally:
        api.delete(f"/api/v1/namespaces/{ns_name}")

    secret_name = unique("kubeconfig")
    secret = manifest("secret.yaml", secret_name)
    del secret["stringData"]
    secret["data"] = {"value": base64.b64encode(b"kind: Config\n").decode()}
    assert kubectl.apply(secret) == f"secret/{secret_name} created"
    assert kubectl.apply(secret) == f"secret/{secret_name} unchanged"
    live = get(api, f"/api/v1/namespaces/{kubectl.namespace}/secrets/{secret_name}")
    assert live["type"] == "cluster.x-k8s.io/secret"
    assert base64.b64decode(live["data"]["value"]) == b"kind: Config\n"


def test_apply_secret_string_data_lands_in_data(kubectl: Kubectl, api: Client) -> None:
    name = unique("kubeconfig")
    assert kubectl.apply(manifest("secret.yaml", name)) == f"secret/{name} created"
    live = get(api, f"/api/v1/namespaces/{kubectl.namespace}/secrets/{name}")
    assert "stringData" not in live
    assert base64.b64decode(live["data"]["value"]) == b"apiVersion: v1\nkind: Config\n"


def test_apply_server_side(kubectl: Kubectl, api: Client) -> None:
    name = unique("md")
    doc = machinedeployment(name)
    out = kubectl.out("apply", "--server-side", "-f", "-", stdin=to_yaml(doc))
    assert out.strip() == f"{MD_RESOURCE}/{name} serverside-applied"
    live = get(api, md_path(kubectl.namespace, name))
    managers = {(m["manager"], m["operation"]) for m in live["metadata"]["managedFields"]}
    assert ("kubectl", "Apply") in managers
    doc["spec"]["replicas"] = 6
    kubectl.out("apply", "--server-side", "-f", "-", stdin=to_yaml(doc))
    assert get(api, md_path(kubectl.namespace, name))["spec"]["replicas"] == 6

    cm = unique("settings")
    cm_doc = manifest("configmap.yaml", cm)
    out = kubectl.out("apply", "--server-side", "-f", "-", stdin=to_yaml(cm_doc))
    assert out.strip() == f"configmap/{cm} serverside-applied"
    # Another manager's claim on a field conflicts until forced.
    conflict = kubectl.fail("apply", "--server-side", "--field-manager=other", "-f", "-",
                            stdin=to_yaml({**cm_doc, "data": {"cluster-name": "beta"}}))
    assert "conflict" in conflict.lower()
    kubectl.out("apply", "--server-side", "--field-manager=other", "--force-conflicts",
                "-f", "-", stdin=to_yaml({**cm_doc, "data": {"cluster-name": "beta"}}))
    assert get(api, cm_path(kubectl.namespace, cm))["data"]["cluster-name"] == "beta"


# ----------------------------------------------------------------------------------- create


def test_create_with_generate_name(kubectl: Kubectl, api: Client) -> None:
    md = machinedeployment("ignored")
    del md["metadata"]["name"]
    md["metadata"]["generateName"] = "md-"
    cm = manifest("configmap.yaml")
    del cm["metadata"]["name"]
    cm["metadata"]["generateName"] = "settings-"
    out = kubectl.out("create", "-f", "-", stdin=to_yaml(md, cm)).splitlines()
    md_match = re.fullmatch(rf"{re.escape(MD_RESOURCE)}/(md-[a-z0-9]{{5}}) created", out[0])
    cm_match = re.fullmatch(r"configmap/(settings-[a-z0-9]{5}) created", out[1])
    assert md_match and cm_match, out
    live = get(api, md_path(kubectl.namespace, md_match.group(1)))
    assert live["metadata"]["generateName"] == "md-"
    assert get(api, cm_path(kubectl.namespace, cm_match.group(1)))["data"] == cm["data"]


@pytest.mark.parametrize("what", ["configmap", "secret", "namespace", "poddisruptionbudget"])
def test_create_generator_commands(kubectl: Kubectl, api: Client, what: str) -> None:
    """kubectl's generators post through typed clients: protobuf bodies from kubectl 1.33."""
    name = unique("gen")
    ns = kubectl.namespace
    if what == "configmap":
        out = kubectl.out("create", "configmap", name, "--from-literal=cluster-name=alpha")
        assert out.strip() == f"configmap/{name} created"
        assert get(api, cm_path(ns, name))["data"] == {"cluster-name": "alpha"}
    elif what == "secret":
        out = kubectl.out("create", "secret", "generic", name, "--type=cluster.x-k8s.io/secret",
                          "--from-literal=value=kind: Config")
        assert out.strip() == f"secret/{name} created"
        live = get(api, f"/api/v1/namespaces/{ns}/secrets/{name}")
        assert live["type"] == "cluster.x-k8s.io/secret"
        assert base64.b64decode(live["data"]["value"]) == b"kind: Config"
    elif what == "poddisruptionbudget":
        out = kubectl.out("create", "poddisruptionbudget", name, "--selector=app=web",
                          "--max-unavailable=25%")
        assert out.strip() == f"poddisruptionbudget.policy/{name} created"
        live = get(api, f"/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets/{name}")
        assert live["spec"] == {"selector": {"matchLabels": {"app": "web"}},
                                "maxUnavailable": "25%"}
        other = unique("gen")
        kubectl.out("create", "pdb", other, "--selector=app=web", "--min-available=2")
        live = get(api, f"/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets/{other}")
        assert live["spec"]["minAvailable"] == 2
    else:
        try:
            assert kubectl.out("create", "namespace", name).strip() == f"namespace/{name} created"
            assert get(api, f"/api/v1/namespaces/{name}")["status"]["phase"] == "Active"
        finally:
            api.delete(f"/api/v1/namespaces/{name}")


# -------------------------------------------------------------------------------------- get


def test_get_custom_resource_table(kubectl: Kubectl, api: Client) -> None:
    name = unique("md")
    create_md(api, kubectl.namespace, name, replicas=3)
    set_status(api, kubectl.namespace, name, {"replicas": 3, "readyReplicas": 2,
                                              "phase": "ScalingUp"})
    # Qualified: Cluster API's own machinedeployments may be served beside the test kind.
    out = kubectl.out("get", f"machinedeployments.{GROUP}")
    assert header(out) == ["NAME", "CLUSTER", "REPLICAS", "READY", "PHASE", "AGE"]
    (row,) = parse_table(out)
    assert row["NAME"] == name
    assert (row["CLUSTER"], row["REPLICAS"], row["READY"], row["PHASE"]) == \
        ("alpha", "3", "2", "ScalingUp")
    assert re.fullmatch(r"\d+s", row["AGE"])

    wide = kubectl.out("get", "tmd", name, "-o", "wide")  # short name; priority-1 column
    assert header(wide)[-1] == "VERSION"
    assert parse_table(wide)[0]["VERSION"] == "v1.30.2"

    by_category = kubectl.out("get", "shipyard-conformance")  # one kind: names unprefixed
    assert [r["NAME"] for r in parse_table(by_category)] == [name]


def test_get_json_yaml_and_name(kubectl: Kubectl, api: Client) -> None:
    name = unique("md")
    created = create_md(api, kubectl.namespace, name)
    one = yaml.safe_load(kubectl.out("get", "tmd", name, "-o", "json"))
    assert one["metadata"]["uid"] == created["metadata"]["uid"]
    assert one["spec"] == created["spec"]
    listed = yaml.safe_load(kubectl.out("get", "tmd", "-o", "yaml"))
    assert listed["kind"] == "List"
    assert [i["metadata"]["name"] for i in listed["items"]] == [name]
    assert listed["items"][0]["apiVersion"] == "conformance.shipyard.test/v1beta1"
    assert kubectl.out("get", "tmd", "-o", "name").split() == [f"{MD_RESOURCE}/{name}"]
    jp = kubectl.out("get", "tmd", name, "-o", "jsonpath={.spec.template.spec.version}")
    assert jp == "v1.30.2"


def test_get_builtin_tables(kubectl: Kubectl, api: Client) -> None:
    cm = unique("settings")
    kubectl.apply(manifest("configmap.yaml", cm))
    sec = unique("kubeconfig")
    kubectl.apply(manifest("secret.yaml", sec))
    out = kubectl.out("get", "configmaps", cm)
    assert header(out) == ["NAME", "DATA", "AGE"]
    assert parse_table(out)[0]["DATA"] == "2"
    out = kubectl.out("get", "secret", sec)
    assert header(out) == ["NAME", "TYPE", "DATA", "AGE"]
    row = parse_table(out)[0]
    assert (row["NAME"], row["TYPE"], row["DATA"]) == (sec, "cluster.x-k8s.io/secret", "1")
    out = kubectl.out("get", "namespace", kubectl.namespace)
    assert header(out) == ["NAME", "STATUS", "AGE"]
    assert parse_table(out)[0]["STATUS"] == "Active"


def test_get_all_namespaces_show_labels_and_selector(kubectl: Kubectl, api: Client) -> None:
    a, b = unique("md"), unique("md")
    create_md(api, kubectl.namespace, a)
    other = unique("t")
    assert api.post("/api/v1/namespaces", {"metadata": {"name": other}}).status == 201
    try:
        create_md(api, other, b, cluster="beta")
        cluster_label = "cluster.x-k8s.io/cluster-name"
        out = kubectl.out("get", "tmd", "-A", "-l", f"{cluster_label} in (alpha,beta)",
                          "--show-labels")
        assert header(out) == ["NAMESPACE", "NAME", "CLUSTER", "REPLICAS", "READY", "PHASE",
                               "AGE", "LABELS"]
        rows = {(r["NAMESPACE"], r["NAME"]): r for r in parse_table(out)}
        assert rows[(kubectl.namespace, a)]["LABELS"] == f"{cluster_label}=alpha"
        assert rows[(other, b)]["LABELS"] == f"{cluster_label}=beta"

        only_beta = kubectl.out("get", "tmd", "-A", "-l", f"{cluster_label}=beta")
        assert [(r["NAMESPACE"], r["NAME"]) for r in parse_table(only_beta)] == [(other, b)]
        none = kubectl.run("get", "tmd", "-l", f"{cluster_label}=beta")
        assert none.stdout == ""
        assert f"No resources found in {kubectl.namespace} namespace." in none.stderr
    finally:
        api.delete(f"/api/v1/namespaces/{other}")


def test_get_watch_custom_resource(kubectl: Kubectl, api: Client) -> None:
    name = unique("md")
    create_md(api, kubectl.namespace, name)
    watch = kubectl.start("get", "tmd", "-w", "--output-watch-events")
    assert watch.next().split() == ["EVENT", "NAME", "CLUSTER", "REPLICAS", "READY", "PHASE",
                                    "AGE"]
    assert watch.next().split()[:3] == ["ADDED", name, "alpha"]
    set_status(api, kubectl.namespace, name, {"replicas": 1, "phase": "Running"})
    assert watch.next().split()[:5] == ["MODIFIED", name, "alpha", "1", "Running"]
    api.delete(md_path(kubectl.namespace, name))
    assert watch.next().split()[:2] == ["DELETED", name]


def test_get_watch_named_configmap(kubectl: Kubectl, api: Client) -> None:
    name = unique("settings")
    kubectl.apply(manifest("configmap.yaml", name))
    watch = kubectl.start("get", "configmap", name, "-w")
    assert watch.next().split() == ["NAME", "DATA", "AGE"]
    assert watch.next().split()[:2] == [name, "2"]
    assert api.patch(cm_path(kubectl.namespace, name), {"data": {"x": "y"}}).status == 200
    assert watch.next().split()[:2] == [name, "3"]


# ----------------------------------------------------------------------------- describe


def test_describe(kubectl: Kubectl, api: Client) -> None:
    name = unique("md")
    create_md(api, kubectl.namespace, name, replicas=2)
    out = kubectl.out("describe", "tmd", name)
    lines = [line.rstrip() for line in out.splitlines()]
    assert lines[0].split() == ["Name:", name]
    assert ["Namespace:", kubectl.namespace] == lines[1].split()
    assert "Kind:         MachineDeployment" in lines
    assert "API Version:  conformance.shipyard.test/v1beta1" in lines
    assert "Spec:" in lines
    assert any(line.split() == ["Cluster", "Name:", "alpha"] for line in lines)
    assert any(line.split() == ["Replicas:", "2"] for line in lines)
    assert lines[-1].split() == ["Events:", "<none>"]

    cm = unique("settings")
    kubectl.apply(manifest("configmap.yaml", cm))
    out = kubectl.out("describe", "configmap", cm)
    lines = [line.rstrip() for line in out.splitlines()]
    assert lines[0].split() == ["Name:", cm]
    assert "Labels:       app.kubernetes.io/part-of=shipyard" in lines
    assert "10.244.0.0/16" in lines


# ---------------------------------------------------------------- patch, label, annotate


def test_patch(kubectl: Kubectl, api: Client) -> None:
    name = unique("md")
    create_md(api, kubectl.namespace, name)
    assert kubectl.out("patch", "tmd", name, "--type=merge",
                       "-p", '{"spec":{"paused":true}}').strip() == f"{MD_RESOURCE}/{name} patched"
    live = get(api, md_path(kubectl.namespace, name))
    assert live["spec"]["paused"] is True
    assert live["metadata"]["generation"] == 2
    again = kubectl.out("patch", "tmd", name, "--type=merge", "-p", '{"spec":{"paused":true}}')
    assert again.strip() == f"{MD_RESOURCE}/{name} patched (no change)"
    kubectl.out("patch", "tmd", name, "--type=json",
                "-p", '[{"op":"replace","path":"/spec/replicas","value":5}]')
    assert get(api, md_path(kubectl.namespace, name))["spec"]["replicas"] == 5
    # CRs take no strategic merge patch.
    err = kubectl.fail("patch", "tmd", name, "--type=strategic", "-p", '{"spec":{}}')
    assert "415" in err or "not supported" in err or "unknown format" in err

    cm = unique("settings")
    kubectl.apply(manifest("configmap.yaml", cm))
    out = kubectl.out("patch", "configmap", cm, "-p",
                      '{"data":{"pod-cidr":null,"extra":"1"}}')  # strategic by default
    assert out.strip() == f"configmap/{cm} patched"
    assert get(api, cm_path(kubectl.namespace, cm))["data"] == {"cluster-name": "alpha",
                                                                "extra": "1"}


def test_label_and_annotate(kubectl: Kubectl, api: Client) -> None:
    name = unique("md")
    create_md(api, kubectl.namespace, name)
    cm = unique("settings")
    kubectl.apply(manifest("configmap.yaml", cm))
    annotated = "annotate" if kubectl.version == "1.27" else "annotated"  # 1.27's own wording
    for kind, path, shown in (
        ("tmd", md_path(kubectl.namespace, name), f"{MD_RESOURCE}/{name}"),
        ("configmap", cm_path(kubectl.namespace, cm), f"configmap/{cm}"),
    ):
        obj_name = path.rsplit("/", 1)[1]
        assert kubectl.out("label", kind, obj_name, "tier=gold").strip() == f"{shown} labeled"
        err = kubectl.fail("label", kind, obj_name, "tier=silver")
        assert "'tier' already has a value (gold), and --overwrite is false" in err
        kubectl.out("label", kind, obj_name, "tier=silver", "--overwrite")
        assert kubectl.out("annotate", kind, obj_name,
                           "shipyard.test/note=hello").strip() == f"{shown} {annotated}"
        meta = get(api, path)["metadata"]
        assert meta["labels"]["tier"] == "silver"
        assert meta["annotations"]["shipyard.test/note"] == "hello"

        assert kubectl.out("label", kind, obj_name, "tier-").strip() == f"{shown} unlabeled"
        kubectl.out("annotate", kind, obj_name, "shipyard.test/note-")
        meta = get(api, path)["metadata"]
        assert "tier" not in meta.get("labels", {})
        assert "shipyard.test/note" not in meta.get("annotations", {})
    # Metadata-only changes leave a CR's generation alone.
    assert get(api, md_path(kubectl.namespace, name))["metadata"]["generation"] == 1


# ------------------------------------------------------------------------------------ scale


def test_scale(kubectl: Kubectl, api: Client) -> None:
    name = unique("md")
    create_md(api, kubectl.namespace, name, replicas=2)
    set_status(api, kubectl.namespace, name, {"replicas": 2, "selector": "a=b"})
    assert kubectl.out("scale", "tmd", name, "--replicas=3").strip() == \
        f"{MD_RESOURCE}/{name} scaled"
    live = get(api, md_path(kubectl.namespace, name))
    assert live["spec"]["replicas"] == 3
    assert live["metadata"]["generation"] == 2
    assert live["status"]["replicas"] == 2  # scale writes spec only

    err = kubectl.fail("scale", "tmd", name, "--current-replicas=7", "--replicas=1")
    assert "Expected replicas to be 7, was 3" in err
    kubectl.out("scale", "tmd", name, "--current-replicas=3", "--replicas=0")
    assert get(api, md_path(kubectl.namespace, name))["spec"]["replicas"] == 0

    err = kubectl.fail("scale", "tmd", name, "--replicas=101")  # the CRD's CEL rule
    assert "replicas must be at most 100" in err
    assert get(api, md_path(kubectl.namespace, name))["spec"]["replicas"] == 0


# ------------------------------------------------------------------------------------- wait


def test_wait_for_condition_respects_observed_generation(
    kubectl: Kubectl, api: Client
) -> None:
    name = unique("md")
    create_md(api, kubectl.namespace, name)
    api.patch(md_path(kubectl.namespace, name), {"spec": {"paused": True}})  # generation 2
    target = f"tmd/{name}"
    ready = {"type": "Ready", "status": "True", "reason": "AllReplicasReady",
             "lastTransitionTime": "2024-01-01T00:00:00Z"}

    # Stale status.observedGeneration: the condition does not count (zero = check once).
    set_status(api, kubectl.namespace, name, {"observedGeneration": 1, "conditions": [ready]})
    err = kubectl.fail("wait", "--for=condition=Ready", target, "--timeout=0")
    assert f"condition not met for machinedeployments/{name}" in err
    # Stale condition-level observedGeneration: still not met.
    set_status(api, kubectl.namespace, name,
               {"observedGeneration": 2, "conditions": [{**ready, "observedGeneration": 1}]})
    kubectl.fail("wait", "--for=condition=Ready", target, "--timeout=0")

    # A waiter started now sees the status write through its watch.
    waiter = kubectl.start("wait", "--for=condition=Ready", target, "--timeout=60s")
    set_status(api, kubectl.namespace, name,
               {"observedGeneration": 2, "conditions": [{**ready, "observedGeneration": 2}]})
    assert waiter.next() == f"{MD_RESOURCE}/{name} condition met"
    assert waiter.proc.wait(timeout=30) == 0

    out = kubectl.out("wait", "--for=condition=Ready=True", target, "--timeout=0")
    assert out.strip() == f"{MD_RESOURCE}/{name} condition met"
    kubectl.fail("wait", "--for=condition=Ready=False", target, "--timeout=0")


def test_wait_for_crd_established(kubectl: Kubectl) -> None:
    out = kubectl.out("wait", "--for=condition=Established", f"crd/{CRD_NAME}",
                      "--timeout=10s")
    assert out.strip() == \
        f"customresourcedefinition.apiextensions.k8s.io/{CRD_NAME} condition met"


def test_wait_for_delete(kubectl: Kubectl, api: Client) -> None:
    name = unique("md")
    doc = machinedeployment(name)
    doc["metadata"]["finalizers"] = [HOLD]
    assert api.post(md_path(kubectl.namespace), doc).status == 201
    assert api.delete(md_path(kubectl.namespace, name)).status == 200
    waiter = kubectl.start("wait", "--for=delete", f"tmd/{name}", "--timeout=60s",
                           verbose=True)
    waiter.wait_watching()  # found it, held by the finalizer, and now watches
    assert api.patch(md_path(kubectl.namespace, name),
                     {"metadata": {"finalizers": None}}).status == 200
    assert waiter.next() == f"{MD_RESOURCE}/{name} condition met"
    assert waiter.proc.wait(timeout=30) == 0
    assert api.get(md_path(kubectl.namespace, name)).status == 404


# ----------------------------------------------------------------------------------- delete


def test_delete_held_by_finalizer(kubectl: Kubectl, api: Client) -> None:
    name = unique("md")
    doc = machinedeployment(name)
    doc["metadata"]["finalizers"] = [HOLD]
    kubectl.apply(doc)
    out = kubectl.out("delete", "tmd", name, "--wait=false")
    assert out.strip() == f'{MD_RESOURCE} "{name}" deleted'
    live = get(api, md_path(kubectl.namespace, name))
    assert live["metadata"]["deletionTimestamp"]
    assert live["metadata"]["finalizers"] == [HOLD]

    out = kubectl.out("patch", "tmd", name, "--type=json",
                      "-p", '[{"op":"remove","path":"/metadata/finalizers"}]')
    assert out.strip() == f"{MD_RESOURCE}/{name} patched"
    assert api.get(md_path(kubectl.namespace, name)).status == 404


def test_delete_waits_for_finalizers(kubectl: Kubectl, api: Client) -> None:
    name = unique("settings")
    doc = manifest("configmap.yaml", name)
    doc["metadata"]["finalizers"] = [HOLD]
    kubectl.apply(doc)
    deleter = kubectl.start("delete", "configmap", name)  # --wait=true by default
    for _ in range(400):
        if get(api, cm_path(kubectl.namespace, name))["metadata"].get("deletionTimestamp"):
            break
        time.sleep(0.025)
    assert deleter.proc.poll() is None  # held: the finalizer is still there
    assert api.patch(cm_path(kubectl.namespace, name),
                     {"metadata": {"finalizers": []}}).status == 200
    assert deleter.next() == f'configmap "{name}" deleted'
    assert deleter.proc.wait(timeout=30) == 0
    assert api.get(cm_path(kubectl.namespace, name)).status == 404


def test_delete_cascade_foreground(kubectl: Kubectl, api: Client) -> None:
    ns = kubectl.namespace
    owner = unique("md")
    uid = create_md(api, ns, owner)["metadata"]["uid"]
    child = unique("owned")
    ref = {"apiVersion": "conformance.shipyard.test/v1beta1", "kind": "MachineDeployment",
           "name": owner, "uid": uid, "controller": True, "blockOwnerDeletion": True}
    doc = manifest("configmap.yaml", child)
    doc["metadata"]["ownerReferences"] = [ref]
    doc["metadata"]["finalizers"] = [HOLD]
    kubectl.apply(doc)

    out = kubectl.out("delete", "tmd", owner, "--cascade=foreground", "--wait=false")
    assert out.strip() == f'{MD_RESOURCE} "{owner}" deleted'
    live = get(api, md_path(ns, owner))
    assert live["metadata"]["deletionTimestamp"]
    assert "foregroundDeletion" in live["metadata"]["finalizers"]
    # The garbage collector deletes the blocking child first; its finalizer holds it.
    for _ in range(400):
        if get(api, cm_path(ns, child))["metadata"].get("deletionTimestamp"):
            break
        time.sleep(0.025)
    else:
        raise AssertionError("the owned ConfigMap was never deleted")
    assert api.get(md_path(ns, owner)).status == 200  # still waiting for its dependent

    kubectl.out("patch", "configmap", child, "--type=json",
                "-p", '[{"op":"remove","path":"/metadata/finalizers"}]')
    wait_until_gone(api, cm_path(ns, child))
    wait_until_gone(api, md_path(ns, owner))


def test_delete_cascade_foreground_waits(kubectl: Kubectl, api: Client) -> None:
    ns = kubectl.namespace
    owner = unique("md")
    uid = create_md(api, ns, owner)["metadata"]["uid"]
    child = unique("owned")
    doc = manifest("configmap.yaml", child)
    doc["metadata"]["ownerReferences"] = [{
        "apiVersion": "conformance.shipyard.test/v1beta1", "kind": "MachineDeployment",
        "name": owner, "uid": uid, "blockOwnerDeletion": True}]
    kubectl.apply(doc)
    out = kubectl.out("delete", "tmd", owner, "--cascade=foreground")
    assert out.strip() == f'{MD_RESOURCE} "{owner}" deleted'
    assert api.get(md_path(ns, owner)).status == 404
    assert api.get(cm_path(ns, child)).status == 404  # gone before its owner


def test_delete_namespace_and_by_label(kubectl: Kubectl, api: Client) -> None:
    a, b = unique("md"), unique("md")
    create_md(api, kubectl.namespace, a)
    create_md(api, kubectl.namespace, b, cluster="beta")
    out = kubectl.out("delete", "tmd", "-l", "cluster.x-k8s.io/cluster-name=beta")
    assert out.strip() == f'{MD_RESOURCE} "{b}" deleted'
    assert api.get(md_path(kubectl.namespace, b)).status == 404
    assert api.get(md_path(kubectl.namespace, a)).status == 200

    ns_name = unique("tenant")
    kubectl.apply(manifest("namespace.yaml", ns_name))
    create_md(api, ns_name, unique("md"))
    out = kubectl.out("delete", "namespace", ns_name)  # waits for the namespace finalizer
    assert out.strip() == f'namespace "{ns_name}" deleted'
    assert api.get(f"/api/v1/namespaces/{ns_name}").status == 404


# ------------------------------------------------------------------ explain, api-resources


def test_explain(kubectl: Kubectl) -> None:
    out = kubectl.out("explain", f"machinedeployments.{GROUP}.spec.replicas")
    lines = [line.strip() for line in out.splitlines()]
    assert "KIND:       MachineDeployment" in lines
    assert "VERSION:    v1beta1" in lines
    assert "FIELD: replicas <integer>" in lines
    assert "replicas is the number of desired machines." in lines

    out = kubectl.out("explain", "tmd.spec", "--recursive")
    fields = [line.split()[0] for line in out.splitlines()
              if line.startswith("  ") and line.strip()]
    for name in ("clusterName", "paused", "replicas", "selector", "template", "version"):
        assert name in fields

    out = kubectl.out("explain", "configmap.data")
    assert "FIELD: data <map[string]string>" in [line.strip() for line in out.splitlines()]


def test_api_resources(kubectl: Kubectl) -> None:
    out = kubectl.out("api-resources", "--api-group=conformance.shipyard.test", "-o", "wide")
    (row,) = parse_table(out)
    assert row == {
        "NAME": "machinedeployments", "SHORTNAMES": "tmd",
        "APIVERSION": "conformance.shipyard.test/v1beta1", "NAMESPACED": "true",
        "KIND": "MachineDeployment",
        # kube-apiserver's order for custom resources (not sorted), as kubectl prints it
        "VERBS": "delete,deletecollection,get,list,patch,create,update,watch",
        "CATEGORIES": "shipyard-conformance",
    }
    rows = {r["NAME"]: r for r in parse_table(kubectl.out("api-resources", "--api-group="))}
    assert rows["configmaps"]["SHORTNAMES"] == "cm"
    assert rows["namespaces"]["NAMESPACED"] == "false"
    assert rows["secrets"]["KIND"] == "Secret"
    names = kubectl.out("api-resources", "--namespaced=false", "-o", "name").split()
    assert "namespaces" in names
    assert "customresourcedefinitions.apiextensions.k8s.io" in names
    assert "configmaps" not in names
