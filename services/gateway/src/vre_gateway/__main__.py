"""`python -m vre_gateway` is the `vre` command."""

from vre_gateway.cli import app

app()
