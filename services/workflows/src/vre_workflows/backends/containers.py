"""Container runtimes for the local executor: podman (rootful, locally available images only)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
from pathlib import Path

from vre_workflows.backends.base import ImageCheck
from vre_workflows.config import ContainerSettings

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
        self._cache: dict[str, ImageCheck] = {}

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

    async def check_image(self, image: str) -> ImageCheck:
        """``podman image exists``; a positive answer is cached, a negative one is not."""
        cached = self._cache.get(image)
        if cached is not None:
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
        code, output = await self._podman("image", "exists", image)
        if code == 0:
            check = ImageCheck(image=image, available=True)
            self._cache[image] = check
            return check
        detail = "" if code == 1 else f" (podman: {output[:300]})"
        return ImageCheck(
            image=image,
            available=False,
            reason=f"image {image} is not available locally{detail}; " + how_to_provide(image),
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
            "never",
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
    ) -> list[str]:
        """Unused (no image is ever available)."""
        raise RuntimeError("containers are disabled")

    async def stop(self, container_name: str) -> None:
        """Nothing to stop."""

    async def stop_run(self, run_id: str) -> None:
        """Nothing to stop."""
