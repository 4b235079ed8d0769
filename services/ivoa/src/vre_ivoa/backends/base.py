"""Ports of the ivoa service: a VO service (TAP, SCS, SIA v2 + VOSI) and the registry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from vre_ivoa.models import Capability, Cone, RegistryResource, SiaParameters, VoTable


@dataclass(frozen=True)
class TableUpload:
    """A table sent with a TAP query (TAP_UPLOAD.<name>), serialised as a VOTable."""

    name: str
    votable: bytes


@dataclass
class ResultDocument:
    """A VO service's answer to a query: the VOTable bytes and what pyvo read in them."""

    votable: bytes
    rows: int
    columns: list[str]
    truncated: bool
    source_url: str = ""
    infos: dict[str, str] = field(default_factory=dict)


class VoServicePort(Protocol):
    """One configured VO service; every call raises the ivoa errors (never transport ones).

    ``seconds`` bounds the whole call (connect, the service's work, reading the answer).
    """

    name: str

    async def capabilities(self) -> list[Capability]:
        """VOSI capabilities."""
        ...

    async def tables(self) -> list[VoTable]:
        """VOSI tables (TAP)."""
        ...

    async def tap_sync(
        self, adql: str, *, maxrec: int, upload: TableUpload | None, seconds: float
    ) -> ResultDocument:
        """Run ADQL on the synchronous endpoint."""
        ...

    async def tap_submit(
        self, adql: str, *, maxrec: int, upload: TableUpload | None, seconds: float
    ) -> str:
        """Create and start a UWS job; its URL."""
        ...

    async def tap_wait(self, job_url: str, *, seconds: float) -> str:
        """Wait until the job's phase is final (or ``seconds`` passed: VoServiceTimeoutError)."""
        ...

    async def tap_result(self, job_url: str) -> ResultDocument:
        """The result of a COMPLETED job."""
        ...

    async def tap_error(self, job_url: str) -> str:
        """The error message of a job in phase ERROR."""
        ...

    async def tap_abort(self, job_url: str) -> None:
        """Abort and delete a job (best effort)."""
        ...

    async def cone(self, cone: Cone, *, maxrec: int, seconds: float) -> ResultDocument:
        """Simple cone search."""
        ...

    async def sia(self, params: SiaParameters, *, maxrec: int, seconds: float) -> ResultDocument:
        """SIA v2 query."""
        ...


class RegistryPort(Protocol):
    """An IVOA registry (RegTAP)."""

    async def search(
        self,
        *,
        keywords: list[str],
        service_type: str | None,
        waveband: str | None,
        limit: int,
    ) -> list[RegistryResource]:
        """Resources matching every given constraint."""
        ...
