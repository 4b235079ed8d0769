"""ValidationService: REANA's official validator (in its worker) plus the service's own rules."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import posixpath
import re
import shutil
import signal
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from vre_common.errors import BackendTimeoutError, BackendUnavailableError
from vre_workflows.errors import InvalidSpecificationError
from vre_workflows.models import SpecFinding, SpecWarning, UncheckedFile, ValidationReport
from vre_workflows.spec import (
    ParsedSpec,
    SpecSyntaxError,
    parse_spec_text,
    path_findings,
    spec_sha256,
    workflow_type,
)
from vre_workflows.validation.files import WorkflowFiles
from vre_workflows.validation.worker_client import ReanaValidatorWorker

LOADER_SCRIPT = Path(__file__).resolve().parent.parent / "validation" / "reana_loader.py"
ENGINES = ("cwl", "snakemake", "yadage")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_LOADER_LIMITS = {"cpu_seconds": 120, "file_bytes": 256 << 20}
log = structlog.get_logger("vre.workflows.validation")


@dataclass
class ValidationOutcome:
    """A report, and for a valid serial submission its steps with parameters expanded."""

    report: ValidationReport
    expanded_steps: list[dict[str, Any]] = field(default_factory=list)


def parse(spec: str | dict[str, Any] | bytes) -> ParsedSpec:
    """The specification from text (YAML/JSON) or an object; a syntax error is a 422."""
    if isinstance(spec, dict):
        return ParsedSpec(spec=spec)
    text = spec.decode("utf-8", errors="replace") if isinstance(spec, bytes) else spec
    try:
        return parse_spec_text(text)
    except SpecSyntaxError as exc:
        report = ValidationReport(valid=False, errors=exc.findings)
        raise invalid(report) from exc


def invalid(report: ValidationReport) -> InvalidSpecificationError:
    """The 422 problem for an invalid report: every error listed, warnings alongside."""
    count = len(report.errors)
    first = report.errors[0]
    where = f" at {first.path}" if first.path else ""
    line = f" (line {first.line})" if first.line else ""
    return InvalidSpecificationError(
        f"the workflow specification has {count} error(s); first{where}{line}: {first.msg}",
        errors=[e.model_dump(exclude_none=True) for e in report.errors],
        extra={
            "warnings": [w.model_dump(exclude_none=True) for w in report.warnings],
            "workflow_type": report.workflow_type,
            "checked_files": report.checked_files,
            "unchecked": [u.model_dump() for u in report.unchecked],
        },
    )


def _message(item: dict[str, Any], path: list[str | int]) -> str:
    """REANA's message, or one a person can act on where the raw one means nothing."""
    message = str(item.get("message", ""))
    if item.get("null") and path:
        key = str(path[-1])
        expected = item.get("expected")
        wanted = {
            "array": "a list (e.g. `[a.txt, b.txt]` or one `- item` per line)",
            "object": "a mapping of names to values",
            "string": "a text value",
            "integer": "a whole number",
            "boolean": "true or false",
        }.get(str(expected), f"a value of type {expected}" if expected else "a value")
        return (
            f"'{key}' is empty (YAML reads a key with nothing after it as null): "
            f"give {wanted}, or remove the key"
        )
    validator = item.get("validator")
    if validator == "pattern" and path and path[-1] in ("kubernetes_memory_limit",):
        return f"not a memory size Kubernetes understands (write e.g. 8Gi, 512Mi or 2G): {message}"
    text = item.get("text")
    if (
        validator == "type"
        and isinstance(text, str)
        and item.get("expected") in ("integer", "number")
        and text.strip().lstrip("-").isdigit()
    ):
        return f"{message}: write the number without quotes ({text.strip()})"
    return message


def _referenced_files(spec: dict[str, Any]) -> list[tuple[str, str]]:
    """(path, field) of the files a cwl/snakemake/yadage specification is loaded from."""
    found: list[tuple[str, str]] = []
    workflow = spec.get("workflow")
    if isinstance(workflow, dict) and isinstance(workflow.get("file"), str):
        found.append((workflow["file"], "workflow.file"))
    inputs = spec.get("inputs")
    params = inputs.get("parameters") if isinstance(inputs, dict) else None
    kind = workflow_type(spec)
    if (
        kind in ("cwl", "snakemake")
        and isinstance(params, dict)
        and isinstance(params.get("input"), str)
    ):
        found.append((params["input"], "inputs.parameters.input"))
    return found


def _declared_inputs(spec: dict[str, Any]) -> list[tuple[str, str]]:
    inputs = spec.get("inputs")
    if not isinstance(inputs, dict):
        return []
    found = []
    for kind in ("files", "directories"):
        items = inputs.get(kind)
        if isinstance(items, list):
            found += [(p, f"inputs.{kind}") for p in items if isinstance(p, str)]
    return found


class ValidationService:
    """Validate a reana.yaml: every error with its location, plus warnings.

    The REANA rules come from reana-commons (run in its own environment): the reana.yaml
    schema, the serial step schema, the htcondor, compute backend and operational options
    checks (in the long-lived worker), and, when the workflow's files are sent, REANA's own
    loaders for cwl, snakemake and yadage (one process per request in a scratch copy of the
    files, as ``reana-client validate`` loads them). The service adds what REANA checks
    elsewhere or not at all: paths that would leave the workspace, values JSON cannot carry,
    engines the chosen backend cannot run, and the list of files it could not check.
    """

    def __init__(
        self,
        worker: ReanaValidatorWorker,
        *,
        loader_timeout: float = 120.0,
        max_loaders: int = 2,
        sandbox: LoaderSandbox | None = None,
        loaders_off: str | None = None,
    ) -> None:
        self._worker = worker
        self._loader_timeout = loader_timeout
        self._loaders = asyncio.Semaphore(max_loaders)
        self._sandbox = sandbox
        self._loaders_off = loaders_off

    async def validate(
        self,
        parsed: ParsedSpec,
        *,
        parameters: dict[str, Any] | None = None,
        name: str | None = None,
        backend: str | None = None,
        files: WorkflowFiles | None = None,
        more_inputs: bool = False,
    ) -> ValidationOutcome:
        """Validate; ``parameters`` (a submission) also expands serial commands.

        ``files`` are the workflow's files (the analysis directory); ``more_inputs`` says that
        more files arrive at run time (Data Lake inputs), so a file missing now is not an error.
        """
        spec = parsed.spec
        kind = workflow_type(spec)
        if not isinstance(spec, dict):
            finding = SpecFinding(
                loc=["spec"],
                path="",
                type="schema.type",
                msg="the specification must be a mapping (reana.yaml with a workflow section)",
                line=1 if parsed.source.root is not None else None,
                column=1 if parsed.source.root is not None else None,
            )
            return ValidationOutcome(ValidationReport(valid=False, errors=[finding]))
        answer = await self._worker.request(
            {"op": "validate", "spec": spec, "parameters": parameters, "name": name}
        )
        errors = [self._finding(parsed, item) for item in answer.get("errors", [])]
        for finding in path_findings(spec):
            errors.append(self._located(parsed, finding))
        if backend == "local" and kind == "yadage":
            errors.append(
                self._located(
                    parsed,
                    SpecFinding(
                        loc=["spec", "workflow", "type"],
                        path="workflow.type",
                        msg="yadage workflows run only on REANA; "
                        "the local executor cannot run them",
                        type="backend",
                    ),
                )
            )
        warnings = [self._warning(parsed, item) for item in answer.get("warnings", [])]
        checked: list[str] = []
        unchecked: list[UncheckedFile] = []
        if not errors and kind in ENGINES:
            engine = await self._check_engine(
                parsed, files, more_inputs=more_inputs, parameters=parameters
            )
            errors += engine.errors
            warnings += engine.warnings
            checked, unchecked = engine.checked_files, engine.unchecked
        if not errors:
            unchecked += self._unsent_inputs(spec, files, already={u.path for u in unchecked})
        report = ValidationReport(
            valid=not errors,
            workflow_type=kind,
            spec_sha256=spec_sha256(spec),
            errors=errors,
            warnings=warnings,
            checked_files=checked,
            unchecked=unchecked,
        )
        return ValidationOutcome(report, list(answer.get("expanded_steps") or []))

    async def check(
        self,
        raw: str | bytes | dict[str, Any],
        *,
        backend: str | None = None,
        files: WorkflowFiles | None = None,
    ) -> ValidationReport:
        """``POST /validate``: the report if valid, a 422 problem listing the errors if not."""
        outcome = await self.validate(parse(raw), backend=backend, files=files)
        if not outcome.report.valid:
            raise invalid(outcome.report)
        return outcome.report

    @staticmethod
    def _located(parsed: ParsedSpec, finding: SpecFinding) -> SpecFinding:
        position = parsed.source.locate(list(finding.loc[1:]))
        if position is None:
            return finding
        return finding.model_copy(update={"line": position[0], "column": position[1]})

    def _finding(self, parsed: ParsedSpec, item: dict[str, Any]) -> SpecFinding:
        path = list(item.get("path", []))
        validator = str(item.get("validator", "schema"))
        own = ("parameters", "workflow_name", "htcondor_max_runtime", "options", "compute_backend")
        kind = validator if validator in own or "." in validator else f"schema.{validator}"
        if path[:1] == ["name"]:
            return SpecFinding(loc=["name"], path="", msg=str(item.get("message", "")), type=kind)
        finding = SpecFinding(
            loc=["spec", *path],
            path=".".join(str(p) for p in path),
            msg=_message(item, path),
            type=kind,
        )
        located = self._located(parsed, finding)
        if located.line is None and parsed.source.root is not None:
            located = located.model_copy(update={"line": 1, "column": 1})
        return located

    @staticmethod
    def _warning(parsed: ParsedSpec, item: dict[str, Any]) -> SpecWarning:
        path = item.get("path")
        where = ".".join(str(p) for p in path) if isinstance(path, list) else None
        position = parsed.source.locate(path) if isinstance(path, list) else None
        return SpecWarning(
            type=str(item.get("type", "warning")),
            message=str(item.get("message", "")),
            path=where,
            line=position[0] if position else None,
        )

    @staticmethod
    def _unsent_inputs(
        spec: dict[str, Any], files: WorkflowFiles | None, *, already: set[str]
    ) -> list[UncheckedFile]:
        held = files.paths() if files else set()
        out = []
        for path, where in _declared_inputs(spec):
            normalized = posixpath.normpath(path)
            if normalized in already or normalized in held:
                continue
            if where == "inputs.directories" and any(p.startswith(normalized + "/") for p in held):
                continue
            out.append(
                UncheckedFile(
                    path=path,
                    field=where,
                    reason="not among the files sent (it may come from the Data Lake at run time)",
                )
            )
        return out

    async def _check_engine(
        self,
        parsed: ParsedSpec,
        files: WorkflowFiles | None,
        *,
        more_inputs: bool,
        parameters: dict[str, Any] | None,
    ) -> _EngineResult:
        spec: dict[str, Any] = parsed.spec
        kind = str(workflow_type(spec))
        referenced = _referenced_files(spec)
        held = files.paths() if files else set()
        missing = [(p, f) for p, f in referenced if posixpath.normpath(p) not in held]
        result = _EngineResult()
        if not referenced:
            return result  # an inline (packed) specification: the schema checked it
        if missing and files and not more_inputs:
            # The analysis directory was sent without them: reana-client, run in that
            # directory, fails to load the workflow too.
            result.errors = [
                self._located(
                    parsed,
                    SpecFinding(
                        loc=["spec", *where.split(".")],
                        path=where,
                        msg=f"{path} is not among the files sent: the {kind} workflow cannot be "
                        "loaded without it",
                        type="missing",
                    ),
                )
                for path, where in missing
            ]
            return result
        off = self._loaders_off
        if off is None and self._sandbox is not None and not missing:
            off = await self._sandbox.unusable()
        if off is not None and not missing:
            # Loading a Snakefile or a yadage workflow runs the user's code: never unsandboxed
            # beside the service's secrets (settings: spec_loading).
            why = f"not loaded: {off}"
            result.unchecked = [UncheckedFile(path=p, field=f, reason=why) for p, f in referenced]
            result.warnings.append(
                SpecWarning(
                    type="unchecked",
                    message=f"the {kind} specification was not checked: {off}",
                    path=referenced[0][1],
                    line=self._line(parsed, referenced[0][1]),
                )
            )
            return result
        if missing:
            why = (
                "not sent: send the workflow's files with the reana.yaml (multipart `files`, or "
                f"a tar/zip `archive`) to have the {kind} specification checked by REANA's loader"
            )
            result.unchecked = [UncheckedFile(path=p, field=f, reason=why) for p, f in missing]
            result.warnings.append(
                SpecWarning(
                    type="unchecked",
                    message=f"the {kind} specification was not checked: "
                    + ", ".join(p for p, _ in missing)
                    + " not sent",
                    path=missing[0][1],
                    line=self._line(parsed, missing[0][1]),
                )
            )
            return result
        assert files is not None
        answer = await self._run_loader(
            spec, files, placeholders=_declared_inputs(spec), parameters=parameters
        )
        for item in answer.get("errors", []):
            message = str(item.get("message", ""))
            if more_inputs and "Missing input files" in message:
                result.warnings.append(
                    SpecWarning(
                        type="unchecked",
                        message=f"{message} (expected from the Data Lake inputs at run time)",
                        path="workflow.file",
                    )
                )
                continue
            result.errors.append(self._finding(parsed, item))
        for item in answer.get("warnings", []):
            result.warnings.append(self._warning(parsed, item))
        if answer.get("loaded"):
            result.checked_files = [p for p, _ in referenced]
        return result

    @staticmethod
    def _line(parsed: ParsedSpec, dotted: str) -> int | None:
        position = parsed.source.locate([p for p in dotted.split(".") if p])
        return position[0] if position else None

    async def _run_loader(
        self,
        spec: dict[str, Any],
        files: WorkflowFiles,
        *,
        placeholders: list[tuple[str, str]],
        parameters: dict[str, Any] | None,
    ) -> dict[str, Any]:
        """REANA's loaders in a scratch copy of the files; one process, killed on timeout."""
        python = self._worker.python
        if not python.exists():
            raise BackendUnavailableError(
                f"the REANA validator environment is missing ({python} does not exist)",
                retry_after=60,
            )
        async with self._loaders:
            scratch = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="vre-validate-"))
            try:
                await asyncio.to_thread(files.write_into, scratch)
                await asyncio.to_thread(_touch_placeholders, scratch, placeholders)
                raw = await self._spawn(python, scratch, spec, parameters)
            finally:
                await asyncio.to_thread(shutil.rmtree, scratch, True)
        try:
            answer = json.loads(raw)
        except ValueError as exc:
            raise BackendUnavailableError(
                f"REANA's workflow loader gave no answer: {raw[-300:]!r}"
            ) from exc
        if not answer.get("ok"):
            raise BackendUnavailableError(f"REANA's workflow loader failed: {answer.get('error')}")
        prefix = f"{scratch}/"
        for item in answer.get("errors", []) + answer.get("warnings", []):
            item["message"] = _ANSI.sub("", str(item.get("message", ""))).replace(prefix, "")
        return dict(answer)

    async def _spawn(
        self,
        python: Path,
        scratch: Path,
        spec: dict[str, Any],
        parameters: dict[str, Any] | None,
    ) -> str:
        env = {
            "PATH": f"{python.parent}{os.pathsep}/usr/bin:/bin",
            "HOME": str(scratch),
            "LANG": "C.UTF-8",
            "TMPDIR": str(scratch),
        }
        command = [str(python), "-I", str(LOADER_SCRIPT)]
        if self._sandbox is not None:
            command = self._sandbox.wrap(command, python=python, scratch=scratch, env=env)
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            cwd=scratch,
            env=env,
            start_new_session=True,  # cwltool's children die with it
            preexec_fn=_limit_resources,
        )
        payload = json.dumps({"spec": spec, "parameters": parameters}).encode()
        try:
            async with asyncio.timeout(self._loader_timeout):
                out, _ = await process.communicate(payload)
        except TimeoutError as exc:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
            raise BackendTimeoutError(
                f"REANA's workflow loader took longer than {self._loader_timeout:.0f} s"
            ) from exc
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # anything the engines left running
        log.debug("workflow_loaded", returncode=process.returncode)
        return out.decode("utf-8", errors="replace")


@dataclass
class LoaderSandbox:
    """Bubblewrap around REANA's loaders, which run the user's code (a Snakefile is Python).

    The loader sees only the system's programs and libraries (read-only), the REANA
    environment, the loader script and the request's scratch folder; no network, no other
    process (a new PID namespace: not the service's /proc/<pid>/environ), no data folder, no
    key, no token — whatever the service holds.
    """

    bwrap: Path
    _unusable: str | None = field(default=None, init=False)
    _probed: bool = field(default=False, init=False)

    async def unusable(self) -> str | None:
        """Why the sandbox cannot start here (None: it can); probed once.

        bwrap needs user or mount namespaces, which a container's seccomp profile may deny.
        """
        if not self._probed:
            process = await asyncio.create_subprocess_exec(
                str(self.bwrap), "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/",
                "--proc", "/proc", "--dev", "/dev", "true",
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            _, err = await process.communicate()
            if process.returncode != 0:
                self._unusable = (
                    f"the sandbox (bubblewrap) cannot start here: {err.decode()[-200:]}"
                )
            self._probed = True
        return self._unusable

    def wrap(
        self, command: list[str], *, python: Path, scratch: Path, env: dict[str, str]
    ) -> list[str]:
        """``command`` as it runs inside the sandbox."""
        venv = python.parent.parent  # the environment (bin/python is a link into it)
        interpreter = Path(os.path.realpath(python)).parent.parent  # the base Python's prefix
        wrapped = [str(self.bwrap), "--unshare-all", "--die-with-parent", "--new-session"]
        wrapped += ["--ro-bind", "/usr", "/usr"]
        for path in ("/bin", "/lib", "/lib64", "/sbin"):
            wrapped += ["--ro-bind-try", path, path]
        for path in ("/etc/passwd", "/etc/group", "/etc/nsswitch.conf", "/etc/ssl",
                     "/etc/localtime", "/etc/alternatives"):  # fmt: skip
            wrapped += ["--ro-bind-try", path, path]
        for folder in sorted({str(venv), str(interpreter), str(LOADER_SCRIPT.parent)}):
            wrapped += ["--ro-bind", folder, folder]
        # a private /tmp first: the scratch folder (often under /tmp) is bound over it
        wrapped += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]  # noqa: S108
        wrapped += ["--bind", str(scratch), str(scratch), "--chdir", str(scratch), "--clearenv"]
        for key, value in env.items():
            wrapped += ["--setenv", key, value]
        return [*wrapped, "--", *command]


@dataclass
class _EngineResult:
    errors: list[SpecFinding] = field(default_factory=list)
    warnings: list[SpecWarning] = field(default_factory=list)
    checked_files: list[str] = field(default_factory=list)
    unchecked: list[UncheckedFile] = field(default_factory=list)


def _touch_placeholders(root: Path, declared: list[tuple[str, str]]) -> None:
    """Empty stand-ins for declared inputs not sent: engines check that inputs exist."""
    base = root.resolve()
    for path, where in declared:
        target = (base / path).resolve()
        if not target.is_relative_to(base) or target.exists():
            continue
        if where == "inputs.directories":
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.touch()


def _limit_resources() -> None:
    import resource

    cpu = _LOADER_LIMITS["cpu_seconds"]
    size = _LOADER_LIMITS["file_bytes"]
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
