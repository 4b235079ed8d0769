// Shapes of the public API's answers that the dashboard reads (see docs/openapi.json).

export interface Problem {
  type?: string;
  title: string;
  status: number;
  detail?: string | null;
  request_id?: string | null;
  errors?: FieldError[] | null;
}

export interface FieldError {
  loc?: (string | number)[];
  msg: string;
  type?: string;
  line?: number | null;
  column?: number | null;
  path?: string;
}

export interface SessionUser {
  sub: string;
  username: string;
  name?: string | null;
  email?: string | null;
  groups: string[];
}

export interface Session {
  access_token: string;
  expires_at: number;
  session_expires_at: number;
  user: SessionUser;
}

export type Role = "owner" | "maintainer" | "member" | "viewer";
export const ROLES: Role[] = ["owner", "maintainer", "member", "viewer"];

export interface Project {
  slug: string;
  name: string;
  description: string;
  visibility: "private" | "public";
  scope: string;
  archived: boolean;
  links: { title: string; url: string }[];
  created_at: string;
  updated_at: string;
  role?: Role | null;
}

export interface Member {
  id: string;
  issuer: string;
  subject: string;
  username?: string | null;
  role: Role;
  added_at: string;
}

export interface GroupBinding {
  group: string;
  role: Role;
  added_at: string;
}

export interface Invitation {
  id: string;
  project: string;
  project_name: string;
  role: Role;
  username?: string | null;
  subject?: string | null;
  state: string;
  message?: string | null;
  invited_by?: string | null;
  /** false: nobody has signed in with this user name yet (perhaps a typo). */
  invitee_known?: boolean | null;
  created_at: string;
  expires_at: string;
}

export interface Items<T> {
  items: T[];
}

export interface Scope {
  name: string;
  account?: string | null;
  mine: boolean;
  project?: string | null;
}

export type DidType = "file" | "dataset" | "container";

export interface Did {
  scope: string;
  name: string;
  type: DidType;
  bytes?: number | null;
  length?: number | null;
  adler32?: string | null;
  md5?: string | null;
  account?: string | null;
  open?: boolean | null;
  created_at?: string | null;
  updated_at?: string | null;
  metadata: Record<string, unknown>;
}

export interface DidPage {
  items: Did[];
  offset: number;
  limit: number;
  next_offset?: number | null;
}

export interface UploadedFile {
  scope: string;
  name: string;
  bytes: number;
  adler32: string;
  md5: string;
  rse: string;
  dataset?: string | null;
  created: boolean;
}

export interface Replica {
  rse: string;
  state: string;
  url?: string | null;
  path?: string | null;
}

export interface FileReplicas {
  scope: string;
  name: string;
  bytes?: number | null;
  replicas: Replica[];
}

export interface Rule {
  id: string;
  account: string;
  scope: string;
  name: string;
  did_type?: string | null;
  rse_expression: string;
  copies: number;
  state: string;
  error?: string | null;
  locks_ok: number;
  locks_replicating: number;
  locks_stuck: number;
  locked_bytes?: number | null;
  expires_at?: string | null;
  created_at?: string | null;
}

export interface RseUsage {
  rse: string;
  used_bytes: number;
  used_files: number;
  limit_bytes?: number | null;
  remaining_bytes?: number | null;
  rse_free_bytes?: number | null;
}

export interface Usage {
  account: string;
  rses: RseUsage[];
  used_bytes: number;
  limit_bytes?: number | null;
}

export interface Rse {
  name: string;
  availability_write?: boolean | null;
}

export type RunStatus =
  | "queued"
  | "running"
  | "finished"
  | "failed"
  | "cancelled"
  | "interrupted"
  | "deleted";

export const FINAL_STATUSES: RunStatus[] = ["finished", "failed", "cancelled", "interrupted", "deleted"];

export interface RunSummary {
  id: string;
  name: string;
  status: RunStatus;
  backend: string;
  workflow_type: string;
  created_at: string;
  started_at?: string | null;
  finished_at?: string | null;
  progress?: { total: number; finished: number; running: number; failed: number };
}

export interface RunOutput {
  path: string;
  bytes: number;
  adler32: string;
  md5: string;
  did?: string | null;
}

export interface RunInput {
  kind: string;
  path: string;
  did?: string | null;
  bytes?: number | null;
}

export interface Step {
  index: number;
  name: string;
  status: string;
  image?: string | null;
  execution?: string | null;
  exit_code?: number | null;
  message?: string | null;
}

export interface Run extends RunSummary {
  owner: string;
  project?: string | null;
  inputs: RunInput[];
  outputs: RunOutput[];
  steps: Step[];
  warnings?: string[];
  error?: { title?: string; detail?: string } | null;
  output_dataset?: string | null;
}

export interface RunPage {
  items: RunSummary[];
  total: number;
  page: number;
  size: number;
}

export interface SpecFinding {
  loc: (string | number)[];
  path: string;
  msg: string;
  type: string;
  line?: number | null;
  column?: number | null;
}

export interface SpecWarning {
  type: string;
  message: string;
  path?: string | null;
  line?: number | null;
}

export interface ValidationReport {
  valid: boolean;
  workflow_type?: string | null;
  errors: SpecFinding[];
  warnings: SpecWarning[];
}

export interface FacetCount {
  value: string;
  count: number;
}

export interface SoftwareHit {
  id: number;
  name: string;
  description: string;
  latest_version: string;
  licenses?: string[];
  keywords?: string[];
  programming_languages?: string[];
  community?: string | null;
  project?: string | null;
}

export interface CatalogueSearch {
  total: number;
  page: number;
  size: number;
  items: SoftwareHit[];
  facets: Record<string, FacetCount[]>;
}

export interface Software {
  id: number;
  name: string;
  description: string;
  registrant: string;
  project?: string | null;
  latest_version: string;
  versions: string[];
  licenses?: string[];
  keywords?: string[];
  programming_languages?: string[];
  code_repository?: string | null;
  dois?: string[];
}

export interface Registration {
  created: boolean;
  software: Software;
  version: string;
  warnings?: FieldError[];
}

export interface ZenodoCredentials {
  registered: boolean;
  zenodo_url: string;
}

export interface Deposition {
  id: string;
  state: string;
  zenodo_id: number;
  doi?: string | null;
  title?: string | null;
  html_url?: string | null;
  sources?: string[];
  run_id?: string | null;
  files?: { did: string; filename: string; bytes: number; state: string }[];
  error?: { title?: string; detail?: string } | null;
  created_at: string;
}

export interface ZenodoImport {
  id: string;
  state: string;
  record_id: number;
  doi?: string | null;
  title: string;
  scope: string;
  dataset: string;
  total_bytes: number;
  bytes_done: number;
  files: { key: string; did: string; bytes: number; state: string }[];
  error?: { title?: string; detail?: string } | null;
  created_at: string;
}

export interface ProvNode {
  id: string;
  category: "entity" | "activity";
  type: string;
  project?: string | null;
  label?: string | null;
  actor?: string | null;
  started_at?: string | null;
}

export interface ProvEdge {
  source: string;
  target: string;
  relation: "used" | "wasGeneratedBy";
}

export interface ProvGraph {
  root: string;
  direction: "up" | "down";
  depth: number;
  nodes: ProvNode[];
  edges: ProvEdge[];
  truncated: boolean;
}

export interface SearchHit {
  type: string;
  id: string;
  title: string;
  project?: string | null;
  links: Record<string, string>;
}

export interface SearchResults {
  query: string;
  items: SearchHit[];
  partial: boolean;
  sources: Record<string, "ok" | "timeout" | "error" | "skipped">;
}

export type VoServiceType = "tap" | "scs" | "sia2";

export interface VoService {
  name: string;
  type: VoServiceType;
  url: string;
  title?: string | null;
  description?: string | null;
  ivoid?: string | null;
  protected: boolean;
}

export interface VoCapability {
  standard_id?: string | null;
  languages: string[];
  upload_methods: string[];
  output_formats: string[];
}

export interface VoServiceDetail extends VoService {
  capabilities: VoCapability[];
  capabilities_error?: string | null;
}

export interface VoColumn {
  name: string;
  datatype?: string | null;
  unit?: string | null;
  ucd?: string | null;
  description?: string | null;
}

export interface VoTable {
  name: string;
  schema_name?: string | null;
  description?: string | null;
  columns: VoColumn[];
}

export interface IvoaQuery {
  id: string;
  owner: string;
  service: string;
  service_type: VoServiceType;
  query: string;
  maxrec: number;
  mode: "sync" | "async";
  phase: "QUEUED" | "EXECUTING" | "COMPLETED" | "ERROR" | "ABORTED" | "INTERRUPTED";
  destination: string;
  format: string;
  project?: string | null;
  result?: { did: string; rows: number; columns: string[]; bytes: number; format: string; truncated: boolean } | null;
  error?: { title?: string; detail?: string; type?: string; status?: number } | null;
  warnings: string[];
  created_at: string;
  finished_at?: string | null;
  execution_seconds?: number | null;
}

export interface RegistryResource {
  ivoid: string;
  title?: string | null;
  short_name?: string | null;
  description?: string | null;
  waveband: string[];
  service_type?: VoServiceType | null;
  access_url?: string | null;
}

// ---- reproductions (POST /zenodo/reproductions): a DOI back to a re-run, compared file by file
export type ReproductionState = "queued" | "checking" | "running" | "comparing" | "finished" | "cancelled" | "interrupted";
export type Verdict = "reproduced" | "reproduced within tolerance" | "differs" | "could not run";

export interface InputCheck {
  path: string;
  did?: string | null;
  md5?: string | null;
  source: "data lake" | "record" | "inline" | "missing" | "changed";
  used?: string | null;
  detail?: string | null;
}

export interface ColumnDifference {
  column: string;
  max_relative_difference?: number | null;
  detail?: string | null;
}

export interface FileComparison {
  path: string;
  outcome: "identical" | "within tolerance" | "differs" | "missing";
  method?: "checksum" | "table" | "text" | "bytes";
  original_md5?: string | null;
  reproduced_md5?: string | null;
  original_bytes?: number | null;
  reproduced_bytes?: number | null;
  columns?: ColumnDifference[];
  max_relative_difference?: number | null;
  diff?: string | null;
  detail?: string | null;
}

export interface Reproduction {
  id: string;
  doi: string;
  record_id: number;
  project?: string | null;
  state: ReproductionState;
  verdict?: Verdict | null;
  reason?: string | null;
  tolerance: number;
  original_run_id?: string | null;
  run_id?: string | null;
  inputs: InputCheck[];
  files: FileComparison[];
  created_at: string;
  finished_at?: string | null;
}
