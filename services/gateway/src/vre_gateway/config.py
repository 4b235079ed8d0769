"""Gateway settings (environment variables VRE_…)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from vre_common.search import SEARCH_ROUTES
from vre_common.settings import AuthSettings, DatabaseSettings, VreSettings, data_dir_default

SERVICES = ("datalake", "workflows", "catalogue", "zenodo", "ivoa")


class DevUser(BaseModel):
    """A user of the embedded development issuer."""

    groups: list[str] = Field(default_factory=list)
    email: str | None = None
    name: str | None = None


def _default_dev_users() -> dict[str, DevUser]:
    return {
        "alice": DevUser(groups=["/vre", "/vre/alpha"], email="alice@example.org", name="Alice"),
        "bob": DevUser(groups=["/vre", "/vre/beta"], email="bob@example.org", name="Bob"),
        "carol": DevUser(groups=["/other"], email="carol@example.org", name="Carol"),
    }


class DevIssuerSettings(BaseModel):
    """The embedded development token issuer (never on unless configured)."""

    enabled: bool = False
    path: str = Field(default="/dev-issuer/", description="Where the issuer is served.")
    audience: str = "vre"
    token_lifetime_seconds: int = Field(default=3600, gt=0, le=86_400)
    refresh_token_lifetime_seconds: int = Field(default=12 * 3600, gt=0)
    users: dict[str, DevUser] = Field(default_factory=_default_dev_users)


class RateLimitSettings(BaseModel):
    """Per-caller request rate limit (token bucket)."""

    enabled: bool = True
    requests_per_second: float = Field(default=200.0, gt=0)
    burst: int = Field(default=400, gt=0)


class ProjectSettings(BaseModel):
    """Self-service Science Projects."""

    max_projects_per_user: int = Field(
        default=20, ge=0, description="Projects one user may own (archived ones included)."
    )
    create_groups: list[str] = Field(
        default_factory=list,
        description="If set, only members of these IAM groups may create projects.",
    )
    scope_prefix: str = Field(
        default="proj.",
        pattern=r"^[a-z0-9_.-]{1,10}$",
        description="A project's Data Lake scope is <prefix><slug> (at most 25 characters).",
    )
    scope_quota_bytes: int | None = Field(
        default=100 * 2**30,
        ge=0,
        description="Account limit asked for a new project scope (None: the datalake default).",
    )
    provisioner_token: SecretStr | None = Field(
        default=None,
        description="Distributed mode: the gateway's service token for creating project scopes "
        "(POST {datalake}/scopes accepts only its provisioner groups/clients and admins).",
    )
    provisioner_token_file: Path | None = Field(
        default=None,
        description="File holding that token, read at each project creation (rotated tokens).",
    )
    invitation_ttl_days: int = Field(default=14, gt=0, le=365)
    directory_ttl_seconds: float = Field(
        default=5.0, ge=0, description="How long services may cache a project access answer."
    )

    @property
    def max_slug_length(self) -> int:
        """Rucio scopes have at most 25 characters, prefix included."""
        return 25 - len(self.scope_prefix)


class ProvenanceSettings(BaseModel):
    """The provenance graph."""

    ingest_clients: list[str] = Field(
        default_factory=list,
        description="OAuth client ids (token `client_id`) allowed to post events.",
    )
    ingest_groups: list[str] = Field(
        default_factory=lambda: ["/vre/services"],
        description="IAM groups allowed to post events (the admin groups always are).",
    )
    max_depth: int = Field(default=20, gt=0, le=100)
    max_nodes: int = Field(default=2000, gt=0)


SearchSourceName = Literal["projects", "datalake", "catalogue", "workflows", "zenodo", "ivoa"]
SEARCH_SOURCES: tuple[SearchSourceName, ...] = (
    "projects",
    "datalake",
    "catalogue",
    "workflows",
    "zenodo",
    "ivoa",
)


class SearchSettings(BaseModel):
    """The federated search: which sources, how long each may take."""

    sources: list[SearchSourceName] = Field(default_factory=lambda: list(SEARCH_SOURCES))
    timeout_seconds: float = Field(default=3.0, gt=0, description="Per source.")
    timeouts: dict[str, float] = Field(
        default_factory=dict, description="Per-source overrides, e.g. {'zenodo': 5}."
    )
    per_source_limit: int = Field(default=20, gt=0, le=100)
    max_scopes: int = Field(
        default=20, gt=0, description="Project scopes searched for DIDs per request."
    )
    # The defaults: each service's declared search route (vre_common.search).
    paths: dict[str, str] = Field(
        default_factory=lambda: {
            r.service: r.path for r in SEARCH_ROUTES.values() if not r.per_project_scope
        },
        description="The list or search endpoint of each service.",
    )
    query_params: dict[str, str | None] = Field(
        default_factory=lambda: {
            r.service: r.query_param for r in SEARCH_ROUTES.values() if not r.per_project_scope
        },
        description="The query parameter each endpoint filters by; None: the gateway keeps "
        "the items whose title contains the words.",
    )


DEFAULT_WEB_SCOPES = [
    "openid",
    "profile",
    "email",
    "offline_access",
    "storage.read:/",
    "storage.modify:/",
    "compute.read",
    "compute.create",
    "compute.cancel",
    "compute.modify",
]


class WebSettings(BaseModel):
    """The browser interface: landing page, sign-in (OpenID Connect code + PKCE), dashboard."""

    enabled: bool = True
    issuer: str | None = Field(
        default=None,
        description="Issuer users sign in with (default: the development issuer when it is on, "
        "else the first of auth.issuers). Its tokens must pass the gateway's validation.",
    )
    issuer_name: str = Field(
        default="IAM", description="How the sign-in button names the issuer, e.g. 'ESCAPE IAM'."
    )
    client_id: str = Field(default="vre-web", description="The OAuth client registered at IAM.")
    client_secret: SecretStr | None = Field(
        default=None, description="For a confidential client (sent with HTTP Basic)."
    )
    scopes: list[str] = Field(default_factory=lambda: list(DEFAULT_WEB_SCOPES))
    authorize_params: dict[str, str] = Field(
        default_factory=dict,
        description="Extra authorization request parameters, e.g. {'audience': 'vre'}.",
    )
    session_lifetime_seconds: int = Field(
        default=12 * 3600, gt=0, description="After this the user signs in again."
    )
    refresh_margin_seconds: int = Field(
        default=60, ge=0, description="Renew the access token this long before it expires."
    )
    session_key: SecretStr | None = Field(
        default=None,
        description="Fernet key encrypting stored session tokens and the sign-in cookie "
        "(default: a key file in the data folder; set it when several gateways share a "
        "database).",
    )
    previous_session_keys: list[SecretStr] = Field(default_factory=list)
    assets_dir: Path | None = Field(
        default=None, description="The built dashboard (default: web/dist of the source tree)."
    )
    docs_dir: Path | None = Field(
        default=None, description="Guides served under /guide (default: docs/ of the source tree)."
    )


class GatewaySettings(VreSettings):
    """Configuration of the gateway."""

    model_config = SettingsConfigDict(env_prefix="VRE_", extra="forbid", env_nested_delimiter="__")

    mode: Literal["embedded", "distributed"] = "embedded"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    public_url: str | None = Field(
        default=None, description="The URL users reach the gateway at (default from host/port)."
    )
    data: Path = Field(default_factory=data_dir_default, description="Data folder (VRE_DATA).")
    problem_base_uri: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s]+$",
        description="Base of the `type` URI of every problem (error) document; the gateway "
        "serves a page per problem type at /problems/{slug}. Default: public_url + /problems/ "
        "if set, else the origin the client called. Services in their own processes read the "
        "same variable (VRE_PROBLEM_BASE_URI).",
        examples=["https://vre.example.org/problems/"],
    )
    auth: AuthSettings = Field(default_factory=AuthSettings)
    dev_issuer: DevIssuerSettings = Field(default_factory=DevIssuerSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    service_urls: dict[str, str] = Field(
        default_factory=dict,
        description="Distributed mode: base URL of each service, e.g. {'datalake': 'http://…'}.",
    )
    proxy_buffer_bytes: int = Field(
        default=1 << 20, description="Bodies up to this size are buffered; larger ones streamed."
    )
    proxy_connect_timeout: float = 3.0
    proxy_read_timeout: float = 60.0
    max_body_bytes: int = Field(
        default=10 << 20, description="Request body limit except on streaming upload routes."
    )
    max_query_bytes: int = Field(
        default=8192, gt=0, description="Longest query string accepted (414 beyond)."
    )
    streaming_routes: list[str] = Field(
        default_factory=lambda: ["PUT /datalake/files/", "POST /workflows/runs"],
        description="'METHOD /prefix' of routes exempt from the body limit.",
    )
    cors_origins: list[str] = Field(default_factory=list)
    readiness_details: Literal["public", "signed-in"] = Field(
        default="public",
        description="Who sees why a dependency of /readyz is down (its error text): everyone, "
        "or only callers with a valid token (deployments: the reasons can name internal hosts). "
        "Up/down and the status code are always public.",
    )
    rate_limit: RateLimitSettings = Field(default_factory=RateLimitSettings)
    log_level: str = "INFO"
    migrations: Literal["auto", "upgrade", "verify"] = Field(
        default="auto",
        description="At start: upgrade the gateway database, or refuse to start when it is "
        "not at the newest migration; auto = upgrade in embedded mode (and for an in-memory "
        "SQLite database), verify in distributed mode.",
    )
    projects: ProjectSettings = Field(default_factory=ProjectSettings)
    provenance: ProvenanceSettings = Field(default_factory=ProvenanceSettings)
    search: SearchSettings = Field(default_factory=SearchSettings)
    web: WebSettings = Field(default_factory=WebSettings)

    @property
    def problem_base(self) -> str | None:
        """The configured base of problem type URIs (None: the origin of each request)."""
        if self.problem_base_uri:
            return self.problem_base_uri.rstrip("/") + "/"
        return f"{self.public_url.rstrip('/')}/problems/" if self.public_url else None

    @property
    def base_url(self) -> str:
        """The gateway's own URL."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    def service_url(self, name: str) -> str:
        """Where a service answers: its configured URL, else under the gateway's own URL."""
        return self.service_urls.get(name, f"{self.base_url}/{name}").rstrip("/")

    @property
    def dev_issuer_url(self) -> str:
        """The development issuer's identifier (with trailing slash, as IAM's)."""
        return self.base_url + self.dev_issuer.path
