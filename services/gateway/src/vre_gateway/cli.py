"""The `vre` command: start the embedded VRE, get a development token, print the OpenAPI."""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    from vre_common.settings import AuthSettings
    from vre_gateway.config import GatewaySettings
    from vre_gateway.dev_issuer import DevIssuer

app = typer.Typer(help="VRE — Virtual Research Environment gateway.", no_args_is_help=True)
console = Console(stderr=True, soft_wrap=True)

RUNTIME_FILE = "runtime.json"


def _data_dir(data: Path | None) -> Path:
    return (data or Path(os.environ.get("VRE_DATA", ".vre"))).resolve()


@app.command()
def up(
    port: Annotated[int | None, typer.Option(help="Port (default VRE_PORT or 8000).")] = None,
    host: Annotated[str | None, typer.Option(help="Bind address (default 127.0.0.1).")] = None,
    data: Annotated[
        Path | None, typer.Option(help="Data folder (default VRE_DATA or ./.vre).")
    ] = None,
    processes: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Processes serving requests (default VRE_PROCESSES, else 2 on a machine with "
            "two cores or more: a front process serving the Data Lake and forwarding the rest "
            "to the one that runs everything else).",
        ),
    ] = None,
) -> None:
    """Start the whole VRE in embedded mode (what `make run` runs)."""
    count = processes or int(os.environ.get("VRE_PROCESSES") or 0) or _default_processes()
    if count > 1:  # before prometheus_client loads: the processes share their metrics
        from vre_common.metrics_files import share_metrics

        share_metrics()

    from vre_common.auth import build_validator
    from vre_common.logging import configure_logging
    from vre_gateway.config import GatewaySettings
    from vre_gateway.embedded import (
        DataFolderInUseError,
        build_embedded,
        old_sqlite_files,
        serve,
        start_backends,
    )

    overrides: dict[str, Any] = {"mode": "embedded", "data": _data_dir(data)}
    if port is not None:
        overrides["port"] = port
    if host is not None:
        overrides["host"] = host
    settings = GatewaySettings(**overrides)
    if not os.environ.get("VRE_DEV_ISSUER__ENABLED"):
        settings.dev_issuer.enabled = True
    configure_logging(settings.log_level)
    settings.data.mkdir(parents=True, exist_ok=True)
    # uvicorn re-raises the signal that stopped it: make SIGTERM unwind like Ctrl-C, so the
    # backends started below are always stopped.
    signal.signal(signal.SIGTERM, _exit_on_signal)

    dev, auth = _development_issuer(settings)
    validator = build_validator(auth)

    try:
        with console.status("Starting the embedded backends (PostgreSQL, Rucio, daemons)…"):
            backends = start_backends(settings)
    except DataFolderInUseError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from exc
    _note_old_files(old_sqlite_files(settings.data), settings.data)
    try:
        if "VRE_DATABASE__URL" not in os.environ and backends.postgres is not None:
            # projects, provenance and audit persist in the embedded PostgreSQL server
            settings.database = settings.database.model_copy(update=backends.database("gateway"))
        gateway, front = build_embedded(
            settings,
            validator=validator,
            backends=backends,
            processes=count,
            dev_issuer=dev,
            auth=auth,
        )
        runtime = {"url": settings.base_url, "issuer": dev.issuer if dev else None}
        (settings.data / RUNTIME_FILE).write_text(
            json.dumps({**runtime, "pid": os.getpid(), **backends.info}, indent=2)
        )
        _banner(settings.base_url, dev)
        serve(gateway, settings, backends=backends, front_settings=front, processes=count)
    finally:
        backends.stop()
        (settings.data / RUNTIME_FILE).unlink(missing_ok=True)


def _development_issuer(settings: GatewaySettings) -> tuple[DevIssuer | None, AuthSettings]:
    """The development issuer (when enabled) and the auth settings that trust it."""
    from vre_gateway.dev_issuer import DevIssuer

    auth = settings.auth
    if not settings.dev_issuer.enabled:
        return None, auth
    dev = DevIssuer(settings.data, settings.dev_issuer_url, settings.dev_issuer)
    auth = auth.model_copy(update={"issuers": [*auth.issuers, dev.issuer]})
    if auth.audience is None:
        auth = auth.model_copy(update={"audience": settings.dev_issuer.audience})
    return dev, auth


def _note_old_files(files: list[Path], data: Path) -> None:
    for old in files:
        console.print(
            f"[yellow]note:[/] {old} is a database of an earlier, SQLite-based VRE; it is not "
            f"read any more (everything lives in the PostgreSQL server under {data / 'postgres'})"
        )


def _default_processes() -> int:
    """Two processes where there is a second core (a front beside the primary), else one."""
    return 2 if (os.cpu_count() or 1) >= 2 else 1


def _exit_on_signal(signum: int, _: object) -> None:
    raise SystemExit(128 + signum)


def _banner(url: str, dev: DevIssuer | None) -> None:
    console.print(f"\n[bold green]VRE is up[/] at {url}")
    console.print(f"  start here    {url}/   (the dashboard: {url}/app)")
    console.print(f"  API docs      {url}/docs   (OpenAPI: {url}/openapi.json)")
    console.print(f"  readiness     {url}/readyz")
    if dev:
        users = ", ".join(f"{u} / {p}" for u, p in sorted(dev.passwords.items()))
        console.print(f"  sign in as    {users}   (user / password)")
        console.print("  get a token   .venv/bin/vre token alice      (users: alice, bob, carol)")
        console.print(
            f'  first call    curl -H "Authorization: Bearer $(.venv/bin/vre token alice)" {url}/me'
        )
    console.print("Stop with Ctrl-C.\n")


@app.command()
def token(
    user: Annotated[str, typer.Argument(help="A development user (alice, bob, carol, …).")],
    lifetime: Annotated[int | None, typer.Option(help="Seconds (default 3600).")] = None,
    data: Annotated[
        Path | None, typer.Option(help="Data folder (default VRE_DATA or ./.vre).")
    ] = None,
) -> None:
    """Print an access token from the embedded development issuer."""
    from vre_common.errors import VreError
    from vre_gateway.config import GatewaySettings
    from vre_gateway.dev_issuer import DevIssuer

    folder = _data_dir(data)
    settings = GatewaySettings(data=folder)
    runtime = folder / RUNTIME_FILE
    issuer = settings.dev_issuer_url
    if runtime.exists():
        issuer = json.loads(runtime.read_text()).get("issuer") or issuer
    try:
        dev = DevIssuer(folder, issuer, settings.dev_issuer)
        print(dev.issue(user, lifetime=lifetime))
    except VreError as exc:
        console.print(f"[red]{exc.detail}[/]")
        raise typer.Exit(2) from exc


@app.command()
def openapi() -> None:
    """Print the merged OpenAPI document (what docs/openapi.json holds)."""
    from vre_common.auth import StaticKeySource, TokenValidator
    from vre_common.settings import AuthSettings
    from vre_gateway.config import GatewaySettings
    from vre_gateway.embedded import build_service_apps
    from vre_gateway.factory import Factory
    from vre_gateway.main import create_app

    with tempfile.TemporaryDirectory() as scratch:  # nothing of the spec depends on it
        settings = GatewaySettings(data=Path(scratch))
        validator = TokenValidator(AuthSettings(), StaticKeySource({}))
        factory = Factory(settings, validator=validator)
        gateway = create_app(
            settings, factory=factory, service_apps=build_service_apps(settings, factory.link)
        )
        json.dump(gateway.openapi(), sys.stdout, indent=2, sort_keys=False)
        sys.stdout.write("\n")
