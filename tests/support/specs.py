"""Workflow specifications the end-to-end tests submit."""

from __future__ import annotations

from typing import Any

IMAGE = "docker.io/library/debian:bookworm-slim"


def serial_spec(*commands: str, name: str = "step", image: str = IMAGE) -> dict[str, Any]:
    """A REANA serial workflow of one step running ``commands``."""
    return {
        "version": "0.9.4",
        "inputs": {"parameters": {}},
        "workflow": {
            "type": "serial",
            "specification": {
                "steps": [{"name": name, "environment": image, "commands": list(commands)}]
            },
        },
    }
