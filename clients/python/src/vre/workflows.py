"""Workflows from Python: validate a reana.yaml, submit it on Data Lake inputs, wait, fetch outputs.

>>> import vre
>>> wf = vre.Client().workflows
>>> wf.validate("reana.yaml")["valid"]
True
>>> run = wf.submit("reana.yaml", inputs={"data/events.csv": "user.alice:events.csv"},
...                 files=["code/fit.py"])
>>> run.wait(timeout=600)              # raises RunFailedError with the failing step's log
>>> run.outputs                        # {"results/fit.csv": "user.alice:<run>/results/fit.csv"}
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from vre._http import Session, q
from vre.errors import RunFailedError, WaitTimeoutError

ACTIVE = ("queued", "running")
FAILED = ("failed", "cancelled", "interrupted", "deleted")
Spec = str | os.PathLike[str] | Mapping[str, Any]


class Run:
    """A workflow run: its state is fetched again by :attr:`status` and :meth:`refresh`."""

    def __init__(self, session: Session, body: dict[str, Any]) -> None:
        self._s = session
        self.data = body

    def __repr__(self) -> str:
        return f"<Run {self.id} {self.data.get('name')!r} {self.data.get('status')}>"

    @property
    def id(self) -> str:
        """The run's id."""
        return str(self.data["id"])

    @property
    def name(self) -> str:
        """The run's name."""
        return str(self.data.get("name", ""))

    @property
    def status(self) -> str:
        """The current status (asks the VRE): queued, running, finished, failed, cancelled."""
        return str(self.refresh().data["status"])

    def refresh(self) -> Run:
        """Fetch the run's current state."""
        self.data = self._s.json("GET", f"/workflows/runs/{q(self.id)}")
        return self

    @property
    def outputs(self) -> dict[str, str]:
        """The outputs as ``{workspace path: DID}`` (registered in the Data Lake)."""
        return {o["path"]: o["did"] for o in self.data.get("outputs", []) if o.get("did")}

    def wait(self, timeout: float | None = None, *, poll: float = 1.0) -> Run:
        """Block until the run ends; raise :class:`RunFailedError` (with the failing step's
        log tail) when it failed, :class:`WaitTimeoutError` after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.refresh().data["status"] in ACTIVE:
            if deadline is not None and time.monotonic() > deadline:
                raise WaitTimeoutError(
                    f"run {self.id} still {self.data['status']} after {timeout}s"
                )
            time.sleep(poll)
        if self.data["status"] in FAILED:
            failing = next(
                (s for s in self.data.get("steps", []) if s.get("status") == "failed"), None
            )
            tail = ""
            try:
                text = self.logs(step=failing["name"] if failing else None)
                tail = "\n".join(str(text).splitlines()[-20:])
            except Exception:
                tail = ""
            error = self.data.get("error") or {}
            detail = error.get("detail") or error.get("message") or ""
            where = f" in step {failing['name']!r}" if failing else ""
            raise RunFailedError(
                f"run {self.id} {self.data['status']}{where}: {detail}".rstrip(": "),
                run=self.data,
                log_tail=tail,
            )
        return self

    def logs(self, *, step: str | None = None, follow: bool = False) -> Any:
        """The logs as text; with ``follow=True`` an iterator of lines as they are written,
        until the run ends."""
        params: dict[str, Any] = {"follow": follow}
        if step is not None:
            params["step"] = step
        path = f"/workflows/runs/{q(self.id)}/logs"
        if not follow:
            return self._s.request("GET", path, params=params).text
        return self._follow(path, params)

    def _follow(self, path: str, params: dict[str, Any]) -> Iterator[str]:
        with self._s.stream("GET", path, params=params, timeout=None) as answer:
            yield from answer.iter_lines()

    def download_outputs(
        self, folder: str | os.PathLike[str] = ".", *, paths: Iterable[str] | None = None
    ) -> list[Path]:
        """Download the outputs (by DID, checksums verified) keeping their workspace paths."""
        from vre.datalake import Datalake

        lake = Datalake(self._s)
        wanted = set(paths) if paths is not None else None
        done = []
        for path, did in self.refresh().outputs.items():
            if wanted is not None and path not in wanted:
                continue
            target = Path(folder) / path
            target.parent.mkdir(parents=True, exist_ok=True)
            done.append(lake.download(did, target))
        return done

    def cancel(self) -> Run:
        """Ask the VRE to cancel the run."""
        self.data = self._s.json("POST", f"/workflows/runs/{q(self.id)}/cancel")
        return self

    def rerun(self) -> Run:
        """Run the same specification and inputs again: a new :class:`Run`."""
        return Run(self._s, self._s.json("POST", f"/workflows/runs/{q(self.id)}/rerun"))


class Workflows:
    """``Client().workflows``: validate, submit, list and get runs."""

    def __init__(self, session: Session) -> None:
        self._s = session

    def validate(self, spec: Spec) -> dict[str, Any]:
        """REANA's own validation of a reana.yaml: ``{"valid", "errors", "warnings"}``; each
        error with its line and column."""
        text, obj = _spec(spec)
        if obj is not None:
            return dict(self._s.json("POST", "/workflows/validate", json=obj))
        return dict(
            self._s.json(
                "POST",
                "/workflows/validate",
                content=text.encode(),
                headers={"Content-Type": "application/yaml"},
            )
        )

    def submit(
        self,
        spec: Spec,
        *,
        inputs: Mapping[str, str] | Iterable[str] = (),
        files: Mapping[str, str | os.PathLike[str]] | Iterable[str | os.PathLike[str]] = (),
        project: str | None = None,
        name: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        backend: str | None = None,
        output: Mapping[str, Any] | None = None,
    ) -> Run:
        """Submit a run.

        - ``spec``: the reana.yaml's path, its text, or the parsed mapping;
        - ``inputs``: Data Lake DIDs, as ``{workspace path: DID}`` or a list of DIDs (placed
          at the workspace root under their base names);
        - ``files``: local workflow files (code, Snakefile), as ``{workspace path: local
          path}`` or a list of paths relative to the reana.yaml's folder (or the current one);
        - ``project``: the Science Project (its slug); the outputs go to its scope;
        - ``output``: where the outputs are registered (``{"scope", "dataset",
          "rse_expression"}``); without a project, default: your own scope, so every output
          comes back as a DID.
        """
        if output is None and project is None:
            output = {"scope": self._s.json("GET", "/datalake/scopes/mine")["scope"]}
        text, obj = _spec(spec)
        base = Path(spec).parent if isinstance(spec, os.PathLike | str) and _is_path(spec) else None
        body: dict[str, Any] = {"spec": obj if obj is not None else text}
        if isinstance(inputs, Mapping):
            body["inputs"] = [{"did": did, "path": path} for path, did in inputs.items()]
        else:
            body["inputs"] = [{"did": did} for did in inputs]
        body["files"] = _files(files, base)
        for key, value in (
            ("project", project),
            ("name", name),
            ("parameters", dict(parameters) if parameters else None),
            ("backend", backend),
            ("output", dict(output) if output else None),
        ):
            if value is not None:
                body[key] = value
        return Run(self._s, self._s.json("POST", "/workflows/runs", json=body))

    def get(self, run_id: str) -> Run:
        """A run by id."""
        return Run(self._s, self._s.json("GET", f"/workflows/runs/{q(run_id)}"))

    def runs(
        self, *, status: str | None = None, project: str | None = None, size: int = 50
    ) -> list[Run]:
        """Your runs (and your projects'), newest first."""
        params: dict[str, Any] = {"size": size}
        if status:
            params["status"] = status
        if project:
            params["project"] = project
        page = self._s.json("GET", "/workflows/runs", params=params)
        return [Run(self._s, item) for item in page["items"]]


def _is_path(spec: object) -> bool:
    if isinstance(spec, os.PathLike):
        return True
    return isinstance(spec, str) and "\n" not in spec and spec.endswith((".yaml", ".yml", ".json"))


def _spec(spec: Spec) -> tuple[str, dict[str, Any] | None]:
    if isinstance(spec, Mapping):
        return "", dict(spec)
    if isinstance(spec, os.PathLike | str) and _is_path(spec):
        return Path(spec).read_text(encoding="utf-8"), None
    return str(spec), None


def _files(
    files: Mapping[str, str | os.PathLike[str]] | Iterable[str | os.PathLike[str]],
    base: Path | None,
) -> dict[str, str]:
    if isinstance(files, Mapping):
        pairs = [(str(k), Path(v)) for k, v in files.items()]
    else:
        pairs = [(Path(f).as_posix(), Path(f)) for f in files]
    out = {}
    for workspace, local in pairs:
        where = local if local.is_absolute() or base is None else base / local
        if not where.exists() and local.exists():
            where = local
        out[workspace] = where.read_text(encoding="utf-8")
    return out
