"""RSEs: listings with attributes and space, and where a new file of an RSE is written.

Where a file goes on a deterministic RSE is a pure function of its DID: Rucio's lfn2pfn
algorithm (``hash`` or ``identity``, ``rucio.rse.translation.RSEDeterministicTranslation``)
gives the path, and the RSE's write protocol the part before it. The first upload to an RSE
asks Rucio (``lfns2pfns``); from its answer the part before the path is learnt (the
algorithm whose path ends the answer is the RSE's), and later PFNs are computed here, for
``rse_cache_seconds``. An RSE whose answer neither algorithm explains (a custom algorithm, a
non-deterministic RSE) is asked every time. The PFN is then sent with the replica, and
Rucio refuses a replica whose PFN is not the one it expects — so a PFN computed here can
never put a listed file somewhere else than its bytes.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

from vre_common.errors import InvalidInputError, VreError
from vre_datalake.backends.base import Actor
from vre_datalake.backends.rucio.common import RucioCalls, collect
from vre_datalake.errors import RseNotFoundError
from vre_datalake.models import DidRef, Rse, RseSpace


def _scope_path(scope: str) -> str:
    return scope.replace(".", "/") if scope.startswith(("user", "group")) else scope


def lfn2pfn_hash(scope: str, name: str) -> str:
    """Rucio's ``hash`` algorithm: ``scope/xx/yy/name`` from the md5 of ``scope:name``."""
    digest = hashlib.md5(f"{scope}:{name}".encode(), usedforsecurity=False).hexdigest()
    return f"{_scope_path(scope)}/{digest[0:2]}/{digest[2:4]}/{name}"


def lfn2pfn_identity(scope: str, name: str) -> str:
    """Rucio's ``identity`` algorithm: ``scope/name``."""
    return f"{_scope_path(scope)}/{name}"


LFN2PFN: dict[str, Callable[[str, str], str]] = {
    "hash": lfn2pfn_hash,
    "identity": lfn2pfn_identity,
}


@dataclass(frozen=True)
class WriteTemplate:
    """How PFNs of new files of one RSE are made: ``base`` + the algorithm's path."""

    base: str | None  # None: ask Rucio every time
    algorithm: str | None
    learnt_at: float

    @classmethod
    def learn(cls, pfn: str, did: DidRef) -> WriteTemplate:
        """The template that explains Rucio's ``pfn`` for ``did`` (or one that asks Rucio)."""
        for algorithm, path_of in LFN2PFN.items():
            path = path_of(did.scope, did.name)
            if pfn.endswith(path) and len(pfn) > len(path):
                return cls(base=pfn[: -len(path)], algorithm=algorithm, learnt_at=time.monotonic())
        return cls(base=None, algorithm=None, learnt_at=time.monotonic())

    def pfn(self, did: DidRef) -> str | None:
        """The PFN of ``did``, or None if Rucio must be asked."""
        if self.base is None or self.algorithm is None:
            return None
        return self.base + LFN2PFN[self.algorithm](did.scope, did.name)


class RseCalls(RucioCalls):
    """``/rses``."""

    _templates: dict[str, WriteTemplate]

    async def _rse_details(self, actor: Actor, name: str) -> Rse:
        auth = self._user(actor)
        info, attrs, usage = await asyncio.gather(
            self._rest.json("GET", f"/rses/{quote(name)}", auth=auth, operation="get_rse"),
            self._rest.json("GET", f"/rses/{quote(name)}/attr/", auth=auth, operation="rse_attr"),
            collect(
                self._rest.stream(
                    "GET", f"/rses/{quote(name)}/usage", auth=auth, operation="rse_usage"
                )
            ),
        )
        attributes = {k: v for k, v in (attrs or {}).items() if k != name}
        return Rse(
            name=info.get("rse", name),
            rse_type=info.get("rse_type"),
            deterministic=info.get("deterministic"),
            volatile=info.get("volatile"),
            availability_read=info.get("availability_read"),
            availability_write=info.get("availability_write"),
            availability_delete=info.get("availability_delete"),
            schemes=sorted({p["scheme"] for p in info.get("protocols", [])}),
            attributes=attributes,
            space=[
                RseSpace(
                    source=str(u.get("source")),
                    used_bytes=u.get("used"),
                    free_bytes=u.get("free"),
                    total_bytes=u.get("total"),
                    files=u.get("files"),
                )
                for u in usage
            ],
        )

    async def list_rses(self, actor: Actor, expression: str | None = None) -> list[Rse]:
        """Every RSE (matching ``expression``) with details."""
        names = await self.rse_names(actor, expression or "*")
        return list(await asyncio.gather(*(self._rse_details(actor, n) for n in names)))

    async def get_rse(self, actor: Actor, rse: str) -> Rse:
        """One RSE."""
        return await self._rse_details(actor, rse)

    async def rse_names(self, actor: Actor, expression: str) -> list[str]:
        """Names of RSEs matching ``expression`` (sorted)."""
        try:
            items = await collect(
                self._rest.stream(
                    "GET",
                    "/rses/",
                    auth=self._user(actor),
                    operation="list_rses",
                    params={"expression": expression} if expression != "*" else None,
                    field="rse_expression",
                )
            )
        except RseNotFoundError:
            return []
        except VreError as exc:
            if exc.status == 404:  # InvalidRSEExpression with no match answers 404 too
                return []
            raise
        return sorted(str(item["rse"]) for item in items)

    async def write_pfn(self, actor: Actor, rse: str, did: DidRef) -> str:
        """The PFN at which a new file of ``rse`` is written (see the module docstring)."""
        template = self._templates.get(rse)
        if template is not None:
            if time.monotonic() - template.learnt_at < self._settings.rse_cache_seconds:
                pfn = template.pfn(did)
                if pfn is not None:
                    return pfn
            else:
                del self._templates[rse]
        lfn = str(did)
        data = await self._rest.json(
            "GET",
            f"/rses/{quote(rse)}/lfns2pfns",
            auth=self._user(actor),
            operation="lfns2pfns",
            params={"lfn": lfn, "operation": "write"},
            field="rse",
        )
        pfn = (data or {}).get(lfn)
        if not pfn:
            raise InvalidInputError(
                f"{rse} has no protocol to write with",
                errors=[{"loc": ["rse"], "msg": "not writable", "type": "value_error"}],
            )
        self._templates.setdefault(rse, WriteTemplate.learn(str(pfn), did))
        return str(pfn)

    def forget_rse(self, rse: str) -> None:
        """Ask Rucio again next time (e.g. after it refused a PFN computed here)."""
        self._templates.pop(rse, None)
