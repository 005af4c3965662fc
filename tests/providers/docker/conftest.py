"""Fixtures for the Docker provider's tests: a real Docker Engine API and the node image.

``docker_client`` uses ``DOCKER_HOST`` when it is set (CI exports podman's socket there). Without
it, a machine with podman gets this repository's private podman service
(``scripts/podman-service start``) and ``DOCKER_HOST`` is set for the session so controllers
under test find the same engine; otherwise the tests skip. ``node_image`` builds the node image
once (a minute or two the very first time, seconds after a code change, nothing when present).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from shipyard.providers.docker.image import NodeImageError, build_node_image

REPOSITORY = Path(__file__).resolve().parents[3]
TEST_LABEL = "io.x-k8s.shipyard.test"


def _connect() -> Iterator[docker.DockerClient]:
    client = docker.from_env()
    try:
        client.ping()
    except docker.errors.DockerException as error:
        client.close()
        pytest.fail(f"DOCKER_HOST={os.environ.get('DOCKER_HOST')} does not answer: {error}")
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    if os.environ.get("DOCKER_HOST"):
        yield from _connect()
        return
    if shutil.which("podman") is None:
        pytest.skip("no Docker engine: set DOCKER_HOST or install podman")
    started = subprocess.run(["bash", str(REPOSITORY / "scripts" / "podman-service"), "start"],
                             capture_output=True, text=True, timeout=60, check=False)
    if started.returncode != 0:
        pytest.skip(f"no Docker engine: scripts/podman-service start failed: "
                    f"{started.stderr.strip()}")
    host = started.stdout.strip().partition("=")[2]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DOCKER_HOST", host)
        yield from _connect()


@pytest.fixture(scope="session")
def node_image(docker_client: docker.DockerClient) -> str:
    try:
        return build_node_image(docker_client)
    except NodeImageError as error:
        if shutil.which("debootstrap") is None or os.geteuid() != 0:
            pytest.skip(f"cannot build the node image here: {error}")
        raise


@pytest.fixture
def container_labels(docker_client: docker.DockerClient) -> Iterator[dict[str, str]]:
    """Labels to put on containers a test creates; every container carrying them is removed."""
    labels = {TEST_LABEL: os.urandom(6).hex()}
    yield labels
    selector = f"{TEST_LABEL}={labels[TEST_LABEL]}"
    for container in docker_client.containers.list(all=True, filters={"label": selector}):
        container.remove(force=True)
