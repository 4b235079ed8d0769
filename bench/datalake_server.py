"""A gateway with the datalake mounted, served by uvicorn, for the Data Lake benchmark.

Run as ``python -m bench.datalake_server PORT RUCIO_URL USER PASSWORD KEYFILE [DAV_TOKEN
DAV_CA]`` (the last two for a WebDAV storage element: its bearer token and CA file); its peak
RSS (VmHWM) is what the benchmark reads.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import uvicorn
from joserfc.jwk import RSAKey

from vre_common.testing import TestIssuer
from vre_datalake.config import DatalakeSettings
from vre_datalake.main import create_app as datalake_app
from vre_gateway.config import GatewaySettings
from vre_gateway.factory import Factory
from vre_gateway.main import create_app


def main() -> None:
    port, rucio_url, user, password, keyfile = sys.argv[1:6]
    storage: dict[str, str] = {"default_rse": "VRE-DISK-1"}
    if len(sys.argv) >= 8:
        storage |= {"webdav_token": sys.argv[6], "webdav_verify": sys.argv[7]}
    issuer = TestIssuer()
    issuer.key = RSAKey.import_key(json.loads(Path(keyfile).read_text()))
    settings = GatewaySettings(rate_limit={"enabled": False})
    factory = Factory(settings, validator=issuer.validator())
    datalake = datalake_app(
        DatalakeSettings(
            rucio={"url": rucio_url, "service_username": user, "service_password": password},
            storage=storage,
        ),
        link=factory.link,
    )
    app = create_app(settings, factory=factory, service_apps={"datalake": datalake})
    uvicorn.run(app, host="127.0.0.1", port=int(port), log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
