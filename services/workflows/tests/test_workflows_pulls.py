"""Images the way researchers name them: pulled from a real registry on loopback by policy.

Debian's docker-registry serves a tiny image (bash and cat from this machine); the workflows
service pulls it on first use (progress in the step's log), finds it cached afterwards, and
refuses at submission, with the registry's answer, a registry that is not allowed, one that
does not answer, and an image the registry does not have.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from services.workflows.tests.conftest import SettingsFactory
from services.workflows.tests.support.datalake import PosixDatalake
from services.workflows.tests.support.helpers import Harness, serial_spec, step
from services.workflows.tests.support.registry import (
    Registry,
    push_tiny_image,
    running_registry,
)
from vre_common.testing import TestIssuer, app_client, free_port
from vre_workflows.config import ContainerSettings
from vre_workflows.main import create_app


@pytest.fixture
async def pw(
    registry: tuple[Registry, str],
    make_settings: SettingsFactory,
    issuer: TestIssuer,
    datalake: PosixDatalake,
) -> AsyncIterator[Harness]:
    served, _ = registry
    down = f"127.0.0.1:{free_port()}"  # nothing listens there
    settings = make_settings(
        local={
            "allow_host_execution": False,
            "containers": ContainerSettings(
                runtime="podman",
                containers_conf=served.containers_conf,
                registries_conf=served.registries_conf,
                pull_policy="missing",
                allowed_registries=[served.host, down],
            ),
        }
    )
    app = create_app(settings, validator=issuer.validator(), datalake=datalake)
    app.state.down_registry = down
    async with app_client(app) as client:
        yield Harness(app=app, client=client, issuer=issuer, datalake=datalake)


async def _logs(h: Harness, run_id: str) -> str:
    response = await h.client.get(f"/runs/{run_id}/logs", headers=h.headers())
    return response.text


async def test_image_pulled_on_first_use_then_cached(
    pw: Harness, registry: tuple[Registry, str]
) -> None:
    served, image = registry
    served.forget(image)
    spec = serial_spec(
        [step("hello", "echo hello from $$(cat /proc/1/comm) > out.txt", image=image)],
        outputs=["out.txt"],
    )
    first = await pw.submit(spec=spec)
    assert first["steps"][0]["execution"] == "container"
    done = await pw.wait(first["id"], within=120)
    log = await _logs(pw, first["id"])
    assert done["status"] == "finished", log
    assert f"[vre] pulling {image} (pull policy missing)" in log
    assert "Writing manifest" in log  # podman's own progress
    assert served.has_locally(image)
    out = await pw.client.get(f"/runs/{first['id']}/outputs/out.txt", headers=pw.headers())
    assert out.text == "hello from podman-init\n"  # PID 1 of a container (--init)

    second = await pw.submit(spec=spec)
    again = await pw.wait(second["id"], within=60)
    log = await _logs(pw, second["id"])
    assert again["status"] == "finished", log
    assert "pulling" not in log  # cached


async def test_pulls_refused_up_front_with_the_registrys_answer(
    pw: Harness, registry: tuple[Registry, str]
) -> None:
    served, _ = registry

    async def refused(image: str) -> dict[str, Any]:
        body = await pw.submit(expect=422, spec=serial_spec([step("s", "true", image=image)]))
        assert body["type"].endswith("/image-unavailable")
        assert body["errors"][0]["loc"][-1] == "environment"
        message: str = body["errors"][0]["msg"]
        return {"msg": message}

    other = await refused("docker.io/library/debian:bookworm-slim")
    assert "its registry docker.io is not one this deployment pulls from" in other["msg"]
    assert served.host in other["msg"]

    missing = await refused(f"{served.host}/vre/absent:1")
    assert f"the registry {served.host} has no image vre/absent:1" in missing["msg"]

    down: str = pw.app.state.down_registry
    unreachable = await refused(f"{down}/vre/tiny:1")
    assert f"the registry {down} does not answer" in unreachable["msg"]


async def test_registry_gone_before_the_pull_fails_the_run_before_any_step(
    registry: tuple[Registry, str],
    make_settings: SettingsFactory,
    issuer: TestIssuer,
    datalake: PosixDatalake,
    tmp_path: Path,
) -> None:
    """Allowed and answering at submission, gone when the run starts (it waited for a slot):
    the run fails with podman's answer, and no step ran."""
    served, image = registry
    served.forget(image)
    with running_registry(tmp_path / "second") as second:
        copy = push_tiny_image(second, "vre/tiny:1", tmp_path)
        both = tmp_path / "registries.conf"
        both.write_text(
            "unqualified-search-registries = []\n"
            + "".join(
                f'\n[[registry]]\nlocation = "{host}"\ninsecure = true\n'
                for host in (served.host, second.host)
            )
        )
        settings = make_settings(
            local={
                "allow_host_execution": False,
                "max_concurrent_runs": 1,
                "containers": ContainerSettings(
                    runtime="podman",
                    containers_conf=served.containers_conf,
                    registries_conf=both,
                    allowed_registries=[served.host, second.host],
                ),
            }
        )
        app = create_app(settings, validator=issuer.validator(), datalake=datalake)
        async with app_client(app) as client:
            h = Harness(app=app, client=client, issuer=issuer, datalake=datalake)
            blocker = await h.submit(spec=serial_spec([step("block", "sleep 3", image=image)]))
            run = await h.submit(
                spec=serial_spec(
                    [
                        step("first", "echo ran > ran.txt", image=copy),
                        step("second", "true", image=copy),
                    ]
                )
            )
            assert h.factory.manager.queued_ids() == [run["id"]]
            second.process.terminate()  # the registry goes away while the run waits
            second.process.wait(10)
            done = await h.wait(run["id"], within=120)
            assert (await h.wait(blocker["id"], within=120))["status"] == "finished"
            assert done["status"] == "failed", done
            assert f"pulling {copy} failed" in done["error"]["detail"]
            assert "connection refused" in done["error"]["detail"]
            assert [s["status"] for s in done["steps"]] == ["failed", "skipped"]
            assert not (h.factory.manager.paths(run["id"]).workspace / "ran.txt").exists()
