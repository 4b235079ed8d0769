"""Container runtimes for the local executor: podman (rootful), pulling images by policy.

The pull policy (``never`` | ``missing`` | ``always``) and the allowed registries are set per
deployment. Whether an image can be had is decided at submission, where it can be checked:
a registry that does not answer (``GET /v2/``) or a manifest it does not have (``HEAD
/v2/<name>/manifests/<tag>``, where the registry answers anonymously) makes the image
unavailable there and then, with the registry's answer; the pull itself happens before the
run's first step, its progress in the step's log.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import time
import tomllib
from pathlib import Path

import anyio
import httpx

from vre_workflows.backends.base import ImageCheck
from vre_workflows.config import ContainerSettings
from vre_workflows.errors import ImageUnavailableError

DOCKER_HUB = "docker.io"
_MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
_PROBE_TTL = 60.0
# An image found absent from local storage is taken as absent for this long (each check spawns
# podman, ≈ 50 ms of CPU; a burst of submissions of one image would spawn one per run). A pull
# through this runtime ends it at once; one made by hand is seen after this delay.
_ABSENT_TTL = 5.0

_MEMORY = re.compile(r"^(\d+(?:\.\d+)?)([EPTGMK]i?|[eptgmk])?$")
_UNITS = {
    "": 1,
    "k": 1000,
    "K": 1000,
    "M": 1000**2,
    "G": 1000**3,
    "T": 1000**4,
    "P": 1000**5,
    "E": 1000**6,
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
    "Ti": 1024**4,
    "Pi": 1024**5,
    "Ei": 1024**6,
    "m": 1000**2,
    "g": 1000**3,
    "t": 1000**4,
    "p": 1000**5,
    "e": 1000**6,
}


def memory_bytes(limit: str | None) -> int | None:
    """A Kubernetes memory quantity (``256Mi``, ``1G``, ``1000``) in bytes; None if absent."""
    if not limit:
        return None
    match = _MEMORY.match(limit.strip())
    if match is None:
        raise ValueError(f"{limit!r} is not a memory quantity such as 256Mi or 1G")
    return int(float(match.group(1)) * _UNITS[match.group(2) or ""])


def split_image(image: str) -> tuple[str, str, str]:
    """(registry, repository, tag or digest) of an image reference, Docker's way."""
    first, sep, rest = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, rest
    else:
        registry, path = DOCKER_HUB, image
        if "/" not in path:
            path = f"library/{path}"
    if "@" in path:
        repository, _, reference = path.partition("@")
    else:
        repository, colon, tag = path.rpartition(":")
        if not colon or "/" in tag:
            repository, reference = path, "latest"
        else:
            reference = tag
    return registry, repository, reference


def _insecure_registries(conf: Path | None) -> set[str]:
    if conf is None or not conf.exists():
        return set()
    try:
        data = tomllib.loads(conf.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return set()
    return {
        str(r.get("location"))
        for r in data.get("registry", [])
        if isinstance(r, dict) and r.get("insecure")
    }


def container_prefix(run_id: str) -> str:
    """The prefix of the names of a run's containers."""
    return f"vre-{run_id[:13]}"


def how_to_provide(image: str) -> str:
    """What an operator can do when ``image`` is missing locally."""
    return (
        f"provide it on this machine with `podman load -i <archive>` (an archive made by "
        f"`podman save {image}` where the registry is reachable) or build it with "
        f"`podman build -t {image} .`; or let steps without their image run on the host "
        "(VRE_WORKFLOWS_LOCAL__ALLOW_HOST_EXECUTION=true)"
    )


class PodmanRuntime:
    """Runs steps with ``podman run`` in images already present in local storage.

    Each step: ``--rm --init`` (signals reach the command), no network by default, a read-only
    root file system with a private /tmp, the run's workspace mounted read-write at
    /workspace, memory and pids limits. Images are never pulled (no registry is assumed).
    """

    name = "podman"

    def __init__(self, settings: ContainerSettings) -> None:
        self._settings = settings
        self._env = dict(os.environ)
        if settings.containers_conf is not None:
            self._env["CONTAINERS_CONF"] = str(settings.containers_conf)
        if settings.registries_conf is not None:
            self._env["CONTAINERS_REGISTRIES_CONF"] = str(settings.registries_conf)
        self._insecure = _insecure_registries(settings.registries_conf)
        self._cache: dict[str, ImageCheck] = {}
        self._probes: dict[str, tuple[float, str | None]] = {}
        self._absent: dict[str, tuple[float, int, str]] = {}
        self._checking: dict[str, asyncio.Task[tuple[int, str]]] = {}

    @property
    def pull_policy(self) -> str:
        """never | missing | always."""
        return self._settings.pull_policy

    def _base_url(self, registry: str) -> str:
        host = "registry-1.docker.io" if registry == DOCKER_HUB else registry
        scheme = "http" if registry in self._insecure else "https"
        return f"{scheme}://{host}"

    async def _registry_problem(self, image: str) -> str | None:
        """Why ``image`` cannot be pulled, as far as its registry says up front; None: go."""
        registry, repository, reference = split_image(image)
        now = time.monotonic()
        cached = self._probes.get(registry)
        if cached is None or now - cached[0] > _PROBE_TTL:
            try:
                async with httpx.AsyncClient(timeout=3.0) as client:
                    answer = await client.get(self._base_url(registry) + "/v2/")
            except httpx.HTTPError as exc:
                down: str | None = (
                    f"the registry {registry} does not answer ({type(exc).__name__}: {exc})"
                )
            else:
                # A registry says so in this header (also on 401); a proxy refusing the host
                # or a web server at that address does not.
                down = (
                    None
                    if "docker-distribution-api-version" in answer.headers
                    else f"the registry {registry} does not answer as a registry (HTTP "
                    f"{answer.status_code} to /v2/)"
                )
            self._probes[registry] = (now, down)
            cached = self._probes[registry]
        if cached[1] is not None:
            return cached[1]
        url = f"{self._base_url(registry)}/v2/{repository}/manifests/{reference}"
        try:
            async with httpx.AsyncClient(timeout=5.0) as client:
                answer = await client.head(url, headers={"Accept": _MANIFEST_TYPES})
        except httpx.HTTPError:
            return None  # the pull will say
        if answer.status_code == 404:
            return (
                f"the registry {registry} has no image {repository}:{reference} "
                f"(HTTP 404 to its manifest)"
            )
        return None  # 200, or 401 (needs a token): the pull decides

    @property
    def executable(self) -> str | None:
        """The podman executable, if installed."""
        return shutil.which(self._settings.podman)

    async def _podman(self, *args: str, seconds: float | None = None) -> tuple[int, str]:
        exe = self.executable
        if exe is None:
            return 127, "podman is not installed"
        process = await asyncio.create_subprocess_exec(
            exe,
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=self._env,
        )
        try:
            async with asyncio.timeout(seconds or self._settings.check_timeout_seconds):
                out, _ = await process.communicate()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            return 124, f"podman {args[0]} did not answer in time"
        return process.returncode or 0, out.decode(errors="replace").strip()

    async def _image_exists(self, image: str) -> tuple[int, str]:
        """``podman image exists``: one process for the callers that ask together (a caller
        that goes away does not stop it), and an absent answer (exit 1) reused for
        :data:`_ABSENT_TTL` seconds."""
        absent = self._absent.get(image)
        if absent is not None and time.monotonic() - absent[0] < _ABSENT_TTL:
            return absent[1], absent[2]
        task = self._checking.get(image)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._podman("image", "exists", image))
            self._checking[image] = task

            def done(finished: asyncio.Task[tuple[int, str]]) -> None:
                del self._checking[image]
                if not finished.cancelled() and finished.exception() is None:
                    code, output = finished.result()
                    if code == 1:
                        self._absent[image] = (time.monotonic(), code, output)

            task.add_done_callback(done)
        return await asyncio.shield(task)

    async def check_image(self, image: str) -> ImageCheck:  # noqa: PLR0911 - one answer per case
        """Available locally, or pullable under the deployment's policy (see the module
        docstring); a positive local answer is cached, an absent one for a few seconds."""
        cached = self._cache.get(image)
        if cached is not None and self.pull_policy != "always":
            return cached
        if self.executable is None:
            return ImageCheck(
                image=image,
                available=False,
                reason=(
                    f"image {image} cannot be used: podman is not installed on this machine "
                    "(apt-get install podman runc); " + how_to_provide(image)
                ),
            )
        code, output = await self._image_exists(image)
        local = code == 0
        if local and self.pull_policy != "always":
            check = ImageCheck(image=image, available=True)
            self._cache[image] = check
            return check
        detail = "" if code in (0, 1) else f" (podman: {output[:300]})"
        if self.pull_policy == "never":
            return ImageCheck(
                image=image,
                available=False,
                reason=f"image {image} is not available locally{detail} and this deployment "
                "pulls no images; " + how_to_provide(image),
            )
        registry = split_image(image)[0]
        allowed = self._settings.allowed_registries
        if registry not in allowed:
            if local:
                return ImageCheck(image=image, available=True)
            return ImageCheck(
                image=image,
                available=False,
                reason=f"image {image} is not available locally and its registry {registry} "
                f"is not one this deployment pulls from ({', '.join(allowed) or 'none'}); "
                + how_to_provide(image),
            )
        problem = await self._registry_problem(image)
        if problem is not None:
            if local:
                return ImageCheck(image=image, available=True)
            return ImageCheck(
                image=image,
                available=False,
                reason=f"image {image} cannot be pulled: {problem}; " + how_to_provide(image),
            )
        return ImageCheck(image=image, available=True, pull=True)

    async def pull(self, image: str, log_path: Path) -> None:
        """``podman pull``, its progress appended to ``log_path``."""
        exe = self.executable
        if exe is None:
            raise ImageUnavailableError(f"cannot pull {image}: podman is not installed")
        with log_path.open("ab") as log:
            process = await asyncio.create_subprocess_exec(
                exe,
                "pull",
                image,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                env=self._env,
            )
        try:
            async with asyncio.timeout(self._settings.pull_timeout_seconds):
                code = await process.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            raise ImageUnavailableError(
                f"pulling {image} took longer than {self._settings.pull_timeout_seconds:g} s"
            ) from None
        if code != 0:
            text = await anyio.Path(log_path).read_text(errors="replace")
            tail = text.strip().splitlines()[-3:]
            answer = " ".join(line.strip() for line in tail)[-600:]
            raise ImageUnavailableError(f"pulling {image} failed: {answer}")
        self._absent.pop(image, None)
        self._cache[image] = ImageCheck(image=image, available=True)

    def command(
        self,
        *,
        container_name: str,
        image: str,
        workspace: Path,
        command: str,
        env: dict[str, str],
        memory_limit_bytes: int | None,
        user: str | None,
        pull: str = "never",
    ) -> list[str]:
        """``podman run`` for one command of a step (options before the image)."""
        exe = self.executable or self._settings.podman
        argv = [
            exe,
            "run",
            "--rm",
            "--init",
            "--name",
            container_name,
            "--network",
            self._settings.network,
            "--read-only",
            "--tmpfs",
            "/tmp:rw,size=1g",  # noqa: S108 (inside the container)
            "--volume",
            f"{workspace}:/workspace:rw",
            "--workdir",
            "/workspace",
            "--pids-limit",
            str(self._settings.pids_limit),
            "--pull",
            pull,
        ]
        limit = memory_limit_bytes or memory_bytes(self._settings.default_memory_limit)
        if limit:
            argv += ["--memory", str(limit), "--memory-swap", str(limit)]
        if user:
            argv += ["--user", user]
        for key, value in sorted(env.items()):
            argv += ["--env", f"{key}={value}"]
        argv += [image, "bash", "-c", command]
        return argv

    async def stop(self, container_name: str) -> None:
        """Kill and remove the container (best effort)."""
        await self._podman("rm", "--force", "--time", "0", container_name, seconds=30)

    async def stop_run(self, run_id: str) -> None:
        """Remove the containers named after the run (``vre-<run id>-…``)."""
        if self.executable is None:
            return
        code, names = await self._podman(
            "ps",
            "--all",
            "--filter",
            f"name=^{container_prefix(run_id)}",
            "--format",
            "{{.Names}}",
        )
        if code == 0:
            for name in names.split():
                await self.stop(name)

    @property
    def process_env(self) -> dict[str, str]:
        """Environment of the podman client process (CONTAINERS_CONF)."""
        return dict(self._env)


class NoContainerRuntime:
    """Containers disabled by configuration: every image is "unavailable"."""

    name = "none"

    async def check_image(self, image: str) -> ImageCheck:
        """Never available."""
        return ImageCheck(
            image=image,
            available=False,
            reason=(
                f"image {image} cannot be used: containers are disabled on this deployment "
                "(VRE_WORKFLOWS_LOCAL__CONTAINERS__RUNTIME=none)"
            ),
        )

    def command(
        self,
        *,
        container_name: str,
        image: str,
        workspace: Path,
        command: str,
        env: dict[str, str],
        memory_limit_bytes: int | None,
        user: str | None,
        pull: str = "never",
    ) -> list[str]:
        """Unused (no image is ever available)."""
        raise RuntimeError("containers are disabled")

    async def pull(self, image: str, log_path: Path) -> None:
        """Containers are disabled."""
        raise ImageUnavailableError(f"cannot pull {image}: containers are disabled")

    @property
    def pull_policy(self) -> str:
        """Nothing is pulled."""
        return "never"

    async def stop(self, container_name: str) -> None:
        """Nothing to stop."""

    async def stop_run(self, run_id: str) -> None:
        """Nothing to stop."""
