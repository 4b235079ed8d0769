"""A stand-in for Zenodo's REST API (deposit, files, actions, records), for tests.

It follows Zenodo's documented API (developers.zenodo.org, "REST API": Depositions,
Deposition files, Deposition actions, Records; and the facts collected in
``shared/recipes/iam-and-zenodo.md``), part by part:

- **Authentication** — ``Authorization: Bearer <token>`` (or ``?access_token=``), tokens
  being personal tokens: an unknown token is ``401`` on every endpoint, public ones included;
  deposit endpoints without a token are ``401``. Errors have Zenodo's body
  ``{"status": …, "message": …}``.
- **Depositions** — ``POST /api/deposit/depositions`` with ``{}`` or ``{"metadata": …}`` →
  ``201`` with ``id``, ``conceptrecid``, ``state: unsubmitted``, ``submitted: false``,
  ``doi: ""``, ``metadata.prereserve_doi`` and ``links`` (``self``, ``html``, ``bucket``,
  ``files``, ``publish``, ``edit``, ``discard``, ``newversion``, ``latest_draft``, and
  ``record``/``record_html``/``latest`` once published);
  ``GET`` (list of the owner's, and one), ``PUT`` (metadata; a published deposition only
  after ``actions/edit``, else ``400``), ``DELETE`` (``204``; a published one is ``403``).
  Another user's deposition is ``403``, an unknown id ``404``. Deposition files are
  listed with ``filename``/``filesize``/``checksum`` (bare md5 hex).
- **Files** — ``PUT {links.bucket}/{filename}`` with the raw body, read as a stream →
  ``201 {key, size, checksum: "md5:<hex>", mimetype, links}`` (a second PUT of a key
  replaces it); ``DELETE {bucket}/{filename}`` → ``204``. A bucket holds at most **100
  files** (``400`` beyond). A published deposition's bucket is locked (``403``).
- **Validation errors** — ``400 {"status": 400, "message": "Validation error.",
  "errors": [{"field": "metadata.title", "messages": […]}]}``: on ``PUT`` for values of the
  wrong kind (an unknown ``upload_type``, a creator without ``name``), on ``publish`` for
  each of ``upload_type``, ``title``, ``description``, ``creators`` missing, and for a
  deposition without files (``"Minimum one file must be provided."``).
- **Publish** — ``POST …/actions/publish`` → ``202`` with ``submitted: true``,
  ``state: done``, ``doi: 10.5281/zenodo.<id>``, ``record_id`` = ``id``, ``conceptdoi``;
  the record appears under ``/api/records/<id>`` with a snapshot of the files. Communities
  named in the metadata do not include the record at once (a curator must accept the
  request, :meth:`ZenodoStandIn.accept`); records made with :meth:`add_record` are in their
  communities already.
- **New version** — ``POST …/actions/newversion`` on a published deposition → ``201``. Two
  shapes, selected by :attr:`newversion_shape`: ``"new"`` (Zenodo since InvenioRDM) answers
  the new draft itself, the previous version's files already in it; ``"old"`` (Zenodo
  before Oct 2023) answers the parent with the draft in ``links.latest_draft``. While a
  draft exists, newversion answers that same draft. ``actions/edit`` (``201``,
  ``state: inprogress``) unlocks a published deposition's metadata; ``actions/discard``
  (``201``) throws the edit away.
- **Records** — ``GET /api/records/<id>`` (legacy serialization: ``metadata`` with
  ``license: {id}``, ``resource_type: {type}``, ``communities: [{id}]``; ``files`` with
  ``key``, ``size``, ``checksum: "md5:…"``, ``links.self`` =
  ``…/api/records/<id>/files/<key>/content``), the content served anonymously for open
  records; ``GET /api/records?q=&communities=&type=&sort=&page=&size=`` →
  ``{hits: {hits, total}, links: {self, next}}``; **page size ≤ 25 anonymous, ≤ 100 with
  a token** (``400`` beyond), a 10,000-hit window (``400`` past it), and ``q`` with an
  unescaped ``/`` is a ``400`` (the query parser reads it as a regular expression).

Test switches (not Zenodo behaviour): :attr:`newversion_shape`; :meth:`fail_put` makes the
next PUT of a file fail with a 500 after half its bytes were received (nothing is stored);
:meth:`corrupt` serves a record file whose bytes do not match its md5 (same length);
:attr:`download_delay` slows record downloads (seconds per 64 KiB, to watch progress);
:attr:`put_counts` counts PUTs per file name, :attr:`requests` records every call.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import shutil
import threading
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

UPLOAD_TYPES = {
    "publication", "poster", "presentation", "dataset", "image", "video", "software",
    "lesson", "physicalobject", "other",
}  # fmt: skip
REQUIRED_ON_PUBLISH = ("upload_type", "title", "description", "creators")
MAX_FILES = 100
ANONYMOUS_PAGE = 25
AUTHENTICATED_PAGE = 100
WINDOW = 10_000
CHUNK = 64 * 1024


class ZenodoError(Exception):
    """An error answer in Zenodo's shape."""

    def __init__(self, status: int, message: str, errors: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors


def _now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass
class StoredFile:
    """One object in a bucket."""

    id: str
    key: str
    size: int
    md5: str
    path: Path


@dataclass
class Dep:
    """A deposition."""

    id: int
    conceptrecid: int
    owner: str
    bucket: str
    metadata: dict[str, Any]
    state: str = "unsubmitted"
    submitted: bool = False
    created: str = field(default_factory=_now)
    modified: str = field(default_factory=_now)
    draft_of: int | None = None  # a new-version draft: the published deposition it follows
    saved_metadata: dict[str, Any] | None = None  # metadata before an edit


@dataclass
class Record:
    """A published record (a snapshot of its deposition)."""

    id: int
    conceptrecid: int
    owner: str
    metadata: dict[str, Any]
    files: list[StoredFile]
    communities: list[str]
    created: str = field(default_factory=_now)
    updated: str = field(default_factory=_now)
    open: bool = True


class ZenodoStandIn:
    """State and behaviour of the stand-in; :attr:`app` is the ASGI app serving it."""

    def __init__(self, root: Path, tokens: dict[str, str] | None = None) -> None:
        self.root = root
        self.tokens: dict[str, str] = dict(tokens or {})
        self.base_url = "http://testserver"
        self.newversion_shape: Literal["new", "old"] = "new"
        self.download_delay = 0.0
        self.put_counts: Counter[str] = Counter()
        self.requests: list[tuple[str, str, int | None]] = []  # (method, path, size param)
        self._fail_puts: dict[str, int] = {}
        self._corrupt: set[tuple[int, str]] = set()
        self._ids = itertools.count(1_000_001)
        self._lock = threading.Lock()
        self.depositions: dict[int, Dep] = {}
        self.records: dict[int, Record] = {}
        self.buckets: dict[str, dict[str, StoredFile]] = {}
        self.pending_communities: dict[int, list[str]] = {}
        self.app = self._build_app()

    # ------------------------------------------------------------------ test controls

    def fail_put(self, filename: str) -> None:
        """The next PUT of ``filename`` fails (500) after half its bytes arrived."""
        self._fail_puts[filename] = 1

    def corrupt(self, record_id: int, key: str) -> None:
        """Serve ``key`` of ``record_id`` with one byte changed (md5 no longer matches)."""
        self._corrupt.add((record_id, key))

    def accept(self, record_id: int, community: str) -> None:
        """A curator accepts the record into a community."""
        record = self.records[record_id]
        if community not in record.communities:
            record.communities.append(community)

    def add_record(
        self,
        files: dict[str, bytes],
        *,
        title: str = "A record",
        owner: str = "someone",
        upload_type: str = "dataset",
        version: str | None = "1.0",
        license: str = "cc-by-4.0",
        description: str = "Test record.",
        keywords: list[str] | None = None,
        communities: list[str] | None = None,
        open_access: bool = True,
    ) -> int:
        """A published record with these files, made directly (as if published long ago)."""
        with self._lock:
            concept, rid = next(self._ids), next(self._ids)
        bucket = self._new_bucket()
        for key, content in files.items():
            self._store(bucket, key, content)
        metadata: dict[str, Any] = {
            "title": title,
            "upload_type": upload_type,
            "description": description,
            "creators": [{"name": "Doe, Jane"}],
            "license": license,
            "keywords": keywords or [],
            "publication_date": date.today().isoformat(),
            "access_right": "open" if open_access else "restricted",
        }
        if version:
            metadata["version"] = version
        self.records[rid] = Record(
            id=rid,
            conceptrecid=concept,
            owner=owner,
            metadata=metadata,
            files=list(self.buckets[bucket].values()),
            communities=list(communities or []),
            open=open_access,
        )
        return rid

    def bucket_of(self, deposition_id: int) -> dict[str, StoredFile]:
        """The files of a deposition's bucket."""
        return self.buckets[self.depositions[deposition_id].bucket]

    # ------------------------------------------------------------------ storage

    def _new_bucket(self) -> str:
        bucket = str(uuid.uuid4())
        self.buckets[bucket] = {}
        (self.root / bucket).mkdir(parents=True)
        return bucket

    def _store(self, bucket: str, key: str, content: bytes) -> StoredFile:
        path = self.root / bucket / uuid.uuid4().hex
        path.write_bytes(content)
        stored = StoredFile(
            id=str(uuid.uuid4()),
            key=key,
            size=len(content),
            md5=hashlib.md5(content).hexdigest(),
            path=path,
        )
        self.buckets[bucket][key] = stored
        return stored

    def _copy_bucket(self, files: list[StoredFile]) -> str:
        bucket = self._new_bucket()
        for f in files:
            path = self.root / bucket / uuid.uuid4().hex
            shutil.copyfile(f.path, path)
            self.buckets[bucket][f.key] = StoredFile(
                id=str(uuid.uuid4()), key=f.key, size=f.size, md5=f.md5, path=path
            )
        return bucket

    # ------------------------------------------------------------------ serialization

    def _doi(self, rid: int) -> str:
        return f"10.5281/zenodo.{rid}"

    def _published(self, dep: Dep) -> bool:
        return dep.id in self.records

    def _latest_draft(self, dep: Dep) -> Dep:
        for other in self.depositions.values():
            if other.draft_of == dep.id and not self._published(other):
                return other
        return dep

    def _deposition_json(self, dep: Dep) -> dict[str, Any]:
        api = f"{self.base_url}/api/deposit/depositions/{dep.id}"
        published = self._published(dep)
        latest = self._latest_draft(dep)
        metadata = dict(dep.metadata)
        metadata["prereserve_doi"] = {"doi": self._doi(dep.id), "recid": dep.id}
        files = [
            {
                "id": f.id,
                "filename": f.key,
                "filesize": f.size,
                "checksum": f.md5,
                "links": {
                    "self": f"{api}/files/{f.id}",
                    "download": f"{self.base_url}/api/files/{dep.bucket}/{f.key}",
                },
            }
            for f in self.buckets[dep.bucket].values()
        ]
        links = {
            "self": api,
            "html": f"{self.base_url}/deposit/{dep.id}",
            "bucket": f"{self.base_url}/api/files/{dep.bucket}",
            "files": f"{api}/files",
            "publish": f"{api}/actions/publish",
            "edit": f"{api}/actions/edit",
            "discard": f"{api}/actions/discard",
            "newversion": f"{api}/actions/newversion",
            "latest_draft": f"{self.base_url}/api/deposit/depositions/{latest.id}",
            "latest_draft_html": f"{self.base_url}/deposit/{latest.id}",
        }
        if published:
            links["record"] = f"{self.base_url}/api/records/{dep.id}"
            links["record_html"] = f"{self.base_url}/records/{dep.id}"
            links["latest"] = f"{self.base_url}/api/records/{dep.id}"
        return {
            "id": dep.id,
            "conceptrecid": str(dep.conceptrecid),
            "record_id": dep.id,
            "doi": self._doi(dep.id) if published else "",
            "doi_url": f"https://doi.org/{self._doi(dep.id)}" if published else "",
            "conceptdoi": self._doi(dep.conceptrecid) if published else "",
            "state": dep.state,
            "submitted": dep.submitted,
            "title": dep.metadata.get("title", ""),
            "metadata": metadata,
            "files": files,
            "links": links,
            "created": dep.created,
            "modified": dep.modified,
            "owner": dep.owner,
        }

    def _record_json(self, record: Record) -> dict[str, Any]:
        md = record.metadata
        metadata: dict[str, Any] = {
            "title": md.get("title", ""),
            "doi": self._doi(record.id),
            "publication_date": md.get("publication_date") or date.today().isoformat(),
            "description": md.get("description", ""),
            "access_right": md.get("access_right", "open"),
            "creators": md.get("creators", []),
            "keywords": md.get("keywords", []),
            "resource_type": {"type": md.get("upload_type"), "title": md.get("upload_type")},
            "communities": [{"id": c} for c in record.communities],
            "relations": {"version": [{"parent": {"pid_value": str(record.conceptrecid)}}]},
        }
        if md.get("version"):
            metadata["version"] = md["version"]
        if md.get("license"):
            metadata["license"] = {"id": md["license"]}
        api = f"{self.base_url}/api/records/{record.id}"
        return {
            "id": record.id,
            "recid": str(record.id),
            "conceptrecid": str(record.conceptrecid),
            "doi": self._doi(record.id),
            "conceptdoi": self._doi(record.conceptrecid),
            "doi_url": f"https://doi.org/{self._doi(record.id)}",
            "title": md.get("title", ""),
            "metadata": metadata,
            "created": record.created,
            "updated": record.updated,
            "status": "published",
            "links": {
                "self": api,
                "html": f"{self.base_url}/records/{record.id}",
                "doi": f"https://doi.org/{self._doi(record.id)}",
                "files": f"{api}/files",
            },
            "files": [
                {
                    "id": f.id,
                    "key": f.key,
                    "size": f.size,
                    "checksum": f"md5:{f.md5}",
                    "links": {"self": f"{api}/files/{f.key}/content"},
                }
                for f in record.files
            ],
        }

    # ------------------------------------------------------------------ rules

    def _user(self, request: Request, *, required: bool) -> str | None:
        header = request.headers.get("authorization", "")
        token = request.query_params.get("access_token")
        if header.lower().startswith("bearer "):
            token = header[7:].strip()
        if token is None:
            if required:
                raise ZenodoError(401, "The server could not verify that you are authorized.")
            return None
        user = self.tokens.get(token)
        if user is None:
            raise ZenodoError(401, "The server could not verify that you are authorized.")
        return user

    def _dep(self, request: Request, dep_id: int) -> tuple[str, Dep]:
        user = self._user(request, required=True)
        assert user is not None
        dep = self.depositions.get(dep_id)
        if dep is None:
            raise ZenodoError(404, "PID does not exist.")
        if dep.owner != user:
            raise ZenodoError(403, "You don't have permission to access this deposition.")
        return user, dep

    @staticmethod
    def _check_metadata(metadata: dict[str, Any]) -> None:
        errors = []
        upload_type = metadata.get("upload_type")
        if upload_type is not None and upload_type not in UPLOAD_TYPES:
            errors.append({"field": "metadata.upload_type", "messages": ["Not a valid choice."]})
        creators = metadata.get("creators")
        if creators is not None:
            if not isinstance(creators, list):
                errors.append({"field": "metadata.creators", "messages": ["Not a valid list."]})
            else:
                for i, creator in enumerate(creators):
                    if not isinstance(creator, dict) or not creator.get("name"):
                        errors.append(
                            {
                                "field": f"metadata.creators.{i}.name",
                                "messages": ["Missing data for required field."],
                            }
                        )
        if errors:
            raise ZenodoError(400, "Validation error.", errors)

    def _check_publishable(self, dep: Dep) -> None:
        errors = [
            {"field": f"metadata.{name}", "messages": ["Missing data for required field."]}
            for name in REQUIRED_ON_PUBLISH
            if not dep.metadata.get(name)
        ]
        if not self.buckets[dep.bucket]:
            errors.append({"field": "files", "messages": ["Minimum one file must be provided."]})
        if errors:
            raise ZenodoError(400, "Validation error.", errors)

    def _publish(self, dep: Dep) -> None:
        self._check_publishable(dep)
        now = _now()
        md = dict(dep.metadata)
        md.setdefault("publication_date", date.today().isoformat())
        md.setdefault("access_right", "open")
        dep.metadata = md
        communities = [
            c.get("identifier", "") for c in md.get("communities") or [] if isinstance(c, dict)
        ]
        files = self._copy_bucket(list(self.buckets[dep.bucket].values()))
        existing = self.records.get(dep.id)
        self.records[dep.id] = Record(
            id=dep.id,
            conceptrecid=dep.conceptrecid,
            owner=dep.owner,
            metadata=md,
            files=list(self.buckets[files].values()),
            communities=existing.communities if existing else [],
            created=existing.created if existing else now,
            updated=now,
        )
        if communities:
            self.pending_communities[dep.id] = communities
        dep.state = "done"
        dep.submitted = True
        dep.saved_metadata = None
        dep.modified = now

    # ------------------------------------------------------------------ app

    def _build_app(self) -> FastAPI:
        app = FastAPI(openapi_url=None)
        standin = self

        @app.exception_handler(ZenodoError)
        async def zenodo_error(_: Request, exc: Exception) -> JSONResponse:
            assert isinstance(exc, ZenodoError)
            body: dict[str, Any] = {"status": exc.status, "message": exc.message}
            if exc.errors is not None:
                body["errors"] = exc.errors
            return JSONResponse(body, status_code=exc.status)

        @app.middleware("http")
        async def record_requests(request: Request, call_next: Any) -> Response:
            size = request.query_params.get("size")
            standin.requests.append(
                (request.method, request.url.path, int(size) if size and size.isdigit() else None)
            )
            response: Response = await call_next(request)
            return response

        # -------------------------------------------------------------- depositions

        @app.post("/api/deposit/depositions")
        async def create(request: Request) -> JSONResponse:
            user = standin._user(request, required=True)
            assert user is not None
            body = await request.json() if await request.body() else {}
            metadata = dict(body.get("metadata") or {})
            standin._check_metadata(metadata)
            with standin._lock:
                concept, dep_id = next(standin._ids), next(standin._ids)
            dep = Dep(
                id=dep_id,
                conceptrecid=concept,
                owner=user,
                bucket=standin._new_bucket(),
                metadata=metadata,
            )
            standin.depositions[dep_id] = dep
            return JSONResponse(standin._deposition_json(dep), status_code=201)

        @app.get("/api/deposit/depositions")
        async def list_depositions(request: Request) -> JSONResponse:
            user = standin._user(request, required=True)
            size = int(request.query_params.get("size", "10"))
            page = int(request.query_params.get("page", "1"))
            mine = sorted(
                (d for d in standin.depositions.values() if d.owner == user),
                key=lambda d: d.created,
                reverse=True,
            )
            chunk = mine[(page - 1) * size : page * size]
            return JSONResponse([standin._deposition_json(d) for d in chunk])

        @app.get("/api/deposit/depositions/{dep_id}")
        async def get_deposition(dep_id: int, request: Request) -> JSONResponse:
            _, dep = standin._dep(request, dep_id)
            return JSONResponse(standin._deposition_json(dep))

        @app.put("/api/deposit/depositions/{dep_id}")
        async def update(dep_id: int, request: Request) -> JSONResponse:
            _, dep = standin._dep(request, dep_id)
            if dep.submitted and dep.state != "inprogress":
                raise ZenodoError(
                    400, "You cannot edit a published deposition; use the edit action first."
                )
            body = await request.json()
            metadata = dict(body.get("metadata") or {})
            metadata.pop("prereserve_doi", None)
            standin._check_metadata(metadata)
            dep.metadata = metadata
            dep.modified = _now()
            return JSONResponse(standin._deposition_json(dep))

        @app.delete("/api/deposit/depositions/{dep_id}")
        async def delete(dep_id: int, request: Request) -> Response:
            _, dep = standin._dep(request, dep_id)
            if standin._published(dep):
                raise ZenodoError(403, "Deleting a published deposition is not allowed.")
            del standin.depositions[dep_id]
            return Response(status_code=204)

        @app.get("/api/deposit/depositions/{dep_id}/files")
        async def list_files(dep_id: int, request: Request) -> JSONResponse:
            _, dep = standin._dep(request, dep_id)
            return JSONResponse(standin._deposition_json(dep)["files"])

        # -------------------------------------------------------------- actions

        @app.post("/api/deposit/depositions/{dep_id}/actions/publish")
        async def publish(dep_id: int, request: Request) -> JSONResponse:
            _, dep = standin._dep(request, dep_id)
            if dep.submitted and dep.state == "done":
                raise ZenodoError(400, "The deposition is already published.")
            standin._publish(dep)
            return JSONResponse(standin._deposition_json(dep), status_code=202)

        @app.post("/api/deposit/depositions/{dep_id}/actions/edit")
        async def edit(dep_id: int, request: Request) -> JSONResponse:
            _, dep = standin._dep(request, dep_id)
            if not standin._published(dep):
                raise ZenodoError(400, "Only published depositions can be edited.")
            if dep.state != "inprogress":
                dep.saved_metadata = dict(dep.metadata)
                dep.state = "inprogress"
            return JSONResponse(standin._deposition_json(dep), status_code=201)

        @app.post("/api/deposit/depositions/{dep_id}/actions/discard")
        async def discard(dep_id: int, request: Request) -> JSONResponse:
            _, dep = standin._dep(request, dep_id)
            if dep.state != "inprogress" or dep.saved_metadata is None:
                raise ZenodoError(400, "The deposition is not being edited.")
            dep.metadata = dep.saved_metadata
            dep.saved_metadata = None
            dep.state = "done"
            return JSONResponse(standin._deposition_json(dep), status_code=201)

        @app.post("/api/deposit/depositions/{dep_id}/actions/newversion")
        async def newversion(dep_id: int, request: Request) -> JSONResponse:
            user, dep = standin._dep(request, dep_id)
            if not standin._published(dep):
                raise ZenodoError(400, "Only published depositions can get new versions.")
            draft = standin._latest_draft(dep)
            if draft is dep:
                with standin._lock:
                    draft_id = next(standin._ids)
                draft = Dep(
                    id=draft_id,
                    conceptrecid=dep.conceptrecid,
                    owner=user,
                    bucket=standin._copy_bucket(list(standin.buckets[dep.bucket].values())),
                    metadata={
                        k: v for k, v in dep.metadata.items() if k not in ("publication_date",)
                    },
                    draft_of=dep.id,
                )
                standin.depositions[draft_id] = draft
            answer = draft if standin.newversion_shape == "new" else dep
            return JSONResponse(standin._deposition_json(answer), status_code=201)

        # -------------------------------------------------------------- files

        @app.put("/api/files/{bucket}/{key:path}")
        async def put_file(bucket: str, key: str, request: Request) -> JSONResponse:
            user = standin._user(request, required=True)
            dep = next((d for d in standin.depositions.values() if d.bucket == bucket), None)
            if dep is None:
                raise ZenodoError(404, "Bucket does not exist.")
            if dep.owner != user:
                raise ZenodoError(403, "You don't have permission to access this bucket.")
            if dep.submitted:
                raise ZenodoError(403, "The bucket is locked (the deposition is published).")
            files = standin.buckets[bucket]
            if key not in files and len(files) >= MAX_FILES:
                raise ZenodoError(400, f"Too many files: a deposition holds at most {MAX_FILES}.")
            standin.put_counts[key] += 1
            declared = int(request.headers.get("content-length", "0") or 0)
            fail_after = declared // 2 if standin._fail_puts.pop(key, None) else None
            path = standin.root / bucket / uuid.uuid4().hex
            digest = hashlib.md5()
            size = 0
            failed = False
            with path.open("wb") as handle:
                async for chunk in request.stream():
                    if failed:
                        continue  # drain the body, store nothing
                    handle.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                    if fail_after is not None and size >= fail_after:
                        failed = True
            if failed:
                path.unlink()
                raise ZenodoError(500, "Internal server error.")
            files[key] = StoredFile(
                id=str(uuid.uuid4()), key=key, size=size, md5=digest.hexdigest(), path=path
            )
            return JSONResponse(
                {
                    "key": key,
                    "size": size,
                    "checksum": f"md5:{digest.hexdigest()}",
                    "mimetype": "application/octet-stream",
                    "created": _now(),
                    "links": {"self": f"{standin.base_url}/api/files/{bucket}/{key}"},
                },
                status_code=201,
            )

        @app.delete("/api/files/{bucket}/{key:path}")
        async def delete_file(bucket: str, key: str, request: Request) -> Response:
            user = standin._user(request, required=True)
            dep = next((d for d in standin.depositions.values() if d.bucket == bucket), None)
            if dep is None or key not in standin.buckets[bucket]:
                raise ZenodoError(404, "Object does not exist.")
            if dep.owner != user:
                raise ZenodoError(403, "You don't have permission to access this bucket.")
            if dep.submitted:
                raise ZenodoError(403, "The bucket is locked (the deposition is published).")
            del standin.buckets[bucket][key]
            return Response(status_code=204)

        # -------------------------------------------------------------- records

        @app.get("/api/records")
        async def search(request: Request) -> JSONResponse:
            user = standin._user(request, required=False)
            params = request.query_params
            size = int(params.get("size", "10"))
            page = int(params.get("page", "1"))
            cap = AUTHENTICATED_PAGE if user else ANONYMOUS_PAGE
            if size > cap:
                raise ZenodoError(400, f"Invalid page size {size}: at most {cap}.")
            if page * size > WINDOW:
                raise ZenodoError(400, f"Only the first {WINDOW} results can be paged to.")
            q = params.get("q") or ""
            hits = [r for r in list(standin.records.values()) if r.open or r.owner == user]
            hits = [r for r in hits if standin._matches(r, q)]
            for community in params.getlist("communities"):
                hits = [r for r in hits if community in r.communities]
            if params.get("type"):
                hits = [r for r in hits if r.metadata.get("upload_type") == params["type"]]
            hits.sort(key=lambda r: (r.created, r.id), reverse=True)
            chunk = hits[(page - 1) * size : page * size]
            links = {"self": str(request.url)}
            if page * size < len(hits):
                links["next"] = str(request.url.include_query_params(page=page + 1))
            return JSONResponse(
                {
                    "hits": {"hits": [standin._record_json(r) for r in chunk], "total": len(hits)},
                    "links": links,
                    "aggregations": {},
                }
            )

        @app.get("/api/records/{record_id}")
        async def get_record(record_id: int, request: Request) -> JSONResponse:
            user = standin._user(request, required=False)
            record = standin.records.get(record_id)
            if record is None or (not record.open and record.owner != user):
                raise ZenodoError(404, "PID does not exist.")
            return JSONResponse(standin._record_json(record))

        @app.get("/api/records/{record_id}/files/{key:path}/content")
        async def content(record_id: int, key: str, request: Request) -> StreamingResponse:
            user = standin._user(request, required=False)
            record = standin.records.get(record_id)
            if record is None or (not record.open and record.owner != user):
                raise ZenodoError(404, "PID does not exist.")
            stored = next((f for f in record.files if f.key == key), None)
            if stored is None:
                raise ZenodoError(404, "File does not exist.")
            corrupt = (record_id, key) in standin._corrupt
            delay = standin.download_delay

            async def chunks() -> AsyncIterator[bytes]:
                with stored.path.open("rb") as handle:
                    first = True
                    while chunk := handle.read(CHUNK):
                        if first and corrupt:
                            chunk = bytes([chunk[0] ^ 0xFF]) + chunk[1:]
                        first = False
                        if delay:
                            await asyncio.sleep(delay)
                        yield chunk

            return StreamingResponse(
                chunks(),
                media_type="application/octet-stream",
                headers={"Content-Length": str(stored.size)},
            )

        return app

    @staticmethod
    def _matches(record: Record, q: str) -> bool:
        if not q.strip():
            return True
        if "/" in q.replace("\\/", ""):
            raise ZenodoError(400, "The query could not be parsed (unescaped '/').")
        q = q.replace("\\/", "/")
        if q.startswith("doi:"):
            wanted = q[4:].strip('"').lower()
            return f"10.5281/zenodo.{record.id}" == wanted
        text = " ".join(
            [
                str(record.metadata.get("title", "")),
                str(record.metadata.get("description", "")),
                " ".join(record.metadata.get("keywords") or []),
            ]
        ).lower()
        return all(term.lower() in text for term in q.split())


async def stream_bytes(data: bytes, chunk: int = CHUNK) -> AsyncIterator[bytes]:
    """``data`` as an async iterator of chunks (for uploads in tests)."""
    for start in range(0, len(data), chunk):
        yield data[start : start + chunk]


@contextmanager
def served_standin(root: Path, tokens: dict[str, str]) -> Iterator[ZenodoStandIn]:
    """The stand-in on a real loopback server (``base_url`` set) for as long as it is used."""
    from services.zenodo.tests.support.servers import ThreadedServer

    standin = ZenodoStandIn(root, tokens=tokens)
    server = ThreadedServer(standin.app, lifespan="off").start()
    standin.base_url = server.url
    try:
        yield standin
    finally:
        server.stop()


def main() -> None:
    """Serve the stand-in on its own (a local Zenodo for demos of the embedded VRE)::

    python services/zenodo/tests/support/standin.py --port 8099 --token alice=s3cret
    """
    import argparse
    import tempfile

    import uvicorn

    parser = argparse.ArgumentParser(description="A Zenodo stand-in on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--root", type=Path, default=None, help="Where files are kept.")
    parser.add_argument("--token", action="append", default=[], help="user=token (repeatable).")
    args = parser.parse_args()
    tokens = {t.split("=", 1)[1]: t.split("=", 1)[0] for t in args.token if "=" in t}
    standin = ZenodoStandIn(args.root or Path(tempfile.mkdtemp(prefix="zenodo-standin-")), tokens)
    standin.base_url = f"http://127.0.0.1:{args.port}"
    uvicorn.run(standin.app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
