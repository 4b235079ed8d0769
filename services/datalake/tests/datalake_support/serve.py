"""Serve a datalake app with uvicorn: ``python serve.py '<json config>'`` (tests only)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import uvicorn
from joserfc.jwk import RSAKey

from datalake_support import make_settings
from vre_common.auth import StaticKeySource, TokenValidator
from vre_common.logging import configure_logging
from vre_common.settings import AuthSettings
from vre_datalake.main import create_app


def main() -> None:
    configure_logging("INFO", json=True)  # as deployed: JSON lines, no rich tracebacks
    config = json.loads(sys.argv[1])
    validator = TokenValidator(
        AuthSettings(issuers=[config["issuer"]], audience=config["audience"]),
        StaticKeySource({config["issuer"]: [RSAKey.import_key(config["jwk"])]}),
    )
    app = create_app(make_settings(**config["settings"]), validator=validator)
    uvicorn.run(app, host="127.0.0.1", port=config["port"], log_level="warning")


if __name__ == "__main__":
    main()
