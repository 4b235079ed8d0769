"""A local stand-in for Zenodo's records API, served over real HTTP by uvicorn.

It follows what the harvest relies on and enforces Zenodo's limits: page size ≤ 25 without a
token and ≤ 100 with one (400 beyond), a result window (page × size ≤ window, 400 beyond),
``q`` without '/', ``updated:[A TO B}`` date ranges, community and type filters, the legacy
record serialisation (``hits.hits``/``hits.total``) and file content under ``links.self``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from vre_common.testing import free_port

TOKEN = "standin-token"
_RANGE = re.compile(r"updated:([\[{])(\S+) TO (\S+)([\]}])")


def _parse(value: str) -> datetime:
    if value == "*":
        return datetime.max.replace(tzinfo=UTC)
    moment = datetime.fromisoformat(value)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _problem(status: int, message: str) -> JSONResponse:
    return JSONResponse({"status": status, "message": message}, status_code=status)


@dataclass
class ZenodoRecordsStandIn:
    """Records in memory, served as Zenodo would serve them."""

    result_window: int = 10_000
    anonymous_page_size: int = 25
    authenticated_page_size: int = 100
    records: dict[int, dict[str, Any]] = field(default_factory=dict)
    files: dict[tuple[int, str], bytes] = field(default_factory=dict)
    queries: list[dict[str, str]] = field(default_factory=list)
    file_downloads: int = 0
    delay: float = 0.0
    base_url: str = ""
    _next_id: int = 1000
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ data

    def add_record(
        self,
        *,
        title: str,
        version: str,
        concept: int | None = None,
        community: str = "escape2020",
        updated: datetime | None = None,
        codemeta: dict[str, Any] | bytes | None = None,
        resource_type: str = "software",
        **metadata: Any,
    ) -> dict[str, Any]:
        """Publish a record (a new version of ``concept`` if given); returns it."""
        self._next_id += 1
        record_id = self._next_id
        concept_id = concept if concept is not None else record_id + 500_000
        moment = updated or datetime.now(UTC)
        meta: dict[str, Any] = {
            "title": title,
            "version": version,
            "description": f"<p>{title} {version}</p>",
            "publication_date": moment.date().isoformat(),
            "creators": [{"name": "Martin, Alice", "affiliation": "MPIK"}],
            "resource_type": {"type": resource_type, "title": resource_type.title()},
            "communities": [{"id": community}],
            "license": {"id": "mit"},
        }
        meta.update(metadata)
        record: dict[str, Any] = {
            "id": record_id,
            "recid": str(record_id),
            "conceptrecid": str(concept_id),
            "doi": f"10.5281/zenodo.{record_id}",
            "conceptdoi": f"10.5281/zenodo.{concept_id}",
            "created": moment.isoformat(),
            "updated": moment.isoformat(),
            "metadata": meta,
            "files": [],
            "links": {"self": f"{self.base_url}/api/records/{record_id}"},
        }
        self.records[record_id] = record
        if codemeta is not None:
            self.attach(record_id, "codemeta.json", codemeta)
        return record

    def attach(self, record_id: int, key: str, content: dict[str, Any] | bytes) -> None:
        """Add a file to a record."""
        raw = content if isinstance(content, bytes) else json.dumps(content).encode()
        self.files[(record_id, key)] = raw
        self.records[record_id]["files"].append(
            {
                "id": f"{record_id}-{key}",
                "key": key,
                "size": len(raw),
                "checksum": "md5:" + hashlib.md5(raw).hexdigest(),
                "links": {"self": f"{self.base_url}/api/records/{record_id}/files/{key}/content"},
            }
        )

    def touch(self, record_id: int, **metadata: Any) -> None:
        """Edit a record's metadata: its ``updated`` time moves to now."""
        record = self.records[record_id]
        record["metadata"].update(metadata)
        record["updated"] = datetime.now(UTC).isoformat()

    def backdate(self, delta: timedelta) -> None:
        """Move every record's times into the past."""
        for record in self.records.values():
            for key in ("created", "updated"):
                record[key] = (datetime.fromisoformat(record[key]) - delta).isoformat()

    # ------------------------------------------------------------------ HTTP

    def app(self) -> FastAPI:
        """The records API."""
        app = FastAPI()

        @app.get("/api/records")
        async def search(request: Request) -> Response:
            params = dict(request.query_params)
            self.queries.append(params)
            if self.delay:
                await asyncio.sleep(self.delay)
            authenticated = request.headers.get("authorization") == f"Bearer {TOKEN}"
            cap = self.authenticated_page_size if authenticated else self.anonymous_page_size
            try:
                size = int(params.get("size", "10"))
                page = int(params.get("page", "1"))
            except ValueError:
                return _problem(400, "Invalid size or page.")
            if size > cap:
                return _problem(400, f"Maximum page size is {cap} for this client.")
            if size < 1 or page < 1:
                return _problem(400, "Invalid size or page.")
            if page * size > self.result_window:
                return _problem(400, f"Maximum number of results is {self.result_window}.")
            q = params.get("q", "")
            if "/" in q:
                return _problem(400, "Invalid query string syntax.")
            hits = list(self.records.values())
            community = params.get("communities")
            if community:
                hits = [
                    h
                    for h in hits
                    if any(c.get("id") == community for c in h["metadata"]["communities"])
                ]
            kind = params.get("type")
            if kind:
                hits = [h for h in hits if h["metadata"]["resource_type"]["type"] == kind]
            for match in _RANGE.finditer(q):
                lo, hi = _parse(match.group(2)), _parse(match.group(3))
                lo_incl, hi_incl = match.group(1) == "[", match.group(4) == "]"

                def inside(
                    h: dict[str, Any],
                    lo: datetime = lo,
                    hi: datetime = hi,
                    lo_incl: bool = lo_incl,
                    hi_incl: bool = hi_incl,
                ) -> bool:
                    t = datetime.fromisoformat(h["updated"])
                    return (t >= lo if lo_incl else t > lo) and (t <= hi if hi_incl else t < hi)

                hits = [h for h in hits if inside(h)]
            rest = _RANGE.sub("", q).strip()
            if rest:
                return _problem(400, "The stand-in understands only updated ranges.")
            hits.sort(key=lambda h: (h["created"], h["id"]), reverse=True)
            window = hits[(page - 1) * size : page * size]
            return JSONResponse(
                {"hits": {"hits": window, "total": len(hits)}, "links": {}, "aggregations": {}}
            )

        @app.get("/api/records/{record_id}/files/{key}/content")
        async def content(record_id: int, key: str) -> Response:
            raw = self.files.get((record_id, key))
            if raw is None:
                return _problem(404, "File not found.")
            self.file_downloads += 1
            return Response(raw, media_type="application/octet-stream")

        return app

    async def start(self) -> None:
        """Serve on a free loopback port."""
        port = free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(
            self.app(),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
            ws="none",
            http="h11",
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        for _ in range(200):
            if self._server.started:
                return
            await asyncio.sleep(0.01)
        raise RuntimeError("the Zenodo stand-in did not start")

    async def stop(self) -> None:
        """Stop serving."""
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task

    def reset(self) -> None:
        """Forget every record (between tests)."""
        self.records.clear()
        self.files.clear()
        self.queries.clear()
        self.file_downloads = 0
        self.delay = 0.0
