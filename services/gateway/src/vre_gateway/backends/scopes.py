"""Creating a project's Data Lake scope, and asking whether it holds data.

The port is what the project rules need; the HTTP adapter calls the datalake service with the
caller's token (``POST {datalake}/scopes``; ``GET {datalake}/dids/{scope}`` for "has data"). In
the embedded mode the in-process adapter calls the mounted datalake's scope service directly
(what it offered through its ``GatewayLink``): no token, no HTTP hop, and no project lookup in
the datalake (the project's row is not committed yet when its scope is created).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from typing import Protocol, cast

import httpx

from vre_common.clients.datalake import DatalakeClient, Did, raise_for_problem
from vre_common.errors import ConflictError, NotFoundError
from vre_common.http import backend_call, make_http_client
from vre_common.link import MountedServices
from vre_common.settings import HttpClientSettings


class ScopeProvisioner(Protocol):
    """The Data Lake side of a project."""

    async def create_scope(
        self, scope: str, *, project: str, quota_bytes: int | None, token: str | None
    ) -> None:
        """Create ``scope`` with an account limit (an existing scope is accepted as is)."""
        ...

    async def scope_has_data(self, scope: str, *, token: str | None) -> bool:
        """True if any DID is registered in ``scope``."""
        ...


class InProcessScopeProvisioner:
    """The embedded mode's provisioner: the scope service of the datalake mounted in the
    gateway's process (``MountedServices.scope_admin``), else ``otherwise`` (over HTTP).

    The gateway is trusted in-process, so no token is needed; the datalake acts with its own
    Rucio rights.
    """

    def __init__(self, mounted: MountedServices, *, otherwise: ScopeProvisioner) -> None:
        self.mounted = mounted
        self.otherwise = otherwise

    async def create_scope(
        self, scope: str, *, project: str, quota_bytes: int | None, token: str | None
    ) -> None:
        admin = self.mounted.scope_admin
        if admin is None:
            await self.otherwise.create_scope(
                scope, project=project, quota_bytes=quota_bytes, token=token
            )
            return
        try:
            await admin.create_project_scope(scope, project=project, quota_bytes=quota_bytes)
        except ConflictError:
            return  # as over HTTP: an existing proj.* scope is the project's

    async def scope_has_data(self, scope: str, *, token: str | None) -> bool:
        admin = self.mounted.scope_admin
        if admin is None:
            return await self.otherwise.scope_has_data(scope, token=token)
        return await admin.scope_has_data(scope)


class HttpScopeProvisioner:
    """The datalake service over HTTP, acting with the caller's token.

    With ``service_token`` (e.g. a client-credentials token of the gateway), scope creation
    acts as the gateway instead: the project is not committed yet when its scope is created,
    so the datalake cannot check the caller's project role at that moment.
    """

    def __init__(
        self,
        datalake_url: str,
        *,
        http: httpx.AsyncClient | None = None,
        service_token: Callable[[], Awaitable[str]] | None = None,
    ) -> None:
        self.base_url = datalake_url.rstrip("/")
        self._service_token = service_token
        self._owns_http = http is None
        self._http = http or make_http_client(HttpClientSettings(read_timeout=30.0))

    async def aclose(self) -> None:
        """Close the HTTP client if this adapter created it."""
        if self._owns_http:
            await self._http.aclose()

    async def create_scope(
        self, scope: str, *, project: str, quota_bytes: int | None, token: str | None
    ) -> None:
        headers = {"Accept": "application/json"}
        if self._service_token is not None:
            token = await self._service_token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        body = {"scope": scope, "project": project, "quota_bytes": quota_bytes}
        async with backend_call("datalake", "create_scope"):
            response = await self._http.post(f"{self.base_url}/scopes", json=body, headers=headers)
        try:
            await raise_for_problem(response, "create_scope")
        except ConflictError:
            return  # proj.* scopes are only ever created for projects: an existing one is ours

    async def scope_has_data(self, scope: str, *, token: str | None) -> bool:
        client = DatalakeClient(self.base_url, token, http=self._http)
        try:
            async with aclosing(cast("AsyncGenerator[Did, None]", client.list_dids(scope))) as dids:
                async for _ in dids:
                    return True
        except NotFoundError:
            return False
        return False
