"""RegTapRegistry: VO service discovery in an IVOA registry through its RegTAP interface.

The WHERE clause is built by pyvo's registry constraints (``Freetext``, ``Servicetype``; their
SQL-literal escaping included); the waveband condition is pyvo's ``Waveband`` condition
written out here, because ``Waveband()`` downloads the IVOA messenger vocabulary when it is
built (this service may run without internet). The query selects one row per interface of the
services we can query (TAP, SCS, SIA v2) and runs on the registry's TAP endpoint through the
same client as every other TAP service.
"""

from __future__ import annotations

import io
import warnings
from typing import Any

import anyio

from vre_common.settings import HttpClientSettings
from vre_ivoa.backends.vo import VoServiceClient
from vre_ivoa.config import LimitSettings, RegistrySettings, ServiceType, VoServiceConfig
from vre_ivoa.errors import VoServiceError
from vre_ivoa.models import RegistryResource

STANDARDS: dict[str, ServiceType] = {
    "ivo://ivoa.net/std/tap": "tap",
    "ivo://ivoa.net/std/conesearch": "scs",
    "ivo://ivoa.net/std/sia#query-2.0": "sia2",
}
WAVEBANDS = frozenset(
    {"radio", "millimeter", "infrared", "optical", "uv", "euv", "x-ray", "gamma-ray",
     "photon", "neutrino", "gravitational-waves", "particle"}
)  # fmt: skip


class _NoFeatures:
    """What pyvo's constraints ask of the registry service: its ADQL features. Answering
    "none" makes Freetext use plain ORs (valid on every RegTAP service)."""

    def get_tap_capability(self) -> _NoFeatures:
        return self

    def get_adql(self) -> _NoFeatures:
        return self

    def get_feature(self, *_: Any) -> None:
        return None


def build_query(
    *, keywords: list[str], service_type: str | None, waveband: str | None, limit: int
) -> str:
    """The RegTAP ADQL for the constraints (every one must match)."""
    from pyvo.registry import rtcons

    conditions: list[str] = []
    extra_tables: set[str] = set()
    service = _NoFeatures()
    for word in keywords:
        constraint = rtcons.Freetext(word)
        conditions.append("(" + constraint.get_search_condition(service) + ")")
        extra_tables |= set(constraint._extra_tables)
    if service_type is not None:
        wanted = [s for s, t in STANDARDS.items() if t == service_type]
    else:
        wanted = list(STANDARDS)
    conditions.append("(" + rtcons.Servicetype(*wanted).get_search_condition(service) + ")")
    if waveband is not None:
        conditions.append(
            f"(1 = ivo_hashlist_has(rr.resource.waveband, {rtcons.make_sql_literal(waveband)}))"
        )
    joins = "rr.resource\nNATURAL JOIN rr.capability\nNATURAL JOIN rr.interface" + "".join(
        f"\nNATURAL LEFT OUTER JOIN {t}" for t in sorted(extra_tables)
    )
    return (
        f"SELECT DISTINCT TOP {int(limit)} ivoid, res_title, short_name, "
        f"res_description, waveband, standard_id, access_url\nFROM {joins}"
        + "\nWHERE "
        + "\n  AND ".join(conditions)
    )


def _rows(votable: bytes) -> list[dict[str, Any]]:
    from astropy.io.votable import parse as parse_votable

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = parse_votable(io.BytesIO(votable), verify="ignore").get_first_table()
        out = []
        for row in table.to_table(use_names_over_ids=True):
            out.append({name: row[name] for name in row.colnames})
    return out


def _text(value: Any) -> str | None:
    if value is None or getattr(value, "mask", False) is True:
        return None
    text = value.decode() if isinstance(value, bytes) else str(value)
    return text.strip() or None


class RegTapRegistry:
    """An IVOA registry searched through RegTAP (see the module docstring)."""

    def __init__(
        self, settings: RegistrySettings, *, limits: LimitSettings, http: HttpClientSettings
    ) -> None:
        if settings.url is None:
            raise ValueError("a RegTAP URL is needed")
        self.settings = settings
        self._tap = VoServiceClient(
            VoServiceConfig(name="registry", type="tap", url=settings.url),
            limits=limits,
            http=http,
        )

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._tap.aclose()

    async def search(
        self,
        *,
        keywords: list[str],
        service_type: str | None,
        waveband: str | None,
        limit: int,
    ) -> list[RegistryResource]:
        """Resources with an interface we can query, matching every constraint."""
        adql = build_query(
            keywords=keywords, service_type=service_type, waveband=waveband, limit=limit
        )
        document = await self._tap.tap_sync(
            adql, maxrec=limit, upload=None, seconds=self.settings.timeout_seconds
        )
        try:
            rows = await anyio.to_thread.run_sync(_rows, document.votable)
        except Exception as exc:  # astropy raises many kinds on unexpected tables
            raise VoServiceError(f"the registry answered an unreadable table ({exc})") from exc
        out = []
        for row in rows:
            standard = (_text(row.get("standard_id")) or "").lower()
            wavebands = _text(row.get("waveband")) or ""
            out.append(
                RegistryResource(
                    ivoid=_text(row.get("ivoid")) or "",
                    title=_text(row.get("res_title")),
                    short_name=_text(row.get("short_name")),
                    description=_text(row.get("res_description")),
                    waveband=[w for w in wavebands.split("#") if w],
                    service_type=STANDARDS.get(standard),
                    standard_id=standard or None,
                    access_url=_text(row.get("access_url")),
                )
            )
        return out
