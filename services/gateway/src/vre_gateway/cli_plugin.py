"""The server's commands (`vre up`, `vre token`, `vre openapi`) joined to the client's `vre`.

The client's command loads every ``vre.cli_plugins`` entry point and calls it with its typer
app; this one adds the commands of :mod:`vre_gateway.cli` unchanged.
"""

from __future__ import annotations

import typer

from vre_gateway import cli


def register(app: typer.Typer) -> None:
    """Add the gateway's commands to ``app`` (the client's ``vre``)."""
    app.registered_commands.extend(cli.app.registered_commands)
