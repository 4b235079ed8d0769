"""Provision storage elements, distances and quotas on a Rucio server over its REST API.

Every call is idempotent: an RSE, protocol, attribute or distance that already exists is
left as it is (distances are updated), so provisioning can run at each start-up.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote, urlsplit

import httpx

from vre_rucio_local.errors import RucioSetupError

POSIX_IMPL = "rucio.rse.protocols.posix.Default"
WEBDAV_IMPL = "rucio.rse.protocols.webdav.Default"
DEFAULT_ACCOUNT_LIMIT = 10**15  # 1 PB: the embedded deployment does not enforce quotas
_ALL_OPERATIONS = {"read": 1, "write": 1, "delete": 1}
# The conveyor only picks protocols that declare third-party copy (NULL means "cannot").
_WAN_OPERATIONS = {**_ALL_OPERATIONS, "third_party_copy_read": 1, "third_party_copy_write": 1}


def get_auth_token(
    url: str,
    username: str,
    password: str,
    *,
    account: str = "root",
    timeout: float = 10.0,
) -> str:
    """Log in with user name and password (``GET /auth/userpass``) and return the token."""
    response = httpx.get(
        f"{url}/auth/userpass",
        headers={
            "X-Rucio-Account": account,
            "X-Rucio-Username": username,
            "X-Rucio-Password": password,
        },
        timeout=timeout,
    )
    token = response.headers.get("X-Rucio-Auth-Token")
    if response.status_code != 200 or not token:
        raise RucioSetupError(
            f"userpass login of {username!r} as {account!r} failed: "
            f"{response.status_code} {response.text[:300]}",
            status_code=response.status_code,
        )
    return str(token)


@dataclass(frozen=True, kw_only=True)
class PosixRse:
    """A storage element whose files live in a local folder (``file://`` PFNs)."""

    name: str
    prefix: Path
    attributes: Mapping[str, str | bool | int] = field(default_factory=dict)


class RucioAdmin:
    """Minimal synchronous admin client for the provisioning calls of the Rucio REST API."""

    def __init__(
        self,
        url: str,
        *,
        username: str,
        password: str,
        account: str = "root",
        timeout: float = 30.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.account = account
        self._username = username
        self._password = password
        self._http = httpx.Client(base_url=self.url, timeout=timeout)
        self._token: str | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()

    def token(self) -> str:
        """Return a cached admin token, logging in on first use."""
        if self._token is None:
            self._token = get_auth_token(
                self.url, self._username, self._password, account=self.account
            )
        return self._token

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        ok: Iterable[int] = (200, 201),
        exists_ok: bool = False,
    ) -> httpx.Response:
        """Call the API as the admin; 409 counts as success when ``exists_ok``."""
        response = self._http.request(
            method, path, json=json, headers={"X-Rucio-Auth-Token": self.token()}
        )
        accepted = set(ok) | ({409} if exists_ok else set())
        if response.status_code not in accepted:
            raise RucioSetupError(
                f"{method} {path} answered {response.status_code}: {response.text[:300]}",
                status_code=response.status_code,
            )
        return response

    # --- storage elements ---------------------------------------------------------------

    def list_rses(self) -> list[str]:
        """Names of every RSE known to the server."""
        response = self.request("GET", "/rses/")
        return [
            item["rse"]
            for item in (_json_line(line) for line in response.text.splitlines())
            if item
        ]

    def ensure_rse(self, name: str, *, deterministic: bool = True) -> None:
        """Create an RSE unless it exists."""
        # Only non-defaults are sent: Rucio logs a warning for every JSON boolean it parses.
        body = {} if deterministic else {"deterministic": "false"}
        self.request("POST", f"/rses/{quote(name)}", json=body, exists_ok=True)

    def ensure_protocol(self, rse: str, protocol: Mapping[str, Any]) -> None:
        """Add a protocol (scheme, host, port, prefix, impl, domains), or update it."""
        scheme = quote(str(protocol["scheme"]))
        response = self.request(
            "POST", f"/rses/{quote(rse)}/protocols/{scheme}", json=dict(protocol), exists_ok=True
        )
        if response.status_code == 409:
            host, port = quote(str(protocol["hostname"])), int(protocol["port"])
            update = {k: v for k, v in protocol.items() if k in {"prefix", "impl", "domains"}}
            self.request("PUT", f"/rses/{quote(rse)}/protocols/{scheme}/{host}/{port}", json=update)

    def set_rse_attribute(self, rse: str, key: str, value: str | bool | int) -> None:
        """Set an RSE attribute (an existing value is kept)."""
        self.request(
            "POST",
            f"/rses/{quote(rse)}/attr/{quote(key)}",
            json={"value": value},
            exists_ok=True,
        )

    def ensure_distance(self, source: str, destination: str, distance: int = 1) -> None:
        """Make ``destination`` reachable from ``source`` (the conveyor needs a distance)."""
        path = f"/rses/{quote(source)}/distances/{quote(destination)}"
        response = self.request("POST", path, json={"distance": distance}, exists_ok=True)
        if response.status_code == 409:
            self.request("PUT", path, json={"distance": distance})

    def set_account_limit(self, account: str, rse: str, nbytes: int) -> None:
        """Set the local quota of ``account`` on ``rse``."""
        self.request(
            "POST",
            f"/accountlimits/local/{quote(account)}/{quote(rse)}",
            json={"bytes": nbytes},
        )


def posix_protocol(prefix: Path) -> dict[str, Any]:
    """The ``file`` protocol of a POSIX RSE rooted at ``prefix``."""
    return {
        "scheme": "file",
        "hostname": "localhost",
        "port": 0,
        "prefix": f"{prefix.resolve()}/",
        "impl": POSIX_IMPL,
        "domains": {"lan": dict(_ALL_OPERATIONS), "wan": dict(_WAN_OPERATIONS)},
    }


def webdav_protocol(url: str, *, impl: str = WEBDAV_IMPL) -> dict[str, Any]:
    """The ``https`` protocol of a WebDAV RSE whose root folder is ``url``."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        # Rucio's webdav protocols only build working URLs for https (recipes/webdav-rse.md).
        raise RucioSetupError(f"a WebDAV RSE needs an https:// URL with a host, got {url!r}")
    prefix = parts.path if parts.path.endswith("/") else f"{parts.path}/"
    return {
        "scheme": "https",
        "hostname": parts.hostname,
        "port": parts.port or 443,
        "prefix": prefix,
        "impl": impl,
        "domains": {"lan": dict(_ALL_OPERATIONS), "wan": dict(_WAN_OPERATIONS)},
    }


def provision_posix_rses(
    admin: RucioAdmin,
    rses: Iterable[PosixRse],
    *,
    account_limit: int = DEFAULT_ACCOUNT_LIMIT,
) -> None:
    """Create POSIX RSEs, distances between every pair both ways, and quotas for the admin."""
    rses = list(rses)
    for rse in rses:
        rse.prefix.mkdir(parents=True, exist_ok=True)
        admin.ensure_rse(rse.name)
        admin.ensure_protocol(rse.name, posix_protocol(rse.prefix))
        for key, value in {"vre_local": True, "vre_kind": "posix", **rse.attributes}.items():
            admin.set_rse_attribute(rse.name, key, value)
        admin.set_account_limit(admin.account, rse.name, account_limit)
    _connect(admin, [rse.name for rse in rses])


def add_webdav_rse(
    admin: RucioAdmin,
    name: str,
    url: str,
    *,
    impl: str = WEBDAV_IMPL,
    attributes: Mapping[str, str | bool | int] | None = None,
    account_limit: int = DEFAULT_ACCOUNT_LIMIT,
) -> None:
    """Register a WebDAV storage (``https://host:port/prefix/``) as an RSE.

    The prefix folder must already exist on the server; it is linked by distances to every
    other RSE. Use ``impl=rucio.rse.protocols.webdav.NoRename`` for servers (nginx) that
    answer MOVE with 204.
    """
    admin.ensure_rse(name)
    admin.ensure_protocol(name, webdav_protocol(url, impl=impl))
    for key, value in {"vre_kind": "webdav", **(attributes or {})}.items():
        admin.set_rse_attribute(name, key, value)
    admin.set_account_limit(admin.account, name, account_limit)
    _connect(admin, admin.list_rses(), only=name)


def _connect(admin: RucioAdmin, names: list[str], *, only: str | None = None) -> None:
    for source in names:
        for destination in names:
            if source != destination and only in (None, source, destination):
                admin.ensure_distance(source, destination)


def _json_line(line: str) -> dict[str, Any] | None:
    line = line.strip()
    if not line:
        return None
    value = json.loads(line)
    return value if isinstance(value, dict) else None
