"""`shipyard generate cluster`: clusterctl's flags, variable sources and messages; and the
rendered manifest applied with the real kubectl converges to Running machines."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from tests.kube import Server
from tests.providers.harness import V2, capi, eventually, install_crd, running

from shipyard import templates
from shipyard.cli import providers as registry
from shipyard.cli.main import main

__all__ = ["capi"]


def generate(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["generate", "cluster", *args],
                                env={"KUBECONFIG": "/nonexistent", **(env or {})})
    return result.exit_code, result.stdout, result.stderr


def test_providers_ship_a_default_template() -> None:
    assert "in-memory" in templates.providers()
    assert "" in templates.flavors("in-memory")


def test_list_variables_in_clusterctl_form() -> None:
    code, out, _ = generate("demo", "--list-variables")
    assert code == 0
    assert out.startswith("Required Variables:\n  - KUBERNETES_VERSION\n\nOptional Variables:\n")
    assert "  - CLUSTER_NAME          (defaults to demo)\n" in out
    assert "  - NAMESPACE             (defaults to current Namespace in the KubeConfig file)\n" \
        in out
    assert '  - POD_CIDR              (defaults to "192.168.0.0/16")\n' in out
    assert "  - WORKER_MACHINE_COUNT  (defaults to 0)\n" in out


def test_missing_variable_is_refused_with_clusterctls_message() -> None:
    code, out, err = generate("demo")
    assert code == 1 and out == ""
    assert "value for variables [KUBERNETES_VERSION] is not set" in err


def test_flags_beat_environment_beat_config_file(tmp_path: Path) -> None:
    config = tmp_path / "clusterctl.yaml"
    config.write_text("KUBERNETES_VERSION: v1.30.0\nPOD_CIDR: 10.1.0.0/16\n"
                      "SERVICE_DOMAIN: from.config\n")
    code, out, err = generate("demo", "--config", str(config), "--worker-machine-count", "2",
                              env={"SERVICE_DOMAIN": "from.env"})
    assert code == 0, err
    docs = list(yaml.safe_load_all(out))
    cluster = next(d for d in docs if d["kind"] == "Cluster")
    assert cluster["metadata"] == {"name": "demo", "namespace": "default"}
    assert cluster["spec"]["clusterNetwork"]["pods"]["cidrBlocks"] == ["10.1.0.0/16"]
    assert cluster["spec"]["clusterNetwork"]["serviceDomain"] == "from.env"
    md = next(d for d in docs if d["kind"] == "MachineDeployment")
    assert md["spec"]["replicas"] == 2
    assert md["spec"]["template"]["spec"]["version"] == "v1.30.0"
    code, out, _ = generate("demo", "--config", str(config), "--kubernetes-version", "v1.33.1",
                            "-n", "team-a")
    assert code == 0
    md = next(d for d in yaml.safe_load_all(out) if d["kind"] == "MachineDeployment")
    assert md["spec"]["template"]["spec"]["version"] == "v1.33.1"
    assert md["metadata"]["namespace"] == "team-a"


def test_unknown_provider_and_flavor_are_clear_errors() -> None:
    code, _, err = generate("demo", "-i", "nope", "--kubernetes-version", "v1.33.0")
    assert code == 1 and "no templates for infrastructure provider 'nope'" in err
    code, _, err = generate("demo", "--flavor", "gpu", "--kubernetes-version", "v1.33.0")
    assert code == 1 and "has no flavor 'gpu'" in err and "(default)" in err


def test_from_file(tmp_path: Path) -> None:
    template = tmp_path / "t.yaml"
    template.write_text("kind: ConfigMap\nmetadata: {name: '${CLUSTER_NAME}-${X:=y}'}\n")
    code, out, _ = generate("c", "--from", str(template))
    assert code == 0 and yaml.safe_load(out)["metadata"]["name"] == "c-y"


@pytest.mark.timeout(90)
async def test_generated_manifest_applied_with_kubectl_converges(
        capi: Server, namespace: str) -> None:
    code, out, err = generate("gen", "--kubernetes-version", "v1.33.0",
                              "--worker-machine-count", "2", "-n", namespace)
    assert code == 0, err
    async with running(capi, namespace) as env:
        applied = await asyncio.to_thread(capi.kubectl, "apply", "-f", "-", stdin=out)
        assert "cluster.cluster.x-k8s.io/gen created" in applied.stdout

        async def all_running() -> bool:
            items = (await env.kube.list(V2, "Machine", namespace))["items"]
            return len(items) == 2 and all(
                (m.get("status") or {}).get("phase") == "Running" for m in items)

        await eventually(all_running, "2 generated machines Running", timeout=60)


@pytest.mark.parametrize("provider", templates.providers())
def test_every_shipped_template_passes_the_servers_validation(
        provider: str, capi: Server, namespace: str) -> None:
    api = capi.client()
    for p in registry.PROVIDERS.values():
        for manifest in p.manifests():
            install_crd(api, manifest)
    for flavor in templates.flavors(provider):
        args = ["gen", "-i", provider, "--kubernetes-version", "v1.33.0",
                "--control-plane-machine-count", "3", "--worker-machine-count", "2",
                "-n", namespace]
        code, out, err = generate(*args, *(["--flavor", flavor] if flavor else []))
        assert code == 0, err
        applied = capi.kubectl("apply", "--dry-run=server", "-f", "-", stdin=out)
        assert applied.returncode == 0, applied.stderr
