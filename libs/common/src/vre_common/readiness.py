"""Readiness: each app registers checks of its dependencies; /readyz runs them all.

``/readyz`` answers whether *this process* can serve: its own database (and, in the embedded
mode, the mounted services' own databases). External systems — Rucio, REANA, Zenodo, VO
services, the other VRE services — are checked and reported (with the reason, and as the
``vre_dependency_up`` gauge) but never make the process unready: a Rucio blip must not take
every datalake pod out of its Service, leaving the gateway with no endpoints instead of
answering 503 with ``Retry-After`` itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import httpx
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from prometheus_client import Gauge
from pydantic import BaseModel, Field

from vre_common.errors import BackendUnavailableError

Check = Callable[[], Awaitable[None]]

DEPENDENCY_UP = Gauge(
    "vre_dependency_up",
    "1 when a dependency answered its last readiness check, else 0",
    ["dependency", "external"],
    multiprocess_mode="livemostrecent",  # the embedded mode on several processes
)


def healthz_check(service: str, url: str) -> Check:
    """A check that the VRE ``service`` at ``url`` answers its ``/healthz`` with 200."""

    async def check() -> None:
        try:
            async with httpx.AsyncClient(timeout=3.0) as client:
                response = await client.get(f"{url}/healthz")
        except httpx.HTTPError as exc:
            raise BackendUnavailableError(
                f"{service} service unreachable: {type(exc).__name__}"
            ) from exc
        if response.status_code != 200:
            raise BackendUnavailableError(f"{service} answered {response.status_code}")

    return check


@dataclass(frozen=True)
class ReadinessChecks:
    """An app's readiness checks by name; ``optional`` names the external systems."""

    checks: Mapping[str, Check] = field(default_factory=dict)
    optional: frozenset[str] = frozenset()


class DependencyState(BaseModel):
    """One dependency: up or down, and why."""

    name: str
    up: bool
    reason: str | None = None
    optional: bool = Field(
        default=False,
        description="An external system (Rucio, REANA, Zenodo, another service): reported, but "
        "its being down does not make this process unready — requests that need it get 503.",
    )


class Readiness(BaseModel):
    """The /readyz answer."""

    ready: bool
    dependencies: list[DependencyState]


def export_dependency_states(states: list[DependencyState]) -> None:
    """Set the ``vre_dependency_up`` gauge from checked states (alerts read it)."""
    for state in states:
        DEPENDENCY_UP.labels(state.name, str(state.optional).lower()).set(1 if state.up else 0)


async def run_checks(
    checks: dict[str, Check], limit: float = 3.0, optional: frozenset[str] = frozenset()
) -> Readiness:
    """Run every check concurrently, each bounded by ``limit`` seconds.

    Names in ``optional`` are the external systems: reported (and exported as the
    ``vre_dependency_up`` gauge) but they do not make the answer unready.
    """

    async def one(name: str, check: Check) -> DependencyState:
        try:
            await asyncio.wait_for(check(), limit)
        except TimeoutError:
            reason = f"no answer within {limit:g} s"
            return DependencyState(name=name, up=False, reason=reason, optional=name in optional)
        except Exception as exc:  # any failure means "not ready"; the reason is reported
            detail = getattr(exc, "detail", None) or str(exc) or type(exc).__name__
            return DependencyState(
                name=name, up=False, reason=str(detail)[:300], optional=name in optional
            )
        return DependencyState(name=name, up=True, optional=name in optional)

    states = await asyncio.gather(*(one(n, c) for n, c in checks.items()))
    export_dependency_states(states)
    return Readiness(ready=all(s.up or s.optional for s in states), dependencies=list(states))


def install_readiness(app: FastAPI, readiness: ReadinessChecks) -> None:
    """Serve /readyz from ``readiness`` (its ``optional`` checks: see the module docstring)."""

    @app.get(
        "/readyz",
        tags=["health"],
        summary="Readiness",
        description="200 when this process can serve (its own database answers); every "
        "external system it uses is listed too, up or down with the reason, without changing "
        "the status.",
        response_model=Readiness,
        responses={503: {"description": "This process cannot serve", "model": Readiness}},
    )
    async def readyz() -> JSONResponse:
        result = await run_checks(dict(readiness.checks), optional=readiness.optional)
        return JSONResponse(result.model_dump(), status_code=200 if result.ready else 503)
