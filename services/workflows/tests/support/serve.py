"""Run the workflows app in its own process (for tests that kill it): ``python -m … config.json``.

The config holds the settings (as JSON), the test issuer and its public key, and the port.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import uvicorn
from joserfc.jwk import RSAKey

from vre_common.auth import StaticKeySource, TokenValidator
from vre_common.settings import AuthSettings
from vre_workflows.config import WorkflowsSettings
from vre_workflows.main import create_app


def main() -> None:
    config = json.loads(Path(sys.argv[1]).read_text())
    settings = WorkflowsSettings.model_validate(config["settings"])
    key = RSAKey.import_key(config["public_key"])
    validator = TokenValidator(
        AuthSettings(issuers=[config["issuer"]], audience=config["audience"]),
        StaticKeySource({config["issuer"]: [key]}),
    )
    app = create_app(settings, validator=validator)
    uvicorn.run(app, host="127.0.0.1", port=int(config["port"]), log_level="warning")


if __name__ == "__main__":
    main()
