"""Settings of the workflows service (environment variables VRE_WORKFLOWS_…)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from vre_common.settings import (
    GatewayUrl,
    HttpClientSettings,
    ProjectSettings,
    ProvenanceSettings,
    ServiceSettings,
    data_dir_default,
)

_VENV_BIN = Path(sys.prefix) / "bin"


def _default_validator_python() -> Path:
    # Development layout: .venv-reana next to the project's .venv.
    return Path(sys.prefix).parent / ".venv-reana" / "bin" / "python"


class ContainerSettings(BaseModel):
    """How the local executor runs a step in its declared image (podman)."""

    runtime: Literal["podman", "none"] = Field(
        default="podman", description="'none' never uses containers (host execution only)."
    )
    podman: str = Field(default="podman", description="The podman executable.")
    containers_conf: Path | None = Field(
        default=None,
        description="A containers.conf for podman (CONTAINERS_CONF): ulimits, runtime=runc.",
    )
    network: str = Field(default="none", description="podman --network for steps.")
    default_memory_limit: str | None = Field(
        default=None, description="Memory limit of a step without kubernetes_memory_limit."
    )
    pids_limit: int = Field(default=4096, gt=0)
    check_timeout_seconds: float = Field(default=20.0, gt=0)
    pull_policy: Literal["never", "missing", "always"] = Field(
        default="missing",
        description="Images a step names: 'missing' pulls those not in local storage before "
        "the run's first step, 'always' pulls every one (newest), 'never' uses local images "
        "only (a deployment without registries).",
    )
    allowed_registries: list[str] = Field(
        default_factory=lambda: [
            "docker.io",
            "registry.cern.ch",
            "gitlab-registry.cern.ch",
            "ghcr.io",
            "quay.io",
        ],
        description="Registries images may be pulled from (host[:port]; an image without a "
        "registry is docker.io's); others are refused with the list.",
    )
    registries_conf: Path | None = Field(
        default=None,
        description="A registries.conf for podman (CONTAINERS_REGISTRIES_CONF): mirrors, "
        "insecure (plain HTTP) registries.",
    )
    pull_timeout_seconds: float = Field(
        default=1800.0, gt=0, description="Time limit of one image pull."
    )


class LocalExecutorSettings(BaseModel):
    """The embedded executor: real subprocesses in per-run workspaces."""

    max_concurrent_runs: int = Field(
        default=2, ge=1, description="Runs executing at once; more wait in a FIFO queue."
    )
    default_step_timeout_seconds: float = Field(
        default=24 * 3600.0, gt=0, description="Time limit of a step without its own."
    )
    max_step_timeout_seconds: float = Field(
        default=7 * 24 * 3600.0, gt=0, description="Upper bound of a step's kubernetes_job_timeout."
    )
    kill_grace_seconds: float = Field(
        default=5.0, ge=0, description="SIGTERM → SIGKILL delay when a step is stopped."
    )
    allow_host_execution: bool = Field(
        default=False,
        description=(
            "Run a step on the host when its image is not available locally (recorded on the "
            "run). Off: such a run is refused with the image name and how to provide it."
        ),
    )
    path: str = Field(
        default="/usr/local/bin:/usr/bin:/bin", description="PATH of steps run on the host."
    )
    step_env: dict[str, str] = Field(
        default_factory=dict, description="Extra environment of every step (never secrets)."
    )
    snakemake: list[str] = Field(
        default_factory=lambda: [str(_VENV_BIN / "snakemake")],
        description="Command that runs snakemake (its CLI).",
    )
    cwltool: list[str] = Field(
        default_factory=lambda: [str(_VENV_BIN / "cwltool")],
        description="Command that runs cwltool (its CLI).",
    )
    staging: Literal["link", "copy"] = Field(
        default="link",
        description="POSIX replicas on this machine: hard link (falls back to copy) or copy.",
    )
    containers: ContainerSettings = Field(default_factory=ContainerSettings)


class ReanaServerSettings(BaseModel):
    """One REANA cluster."""

    url: str = Field(description="Base URL of the REANA server (without /api).")
    verify: bool | str = Field(default=True, description="TLS verification (or a CA bundle).")
    http: HttpClientSettings = Field(default_factory=HttpClientSettings)

    @field_validator("url")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.rstrip("/")


class ReanaSettings(BaseModel):
    """The REANA backend: servers, polling, the key that encrypts users' REANA tokens."""

    servers: dict[str, ReanaServerSettings] = Field(default_factory=dict)
    default_server: str | None = Field(
        default=None, description="Server used when a run names none (default: the only one)."
    )
    credentials_key: SecretStr | None = Field(
        default=None,
        description=(
            "Fernet key (urlsafe base64, 32 bytes) encrypting stored REANA tokens. Unset: a key "
            "is generated once in the data folder (embedded mode)."
        ),
    )
    poll_initial_seconds: float = Field(default=2.0, gt=0)
    poll_max_seconds: float = Field(default=60.0, gt=0)
    poll_factor: float = Field(default=1.5, ge=1)
    poll_outage_seconds: float = Field(
        default=300.0,
        ge=0,
        description="How long REANA may keep failing status polls (5xx, timeouts) before the "
        "run is failed; a run outlives a short outage of the cluster's API.",
    )
    max_active_runs: int = Field(default=100, ge=1, description="REANA runs monitored at once.")


class SlurmSettings(BaseModel):
    """The Slurm backend: steps of a run become batch jobs on an existing cluster.

    The VRE's host is a submit host of the cluster (Slurm's client commands, the cluster's
    slurm.conf and munge key); run workspaces live under ``workspace_root``, a folder every
    compute node mounts at the same path.
    """

    enabled: bool = Field(default=False, description="Offer the 'slurm' backend.")
    bin_dir: Path | None = Field(
        default=None,
        description="Folder of sbatch, squeue, scontrol, scancel and sinfo (None: from PATH).",
    )
    slurm_conf: Path | None = Field(
        default=None, description="The cluster's slurm.conf (SLURM_CONF); None: Slurm's default."
    )
    workspace_root: Path | None = Field(
        default=None,
        description="Shared folder (same path on the submit host and every node) holding the "
        "runs' workspaces and logs; None: the data folder (a one-machine cluster).",
    )
    partitions: list[str] = Field(
        default_factory=list,
        description="Partitions runs may use (a step's slurm_partition must be one of them); "
        "empty: any partition, the cluster's default when a step names none.",
    )
    default_partition: str | None = Field(
        default=None, description="Partition of steps that name none (None: the cluster's)."
    )
    account: str | None = Field(
        default=None, description="Slurm account the jobs are charged to (sbatch --account)."
    )
    default_time_minutes: int | None = Field(
        default=None, gt=0, description="Time limit of a step without slurm_time (--time)."
    )
    max_active_runs: int = Field(
        default=50, ge=1, description="Runs with jobs on the cluster at once; more wait."
    )
    max_runs_per_project: int = Field(
        default=10,
        ge=1,
        description="Runs one project (or one user's personal runs) may have on Slurm at once "
        "(each serial run has one job at a time).",
    )
    poll_seconds: float = Field(default=1.0, gt=0, description="How often job states are read.")
    outage_seconds: float = Field(
        default=300.0,
        ge=0,
        description="How long the controller may fail to answer during a run before the run "
        "is failed (a restart of slurmctld is borne).",
    )
    command_timeout_seconds: float = Field(
        default=20.0, gt=0, description="Time limit of one Slurm client command."
    )
    snakemake_jobs: int = Field(
        default=4, ge=1, description="Slurm jobs one snakemake workflow may have at once."
    )
    snakemake_first_status_seconds: int = Field(
        default=40,
        ge=1,
        description="Seconds before snakemake's Slurm executor first asks for its jobs' states.",
    )
    snakemake_timeout_seconds: float = Field(
        default=6 * 3600.0,
        gt=0,
        description="Hard time limit of a snakemake workflow driven on Slurm (its process "
        "group is killed after it).",
    )


class DatalakeClientSettings(BaseModel):
    """Where the datalake service is (inputs are resolved, outputs registered there)."""

    url: str | None = Field(
        default=None, description="Base URL of the datalake service API; None: not configured."
    )
    http: HttpClientSettings = Field(default_factory=HttpClientSettings)


class WorkflowsSettings(ServiceSettings):
    """Configuration of the workflows service."""

    model_config = SettingsConfigDict(env_prefix="VRE_WORKFLOWS_")

    data_dir: Path = Field(
        default_factory=lambda: data_dir_default() / "workflows",
        description="Run workspaces and logs live here.",
    )
    run_migrations: bool = Field(
        default=True,
        description="Upgrade the database at start (embedded); off: refuse an old schema.",
    )
    validator_python: Path = Field(
        default_factory=_default_validator_python,
        description="Python of the REANA validator environment (reana-commons).",
    )
    validator_timeout_seconds: float = Field(default=30.0, gt=0)
    log_poll_seconds: float = Field(
        default=0.5, gt=0, description="How often a log follower looks for new lines."
    )
    max_inline_file_bytes: int = Field(
        default=1 << 20, gt=0, description="Total size of files given inline in a JSON run."
    )
    max_upload_bytes: int = Field(
        default=10 << 30, gt=0, description="Total size of files uploaded with a run."
    )
    default_backend: Literal["local", "reana", "slurm"] = Field(
        default="local",
        description="Backend of runs that name none and whose steps ask for no compute_backend.",
    )
    spec_loading: Literal["sandbox", "host", "off"] = Field(
        default="sandbox",
        description="How REANA's loaders check a cwl/snakemake/yadage specification sent with "
        "its files — they run the workflow's code (a Snakefile is Python): 'sandbox' inside "
        "bubblewrap (no network, no other process, nothing of the service visible; without "
        "bwrap the files are reported unchecked), 'host' as this service (the embedded "
        "single-user mode only: refused beside secrets), 'off' never (reported unchecked).",
    )
    local: LocalExecutorSettings = Field(default_factory=LocalExecutorSettings)
    reana: ReanaSettings = Field(default_factory=ReanaSettings)
    slurm: SlurmSettings = Field(default_factory=SlurmSettings)
    datalake: DatalakeClientSettings = Field(default_factory=DatalakeClientSettings)
    gateway_url: GatewayUrl = None
    projects: ProjectSettings = Field(default_factory=ProjectSettings)
    provenance: ProvenanceSettings = Field(default_factory=ProvenanceSettings)

    @model_validator(mode="after")
    def _no_host_execution_beside_secrets(self) -> WorkflowsSettings:
        """Steps on the host run as this service, with its environment and files: the
        database URL, the key that decrypts every user's REANA token, the provenance client.
        That is for the embedded single-user mode only; a deployment runs steps in
        containers or on the batch backend."""
        host = [
            name
            for name, on in (
                ("local.allow_host_execution", self.local.allow_host_execution),
                ("spec_loading=host", self.spec_loading == "host"),
            )
            if on
        ]
        if not host:
            return self
        present = [
            name
            for name, value in (
                ("gateway_url (the distributed mode)", self.gateway_url),
                ("reana.credentials_key", self.reana.credentials_key),
                ("provenance.client", self.provenance.client),
                ("provenance.service_token", self.provenance.service_token),
                ("provenance.service_token_file", self.provenance.service_token_file),
            )
            if value is not None
        ]
        if present:
            raise ValueError(
                f"{' and '.join(host)} is refused where the service holds secrets "
                f"({', '.join(present)}): the workflow's code would run as this service and "
                "could read them. Run steps in containers (podman) or on Slurm, and load "
                "specifications in the sandbox (spec_loading=sandbox)."
            )
        return self
