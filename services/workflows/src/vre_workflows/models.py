"""API models of the workflows service (pydantic)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

RunStatus = Literal[
    "queued", "running", "finished", "failed", "cancelled", "interrupted", "deleted"
]
StepStatus = Literal[
    "pending", "running", "finished", "failed", "cancelled", "skipped", "interrupted"
]
Backend = Literal["local", "reana", "slurm"]
Execution = Literal["container", "host", "engine", "reana"]

ACTIVE_STATUSES: tuple[RunStatus, ...] = ("queued", "running")
TERMINAL_STATUSES: tuple[RunStatus, ...] = (
    "finished",
    "failed",
    "cancelled",
    "interrupted",
    "deleted",
)

SCOPE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,29}$"
DID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,29}:[/A-Za-z0-9][/A-Za-z0-9._-]{0,249}$"
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$"
PROJECT_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$"  # the gateway's slugs


class SpecFinding(BaseModel):
    """One error in a reana.yaml: where (``loc``, dotted ``path``, line/column) and what."""

    loc: list[str | int] = Field(description="Location in the request, e.g. ['spec', 'workflow'].")
    path: str = Field(description="Dotted path inside the reana.yaml ('' for the document).")
    msg: str
    type: str = Field(description="'schema.<keyword>', 'syntax', 'path', 'parameters', …")
    line: int | None = Field(default=None, description="1-based line in the YAML/JSON text.")
    column: int | None = None


class SpecWarning(BaseModel):
    """A non-blocking finding: unknown property, unused/undefined parameter, risky command."""

    type: str
    message: str
    path: str | None = None
    line: int | None = None


class UncheckedFile(BaseModel):
    """A file the reana.yaml names that the validation could not look at, and why."""

    path: str = Field(description="The file's workspace path, as the reana.yaml names it.")
    field: str = Field(description="Where the reana.yaml names it, e.g. 'workflow.file'.")
    reason: str


class ValidationReport(BaseModel):
    """The outcome of validating a reana.yaml with REANA's official validator and ours."""

    valid: bool
    workflow_type: str | None = None
    spec_sha256: str | None = Field(default=None, description="SHA-256 of the canonical JSON.")
    errors: list[SpecFinding] = Field(default_factory=list)
    warnings: list[SpecWarning] = Field(default_factory=list)
    checked_files: list[str] = Field(
        default_factory=list,
        description="The workflow's files loaded by REANA's own loaders (cwltool --pack, "
        "snakemake, yadage), as reana-client validate loads them.",
    )
    unchecked: list[UncheckedFile] = Field(
        default_factory=list,
        description="Files the reana.yaml names that were not checked (not sent, or coming "
        "from the Data Lake at run time): `valid` says nothing about them.",
    )


class OutputDestination(BaseModel):
    """Where a successful run's declared outputs are registered in the Data Lake."""

    model_config = ConfigDict(extra="forbid")

    scope: str = Field(pattern=SCOPE_PATTERN, description="Data Lake scope, e.g. user.alice.")
    dataset: str | None = Field(
        default=None,
        pattern=NAME_PATTERN,
        description="Dataset name (default: named after the run).",
    )
    rse_expression: str | None = Field(
        default=None, max_length=500, description="Where to write the files (an RSE)."
    )
    lifetime: int | None = Field(
        default=None, gt=0, description="Seconds the registered DIDs live (None: forever)."
    )


class InputRef(BaseModel):
    """A Data Lake DID to stage into the workspace (file, dataset or container)."""

    model_config = ConfigDict(extra="forbid")

    did: str = Field(pattern=DID_PATTERN, description="scope:name")
    path: str | None = Field(
        default=None,
        max_length=1024,
        description=(
            "Where in the workspace: the file's path for a file DID, the folder for a dataset "
            "or container (default: the file names at the workspace root)."
        ),
    )


class RunCreate(BaseModel):
    """A run submission (JSON body; the multipart form carries the same fields)."""

    model_config = ConfigDict(extra="forbid")

    spec: str | dict[str, Any] = Field(description="The reana.yaml, as YAML/JSON text or object.")
    parameters: dict[str, Any] = Field(
        default_factory=dict, description="Values overriding inputs.parameters."
    )
    inputs: list[InputRef] = Field(default_factory=list, max_length=1000)
    files: dict[str, str] = Field(
        default_factory=dict,
        description="Small text files (code, Snakefile, CWL) by workspace path.",
    )
    backend: Backend | None = Field(
        default=None,
        description="Where the steps run: local, reana or slurm. Default: slurm when a step "
        "says `compute_backend: slurmcern`, else the deployment's default backend.",
    )
    reana_server: str | None = Field(
        default=None, description="Which REANA server (backend=reana)."
    )
    output: OutputDestination | None = None
    name: str | None = Field(default=None, pattern=NAME_PATTERN)
    register_partial_outputs: bool = Field(
        default=False, description="Register the outputs that exist even if the run fails."
    )
    project: str | None = Field(
        default=None,
        pattern=PROJECT_PATTERN,
        description="The Science Project the run belongs to (its slug): submitting needs "
        "runs.submit there, its members see the run (runs.read) and may cancel it "
        "(runs.cancel); the outputs go to the project's scope. None: a personal run.",
    )


class RunRerun(BaseModel):
    """A re-run of an earlier run: same specification and inputs, changed parameters."""

    model_config = ConfigDict(extra="forbid")

    parameters: dict[str, Any] = Field(
        default_factory=dict, description="Overrides on top of the original run's parameters."
    )
    name: str | None = Field(default=None, pattern=NAME_PATTERN)
    output: OutputDestination | None = Field(
        default=None, description="Default: the original run's destination."
    )


class StatusChange(BaseModel):
    """One entry of a run's status history."""

    status: RunStatus
    at: datetime
    detail: str | None = None


class Step(BaseModel):
    """One step of a run and its progress."""

    index: int
    name: str
    status: StepStatus
    image: str | None = None
    execution: Execution | None = Field(
        default=None, description="How it ran: container, host (no image), engine, reana."
    )
    exit_code: int | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    message: str | None = None
    commands: list[str] = Field(default_factory=list)


class RunInput(BaseModel):
    """A file placed in the workspace before the run, with its checksums."""

    kind: Literal["did", "upload", "inline"]
    path: str
    requested: str | None = Field(default=None, description="The DID the user asked for.")
    did: str | None = Field(default=None, description="The file DID (scope:name).")
    bytes: int | None = None
    adler32: str | None = None
    md5: str | None = None
    staged_by: str | None = Field(
        default=None, description="link, copy, download (DIDs), upload (REANA workspace)."
    )


class RunOutput(BaseModel):
    """A declared output the run produced."""

    path: str
    bytes: int
    adler32: str
    md5: str
    did: str | None = Field(default=None, description="Its DID once registered.")
    registered_at: datetime | None = None


class Progress(BaseModel):
    """Step counts."""

    total: int = 0
    finished: int = 0
    running: int = 0
    failed: int = 0


class RunSummary(BaseModel):
    """A run as listed."""

    id: str
    name: str
    status: RunStatus
    backend: Backend
    workflow_type: str
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    progress: Progress = Field(default_factory=Progress)


class Run(RunSummary):
    """A run with everything recorded about it."""

    owner: str = Field(description="The owner's user name.")
    project: str | None = Field(
        default=None, description="The project the run belongs to (None: personal)."
    )
    reana_server: str | None = None
    spec_sha256: str
    parameters: dict[str, Any]
    images: list[str]
    requested_inputs: list[InputRef] = Field(
        default_factory=list, description="The DIDs the submission asked for."
    )
    inputs: list[RunInput]
    outputs: list[RunOutput]
    steps: list[Step]
    history: list[StatusChange]
    backend_ids: dict[str, str] = Field(default_factory=dict)
    destination: OutputDestination | None = None
    output_dataset: str | None = Field(default=None, description="The dataset DID of outputs.")
    provenance_did: str | None = Field(
        default=None,
        description="The run's provenance manifest (vre-run.json) registered with the outputs.",
    )
    register_partial_outputs: bool = False
    warnings: list[str] = Field(default_factory=list)
    error: dict[str, Any] | None = Field(
        default=None, description="Why the run failed, as a problem (type, title, detail)."
    )
    rerun_of: str | None = None
    workspace_removed: bool = False


class RunPage(BaseModel):
    """One page of runs, newest first."""

    items: list[RunSummary]
    total: int
    page: int
    size: int


class OutputList(BaseModel):
    """A run's declared outputs."""

    run_id: str
    dataset: str | None = None
    items: list[RunOutput]


class ReanaCredentialsIn(BaseModel):
    """A REANA access token to register for the caller."""

    model_config = ConfigDict(extra="forbid")

    token: SecretStr = Field(description="The REANA access token (stored encrypted).")
    server: str | None = Field(default=None, description="Which REANA server (default one).")


class ReanaCredentials(BaseModel):
    """A registered REANA token (never the token itself)."""

    server: str
    url: str
    reana_user: str | None = Field(default=None, description="Who REANA says the token is.")
    registered_at: datetime


class ReanaCredentialsList(BaseModel):
    """The caller's registered REANA tokens."""

    items: list[ReanaCredentials]
