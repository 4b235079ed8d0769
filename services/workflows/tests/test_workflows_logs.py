"""Logs over real HTTP: follow streams lines as they are written; a big log streams flat."""

from __future__ import annotations

import time
import tracemalloc

import httpx

from services.workflows.tests.support.helpers import Harness, serial_spec, serve, step


async def test_follow_streams_new_lines_as_they_appear(wf: Harness) -> None:
    spec = serial_spec(
        [
            step("tick", "for i in 1 2 3 4 5; do echo tick $$i; sleep 0.4; done"),
            step("tock", "echo tock done"),
        ]
    )
    async with serve(wf.app) as base, httpx.AsyncClient(base_url=base, timeout=30) as client:
        run = (await client.post("/runs", json={"spec": spec}, headers=wf.headers())).json()
        started = time.monotonic()
        arrivals: list[tuple[float, str]] = []
        async with client.stream(
            "GET", f"/runs/{run['id']}/logs", params={"follow": "true"}, headers=wf.headers()
        ) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/plain")
            async for line in response.aiter_lines():
                arrivals.append((time.monotonic() - started, line))
        ended = time.monotonic() - started
    lines = [text for _, text in arrivals]
    ticks = [t for t, text in arrivals if text.startswith("tick ")]
    assert [text for text in lines if text.startswith("tick ")] == [
        f"tick {i}" for i in range(1, 6)
    ]
    assert "tock done" in lines
    assert any(text.startswith("==> step 1: tock") for text in lines)
    # The first tick reached the client while the step was still printing the others.
    assert ticks[0] < ticks[-1] - 1.0
    assert ended >= ticks[-1]
    done = await wf.get(run["id"])
    assert done["status"] == "finished"


async def test_follow_one_step_of_a_finished_run_ends(wf: Harness) -> None:
    run = await wf.submit(spec=serial_spec([step("a", "echo alpha"), step("b", "echo beta")]))
    await wf.wait(run["id"])
    response = await wf.client.get(
        f"/runs/{run['id']}/logs", params={"step": "1", "follow": "true"}, headers=wf.headers()
    )
    assert "beta" in response.text
    assert "alpha" not in response.text
    unknown = await wf.client.get(
        f"/runs/{run['id']}/logs", params={"step": "nope"}, headers=wf.headers()
    )
    assert unknown.status_code == 404
    assert "a, b" in unknown.json()["detail"]


async def test_a_log_of_many_megabytes_streams_with_flat_memory(wf: Harness) -> None:
    size_mb = 48
    spec = serial_spec(
        [step("loud", f"head -c {size_mb * 1024 * 1024} /dev/zero | tr '\\0' 'x' | fold -w 127")]
    )
    run = await wf.submit(spec=spec)
    done = await wf.wait(run["id"], within=120)
    assert done["status"] == "finished"
    log_size = wf.factory.manager.paths(run["id"]).step_log(0).stat().st_size
    assert log_size > size_mb * 1024 * 1024
    async with serve(wf.app) as base, httpx.AsyncClient(base_url=base, timeout=60) as client:
        tracemalloc.start()
        try:
            received = 0
            async with client.stream(
                "GET",
                f"/runs/{run['id']}/logs",
                params={"step": "loud", "follow": "true"},
                headers=wf.headers(),
            ) as response:
                async for chunk in response.aiter_raw():
                    received += len(chunk)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert received == log_size
    # Server and client share this process: both together stay far below the log's size.
    assert peak < 8 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB for a {log_size / 1e6:.0f} MB log"
