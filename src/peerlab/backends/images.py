"""Container images for the docker backend, made on this machine from Debian's packages.

No image registry is needed. `base` is a minimal Debian (`mmdebstrap --variant=minbase`
into a tarball, imported into the engine) with libfaketime for clock skew; it is tagged
`peerlab/base:<recipe>` and not made again while that tag exists (the recipe's hash is its
content key). The built-in systems' images are built FROM it by the engine, tagged by the
hash of their content too (the base, the Dockerfile, and for syncpeer the wheel), so an
unchanged one is not built again: `syncpeer` from the project's own wheel (with its few
dependencies, on Debian's Python), `etcd` and `redis` from their Debian packages. A
manifest's `launch.build` (a Dockerfile, or a directory with one) is built the same way,
tagged `launch.image`. Builds use the host's network, the only way out to the package
mirror when the engine has no bridge of its own.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from peerlab.backends.engine import IMAGE_LABEL, client
from peerlab.errors import PeerlabError, UsageError

if TYPE_CHECKING:
    import docker

Progress = Callable[[str], None]

SUITE = "bookworm"
BASE = "peerlab/base"
BASE_PACKAGES = ("libfaketime",)
# Where Debian's libfaketime is inside an image of this machine's architecture.
FAKETIME_PATHS = {
    "x86_64": "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "aarch64": "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
}
# syncpeer's own imports beyond the standard library, pinned to this environment's versions.
SYNCPEER_DEPENDENCIES = ("aiohttp", "cryptography", "structlog")

_APT = (
    "RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
    "--no-install-recommends {packages} && rm -rf /var/lib/apt/lists/*\n"
)


@dataclass(frozen=True)
class Recipe:
    """A built-in image: what it is called, the Dockerfile that makes it FROM base, and
    what its build context holds besides (`key` puts it there and names its content;
    `fill` adds what follows from it)."""

    name: str
    dockerfile: str
    key: Callable[[Path, Progress], str] = lambda _context, _progress: ""
    fill: Callable[[Path, Progress], None] = lambda _context, _progress: None

    @property
    def tag(self) -> str:
        return f"peerlab/{self.name}"


def _syncpeer_wheel(context: Path, progress: Progress) -> str:
    """The project's wheel (built reproducibly: the same source gives the same bytes) and
    the pins of syncpeer's dependencies; their hash is the image's content key."""
    progress("building the project's wheel")
    _pip("wheel", "--no-deps", "--wheel-dir", str(context / "wheels"), str(_project_root()))
    wheel = next((context / "wheels").glob("peerlab-*.whl"))
    pins = " ".join(_syncpeer_pins())
    return hashlib.sha256(wheel.read_bytes() + pins.encode()).hexdigest()


def _syncpeer_site(context: Path, progress: Progress) -> None:
    """The wheel and syncpeer's dependencies, installed into `context/site`."""
    site = str(context / "site")
    wheels = context / "wheels"
    _pip("install", "--no-deps", "--no-compile", "--target", site, *map(str, wheels.glob("*.whl")))
    progress(f"adding {', '.join(_syncpeer_pins())}")
    _pip("install", "--no-compile", "--only-binary=:all:", "--target", site, *_syncpeer_pins())
    shutil.rmtree(wheels)


def _syncpeer_pins() -> list[str]:
    return [f"{name}=={importlib.metadata.version(name)}" for name in SYNCPEER_DEPENDENCIES]


RECIPES = {
    "syncpeer": Recipe(
        "syncpeer",
        f"FROM {BASE}\n"
        + _APT.format(packages="python3")
        + "COPY site /opt/syncpeer\nENV PYTHONPATH=/opt/syncpeer\n"
        # Compiled once here, not by every node at every start.
        + "RUN python3 -m compileall -q -j 0 /opt/syncpeer\n"
        + 'CMD ["python3", "-m", "syncpeer", "--help"]\n',
        key=_syncpeer_wheel,
        fill=_syncpeer_site,
    ),
    "etcd": Recipe(
        "etcd", f"FROM {BASE}\n" + _APT.format(packages="etcd-server") + 'CMD ["etcd"]\n'
    ),
    "redis": Recipe(
        "redis",
        f"FROM {BASE}\n"
        + _APT.format(packages="redis-server redis-sentinel")
        + 'CMD ["redis-server"]\n',
    ),
}
NAMES = ("base", *RECIPES)


def base_key() -> str:
    """The base image's content key: what goes into it."""
    recipe = {"suite": SUITE, "variant": "minbase", "include": BASE_PACKAGES}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]


def faketime_path() -> str:
    import platform

    machine = platform.machine()
    if machine not in FAKETIME_PATHS:
        raise UsageError(
            f"clock skew in containers is not supported on {machine}",
            field="clock_skew",
            hint=f"it needs one of: {', '.join(FAKETIME_PATHS)}",
        )
    return FAKETIME_PATHS[machine]


class Images:
    """Makes images on one engine, each at most once at a time."""

    def __init__(self, engine: docker.DockerClient | None = None) -> None:
        self.engine = engine or client()
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._ready: set[str] = set()

    def _lock(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def exists(self, tag: str) -> bool:
        import docker

        try:
            self.engine.api.inspect_image(tag)
        except docker.errors.ImageNotFound:
            return False
        return True

    # ------------------------------------------------------------------ what builds what

    def build(self, name: str, progress: Progress = lambda _: None) -> str:
        """Make the image `name` (base or a built-in system's); its tag."""
        if name == "base":
            return self.base(progress)
        if name not in RECIPES:
            raise UsageError(
                f"no built-in image {name!r}",
                field="image",
                hint=f"use one of: {', '.join(NAMES)}; build your own with `launch.build`",
            )
        base = self.base(progress)
        recipe = RECIPES[name]
        with tempfile.TemporaryDirectory(prefix="peerlab-image-") as directory:
            context = Path(directory)
            (context / "Dockerfile").write_text(recipe.dockerfile)
            content = recipe.key(context, progress)
            key = hashlib.sha256(f"{base}|{recipe.dockerfile}|{content}".encode()).hexdigest()
            tag = f"{recipe.tag}:{key[:12]}"
            if not self.exists(tag):
                recipe.fill(context, progress)
                self._build(context, "Dockerfile", tag, f"builtin-{name}", progress)
        self.engine.api.tag(tag, recipe.tag, "latest")
        self._untag_older(recipe, tag)
        return tag

    def _untag_older(self, recipe: Recipe, current: str) -> None:
        """Drop the tags of this recipe's earlier contents, and the images they leave."""
        import docker

        for image in self.engine.api.images(recipe.tag):
            for tag in image.get("RepoTags") or []:
                if tag not in (current, f"{recipe.tag}:latest"):
                    with contextlib.suppress(docker.errors.APIError):
                        self.engine.api.remove_image(tag)
        self._forget_superseded()

    def base(self, progress: Progress = lambda _: None) -> str:
        """The base image, made from Debian's packages unless this recipe's is there."""
        tag = f"{BASE}:{base_key()}"
        if tag in self._ready:
            return tag
        with self._lock(tag):
            if self.exists(tag):
                self._ready.add(tag)
                self.engine.api.tag(tag, BASE, "latest")
                return tag
            if shutil.which("mmdebstrap") is None:
                raise UsageError(
                    "making the base image needs mmdebstrap, which is not installed",
                    field="image",
                    hint="apt-get install mmdebstrap",
                )
            with tempfile.TemporaryDirectory(prefix="peerlab-base-") as directory:
                tarball = Path(directory) / "rootfs.tar"
                progress(f"mmdebstrap {SUITE} (minbase, {', '.join(BASE_PACKAGES)})")
                done = subprocess.run(
                    [
                        "mmdebstrap",
                        "--quiet",
                        "--variant=minbase",
                        f"--include={','.join(BASE_PACKAGES)}",
                        SUITE,
                        str(tarball),
                    ],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if done.returncode != 0:
                    raise PeerlabError(
                        f"mmdebstrap failed: {_tail(done.stderr)}",
                        hint="it needs root (or unshare) and Debian's package mirror",
                    )
                progress("importing it into the engine")
                self.engine.api.import_image(
                    src=str(tarball),
                    repository=BASE,
                    tag=base_key(),
                    changes=[f"LABEL {IMAGE_LABEL}=base-{base_key()}", 'CMD ["/bin/bash"]'],
                )
            self.engine.api.tag(tag, BASE, "latest")
            self._ready.add(tag)
            return tag

    def ensure(self, image: str | None, build: Path | None, progress: Progress) -> str:
        """The tag to run: `build` made into `image` (or a name from its path), or `image`
        as it is on the engine (a built-in one is made when missing)."""
        if build is not None:
            tag = image or f"peerlab-build/{hashlib.sha1(str(build).encode()).hexdigest()[:12]}"
            with self._lock(tag):
                if tag not in self._ready:
                    self.base(progress)  # user images here are FROM it: no registry
                    self._user_build(build, tag, progress)
                    self._ready.add(tag)
            return tag
        assert image is not None
        if self.exists(image):
            return image
        builtin = next((n for n, r in RECIPES.items() if image in (r.tag, f"{r.tag}:latest")), None)
        if builtin is not None:
            with self._lock(f"builtin-{builtin}"):
                if not self.exists(image):
                    self.build(builtin, progress)
            return image
        raise UsageError(
            f"image {image!r} is not on the engine, and no registry can be reached",
            field="launch.image",
            hint="build it first (docker build -t NAME .), or give launch.build",
        )

    # ------------------------------------------------------------------ the engine's builds

    def _user_build(self, build: Path, tag: str, progress: Progress) -> None:
        if build.is_dir():
            context, dockerfile = build, "Dockerfile"
        elif build.is_file():
            context, dockerfile = build.parent, build.name
        else:
            raise UsageError(
                f"build context {build} does not exist",
                field="launch.build",
                hint="name a Dockerfile or a directory with one, relative to the manifest",
            )
        self._build(context, dockerfile, tag, f"build-{tag}", progress)

    def _build(
        self, context: Path, dockerfile: str, tag: str, recipe: str, progress: Progress
    ) -> str:
        import docker

        progress(f"building {tag}")
        lines: list[str] = []
        try:
            for chunk in self.engine.api.build(
                path=str(context),
                dockerfile=dockerfile,
                tag=tag,
                rm=True,
                forcerm=True,
                network_mode="host",
                labels={IMAGE_LABEL: recipe},
                decode=True,
            ):
                if "error" in chunk:
                    raise PeerlabError(
                        f"building {tag} failed: {str(chunk['error']).strip()}",
                        hint="its last output: " + " | ".join(lines[-5:]),
                    )
                text = str(chunk.get("stream", "")).strip()
                if text:
                    lines.append(text)
        except docker.errors.APIError as exc:
            raise PeerlabError(
                f"building {tag} failed: {exc.explanation or exc}",
                hint=f"check the Dockerfile in {context}",
            ) from None
        self._forget_superseded()
        return tag

    def _forget_superseded(self) -> None:
        """Remove peerlab's images that a build has just replaced (left with no tag); an
        image still used by a container, or not labelled by peerlab, is never touched."""
        import docker

        old = self.engine.api.images(filters={"label": IMAGE_LABEL, "dangling": True})
        for image in old:
            with contextlib.suppress(docker.errors.APIError):
                self.engine.api.remove_image(image["Id"])

    def listing(self) -> list[dict[str, str]]:
        """The images peerlab made on this engine."""
        found = []
        for image in self.engine.api.images(filters={"label": IMAGE_LABEL}):
            for tag in image.get("RepoTags") or []:
                if tag == "<none>:<none>":
                    continue
                found.append(
                    {
                        "tag": tag,
                        "id": image["Id"].removeprefix("sha256:")[:12],
                        "mb": f"{image['Size'] / 1e6:.0f}",
                        "recipe": (image.get("Labels") or {}).get(IMAGE_LABEL, ""),
                    }
                )
        return found


def _project_root() -> Path:
    """The source checkout this peerlab runs from (the syncpeer image is built from it)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        project = parent / "pyproject.toml"
        with contextlib.suppress(OSError):
            if project.is_file() and 'name = "peerlab"' in project.read_text():
                return parent
    raise UsageError(
        "the syncpeer image is built from peerlab's source checkout, and this peerlab was "
        "installed without one",
        field="image",
        hint="install peerlab from a clone (pip install -e .) to build it",
    )


def _pip(*args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--quiet", *args], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise PeerlabError(f"pip {args[0]} failed: {_tail(done.stderr)}")


def _tail(text: str) -> str:
    return " | ".join(text.strip().splitlines()[-3:]) or "no message"
