"""What every resource module of the Rucio adapter shares: who a call acts as, and converters."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

from vre_common.errors import BadGatewayError
from vre_datalake.backends.base import Actor
from vre_datalake.backends.rucio.rest import BearerAuth, RucioAuth, RucioRest
from vre_datalake.config import RucioSettings


def parse_time(value: Any) -> datetime | None:
    """Rucio writes RFC 1123 dates in some answers and ISO 8601 in others."""
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        try:
            parsed = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def did_type(value: Any) -> str:
    """Our DID type (``file``, ``dataset``, ``container``) of Rucio's."""
    text = str(value or "file").lower()
    return text if text in ("file", "dataset", "container") else "file"


def did_path(scope: str, name: str) -> str:
    """``/dids/{scope}/{name}`` with both quoted (names keep their slashes)."""
    return f"/dids/{quote(scope, safe='')}/{quote(name, safe='/')}"


async def collect(stream: AsyncIterator[Any]) -> list[Any]:
    """Every document of a stream (for the short listings only)."""
    return [item async for item in stream]


class RucioCalls:
    """State and identities every resource module uses (set up by ``RucioDatalakeBackend``).

    Who the calls act as (``identity_mode``):

    - ``service``: calls run as the user's account with tokens the service obtains through its
      own userpass identity (mapped to every account it creates); operations Rucio's generic
      policy keeps for administrators — registering replicas of a checksummed upload, changing
      or deleting a rule the service has checked belongs to the caller, creating accounts and
      scopes — run with the service's own account (:meth:`_privileged`).
    - ``token``: every call carries the caller's bearer token; Rucio decides.
    """

    _rest: RucioRest
    _settings: RucioSettings
    _service: RucioAuth
    _token_mode: bool

    def _user(self, actor: Actor) -> RucioAuth:
        """Auth of the actor itself."""
        if actor.service:
            return self._service
        if self._token_mode:
            if not actor.bearer:
                raise BadGatewayError("token mode needs the caller's bearer token")
            return BearerAuth(actor.bearer)
        return self._rest.account_auth(actor.account)

    def _privileged(self, actor: Actor) -> RucioAuth:
        """Auth for calls the generic policy keeps for admins (service mode: the service)."""
        return self._user(actor) if self._token_mode else self._service

    def service_actor(self) -> Actor:
        """The service's own account (reads for crash recovery; never a user's request)."""
        account = self._settings.service_account
        return Actor(account=account, scope="", user_key=f"service:{account}", service=True)
