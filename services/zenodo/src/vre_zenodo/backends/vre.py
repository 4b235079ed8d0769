"""Adapters to the other VRE services, called over HTTP with the caller's bearer token."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from vre_common.clients.datalake import DatalakeClient, raise_for_problem
from vre_common.errors import (
    BadGatewayError,
    InvalidInputError,
    NotFoundError,
    ServiceNotConfiguredError,
)
from vre_common.http import backend_call, make_http_client
from vre_common.run_record import RunRecord
from vre_zenodo.backends.base import DatalakePort
from vre_zenodo.config import ServiceLinkSettings
from vre_zenodo.errors import RunNotFoundError, SoftwareNotFoundError


def _not_configured(service: str, setting: str) -> ServiceNotConfiguredError:
    return ServiceNotConfiguredError(
        f"the {service} service is not configured for the zenodo service (set {setting})",
        retry_after=60,
    )


class _ServiceClient:
    """A pooled client of one VRE service."""

    service = "service"
    setting = "VRE_ZENODO_…__URL"

    def __init__(self, settings: ServiceLinkSettings, *, http: httpx.AsyncClient | None = None):
        self._url = settings.url
        self._owns_http = http is None
        self._http = http or make_http_client(settings.http)

    async def aclose(self) -> None:
        """Close the pool if this client created it."""
        if self._owns_http:
            await self._http.aclose()

    async def _get(
        self, path: str, token: str, operation: str, params: dict[str, str] | None = None
    ) -> httpx.Response:
        if not self._url:
            raise _not_configured(self.service, self.setting)
        async with backend_call(self.service, operation):
            return await self._http.get(
                self._url + path,
                params=params,
                headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            )

    async def _post(
        self, path: str, token: str, operation: str, body: Any | None = None
    ) -> httpx.Response:
        if not self._url:
            raise _not_configured(self.service, self.setting)
        async with backend_call(self.service, operation):
            return await self._http.post(
                self._url + path,
                json=body,
                headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            )


class WorkflowsClient(_ServiceClient):
    """The workflows service: ``GET /runs/{id}`` gives a run and its outputs' DIDs."""

    service = "workflows"
    setting = "VRE_ZENODO_WORKFLOWS__URL"

    async def output_dids(self, token: str, run_id: str) -> list[str]:
        """Every registered output DID of a run (422 if it has none yet)."""
        response = await self._get(f"/runs/{quote(run_id, safe='')}", token, "get_run")
        try:
            await raise_for_problem(response, "get_run")
        except NotFoundError as exc:
            raise RunNotFoundError(f"the workflows service knows no run {run_id!r}") from exc
        try:
            run: dict[str, Any] = response.json()
            outputs = run.get("outputs") or []
            dids = [str(o["did"]) for o in outputs if isinstance(o, dict) and o.get("did")]
        except (ValueError, AttributeError, TypeError) as exc:
            raise BadGatewayError("the workflows service answered an unusable run") from exc
        if not dids:
            raise InvalidInputError(
                f"run {run_id} has no outputs registered in the Data Lake "
                f"(status {run.get('status', 'unknown')})",
                errors=[{"loc": ["body", "run_id"], "msg": "no registered outputs",
                         "type": "value_error"}],
            )  # fmt: skip
        return dids

    async def run_record(self, token: str, run_id: str) -> RunRecord:
        """The run's record; a workflows service without one is a 502 (it is too old)."""
        response = await self._get(
            f"/runs/{quote(run_id, safe='')}/record", token, "get_run_record"
        )
        try:
            await raise_for_problem(response, "get_run_record")
        except NotFoundError as exc:
            raise RunNotFoundError(
                f"the workflows service gives no record of run {run_id!r}"
            ) from exc
        try:
            return RunRecord.model_validate(response.json())
        except ValueError as exc:
            raise BadGatewayError("the workflows service answered an unusable run record") from exc

    async def submit_run(self, token: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Submit a run as the caller; the workflows service's problems pass through."""
        response = await self._post("/runs", token, "submit_run", dict(body))
        await raise_for_problem(response, "submit_run")
        return _json_object(response, "run")

    async def get_run(self, token: str, run_id: str) -> dict[str, Any]:
        """A run as the caller sees it."""
        response = await self._get(f"/runs/{quote(run_id, safe='')}", token, "get_run")
        try:
            await raise_for_problem(response, "get_run")
        except NotFoundError as exc:
            raise RunNotFoundError(f"the workflows service knows no run {run_id!r}") from exc
        return _json_object(response, "run")

    async def cancel_run(self, token: str, run_id: str) -> None:
        """Cancel a run; one that is already over (409) is left as it is."""
        response = await self._post(f"/runs/{quote(run_id, safe='')}/cancel", token, "cancel_run")
        if response.status_code == 409:
            return
        await raise_for_problem(response, "cancel_run")


def _json_object(response: httpx.Response, what: str) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError as exc:
        raise BadGatewayError(f"the workflows service answered an unusable {what}") from exc
    if not isinstance(data, dict):
        raise BadGatewayError(f"the workflows service answered an unusable {what}")
    return data


class CatalogueClient(_ServiceClient):
    """The catalogue: ``GET /software/{id}/zenodo`` gives a Zenodo metadata block."""

    service = "catalogue"
    setting = "VRE_ZENODO_CATALOGUE__URL"

    async def zenodo_metadata(
        self, token: str, software_id: str, version: str | None = None
    ) -> dict[str, Any]:
        """The entry's metadata block (its ``metadata`` member, or the whole answer)."""
        params = {"version": version} if version else None
        path = f"/software/{quote(software_id, safe='')}/zenodo"
        response = await self._get(path, token, "software_zenodo", params)
        try:
            await raise_for_problem(response, "software_zenodo")
        except NotFoundError as exc:
            raise SoftwareNotFoundError(
                f"the catalogue has no software {software_id!r}"
                + (f" version {version!r}" if version else "")
            ) from exc
        try:
            data = response.json()
        except ValueError as exc:
            raise BadGatewayError("the catalogue answered invalid JSON") from exc
        block = data.get("metadata", data) if isinstance(data, dict) else None
        if not isinstance(block, dict):
            raise BadGatewayError("the catalogue answered an unusable metadata block")
        return block


class DatalakeServiceConnector:
    """The datalake service through :class:`DatalakeClient`, one sibling per caller token."""

    def __init__(self, settings: ServiceLinkSettings) -> None:
        self._client = (
            DatalakeClient(settings.url, settings=settings.http) if settings.url else None
        )

    async def aclose(self) -> None:
        """Close the shared pool."""
        if self._client is not None:
            await self._client.aclose()

    def for_token(self, token: str) -> DatalakePort:
        """The Data Lake acting as the holder of ``token``."""
        if self._client is None:
            raise _not_configured("datalake", "VRE_ZENODO_DATALAKE__URL")
        return self._client.with_token(token)
