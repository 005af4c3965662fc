"""``shipyard build node-image``: build the Docker provider's node image into the local engine.

No registry is involved: the image is assembled on this machine (see
`shipyard.providers.docker.image`) and imported through the Docker Engine API found by
``DOCKER_HOST``, as the docker CLI finds it. Building is a no-op when the engine already holds
the image for this exact Shipyard code. Failures print one clear line and exit 1.
"""

from __future__ import annotations

import os

import click


@click.group("build")
def build() -> None:
    """Build artifacts Shipyard's providers need."""


@build.command("node-image")
@click.option("--force", is_flag=True, help="Rebuild even when the engine has the image.")
@click.option("--image", "image", metavar="REF", default=None,
              help="Also name the image REF (default: localhost/shipyard/node:<version-digest>).")
def node_image(force: bool, image: str | None) -> None:
    """Build the Docker provider's node image (Debian bookworm, Python, Shipyard)."""
    import docker
    import docker.errors

    from shipyard.providers.docker.image import NodeImageError, build_node_image, image_present

    host = os.environ.get("DOCKER_HOST") or "(unset: unix:///var/run/docker.sock)"
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as error:
        raise click.ClickException(
            f"cannot reach a Docker engine at DOCKER_HOST={host}: {error}; start one "
            "(e.g. scripts/podman-service start)") from error
    try:
        if image is not None and not force and image_present(client, image):
            click.echo(image)
            return
        ref = build_node_image(client, force=force,
                               progress=lambda message: click.echo(message, err=True))
        if image is not None and image != ref:
            repository, _, tag = image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] \
                else (image, "", "latest")
            client.images.get(ref).tag(repository, tag)
            ref = image
    except NodeImageError as error:
        raise click.ClickException(str(error)) from error
    except docker.errors.DockerException as error:
        raise click.ClickException(f"the Docker engine at DOCKER_HOST={host} failed: {error}") \
            from error
    finally:
        client.close()
    click.echo(ref)
