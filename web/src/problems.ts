// Problems in words for a person: what happened and what to do, chosen by the problem's
// `type` (then its status), never the API's field paths, routes or exception names.
import type { FieldError, Problem } from "./types";

export interface Explained {
  title: string;
  advice: string | null;
  fields: { label: string; message: string }[];
  /** The server's own words, only when they are already for a person. */
  detail: string | null;
}

/** Labels of request fields, by the field's last name in its location ("name", "slug"). */
export type FieldLabels = Record<string, string>;

const BY_TYPE: Record<string, { title: string; advice?: string }> = {
  "invalid-input": { title: "Some of what you entered is not accepted", advice: "Correct the fields listed and try again." },
  "invalid-name": { title: "Some of what you entered is not accepted", advice: "Correct the fields listed and try again." },
  "invalid-slug": { title: "The short name cannot be used", advice: "Choose a short name of lower-case letters, digits and dashes." },
  "bad-request": { title: "The request was not understood", advice: "Reload the page and try again." },
  "not-found": { title: "Not found", advice: "It may have been deleted, or the address is wrong." },
  conflict: { title: "This clashes with something that exists", advice: "Reload the page to see the current state." },
  forbidden: { title: "You may not do this", advice: "Ask the project's owner for a role that allows it." },
  "invalid-token": { title: "Your session has ended", advice: "Sign in again." },
  "insufficient-scope": { title: "Your sign-in does not allow this", advice: "Sign out and in again; if it persists, ask the VRE's operators." },
  "payload-too-large": { title: "This is too large to send", advice: "Send less at once, or upload large files to the Data Lake first." },
  "rate-limited": { title: "Too many requests at once", advice: "Wait a few seconds and try again." },
  "quota-exceeded": { title: "Your storage quota is full", advice: "Delete files or rules you no longer need, or ask for a larger quota." },
  "bad-gateway": { title: "A service behind the VRE answered with an error", advice: "Try again in a moment; if it persists, tell the VRE's operators the request id." },
  "backend-unavailable": { title: "A service behind the VRE is not reachable right now", advice: "Try again in a few minutes." },
  "service-not-configured": { title: "This VRE does not offer this", advice: "Ask the VRE's operators whether it can be turned on." },
  "backend-timeout": { title: "A service behind the VRE took too long", advice: "Try again; a smaller request may help." },
  // projects
  "project-exists": { title: "A project with this short name exists", advice: "Choose another short name." },
  "project-not-found": { title: "Project not found", advice: "It does not exist, or it is private and you are not a member: ask its owner for an invitation." },
  "project-limit": { title: "You have reached the number of projects you may own", advice: "Archive a project you no longer need, or ask the VRE's operators." },
  "project-has-data": { title: "The project still has data", advice: "Delete its files first, or archive it instead." },
  "last-owner": { title: "A project needs an owner", advice: "Make someone else owner first." },
  "member-exists": { title: "Already a member", advice: "Change their role in the members' list instead." },
  "member-not-found": { title: "No such member", advice: "Check the user name: they may not have signed in to the VRE yet. Invite them by user name instead." },
  "invitation-not-found": { title: "This invitation does not exist any more", advice: "It may have been revoked; reload the page." },
  "invitation-state": { title: "This invitation was already answered or has expired", advice: "Ask for a new invitation if you still want to join." },
  "provenance-not-found": { title: "Nothing is recorded for this yet", advice: "Events arrive a few seconds after an action; check the spelling of what you asked for." },
  // data lake
  "did-not-found": { title: "No such file or dataset", advice: "Check the name (names are case-sensitive); it may have been deleted." },
  "scope-not-found": { title: "No such scope", advice: "Choose one of your scopes from the Data Lake page." },
  "scope-forbidden": { title: "You may not open this scope", advice: "It belongs to someone else. Use your own scope or a project you are a member of." },
  "rse-not-found": { title: "No such storage element", advice: "Choose one from the list." },
  "rule-not-found": { title: "This rule does not exist any more", advice: "Reload the page to see your rules." },
  "did-exists": { title: "A file or dataset with this name exists", advice: "Choose another name." },
  "content-conflict": { title: "This cannot be added here", advice: "A file can be attached to a dataset, a dataset to a container." },
  "scope-provision-forbidden": { title: "You may not create this scope", advice: "Scopes are created with projects." },
  "rucio-access-denied": { title: "The Data Lake refused this", advice: "You may lack the rights on this scope or storage element." },
  "checksum-mismatch": { title: "The file arrived damaged", advice: "Upload it again." },
  "upload-aborted": { title: "The upload was interrupted", advice: "Upload the file again." },
  "storage-error": { title: "The storage could not be written or read", advice: "Try again in a moment, or choose another storage element." },
  "range-not-satisfiable": { title: "That part of the file does not exist", advice: "Download the whole file." },
  // workflows
  "invalid-workflow-specification": { title: "The reana.yaml has errors", advice: "Each one is shown next to its line." },
  "run-not-found": { title: "No such run", advice: "It may have been deleted." },
  "output-not-found": { title: "No such output", advice: "It may not have been registered." },
  "run-state": { title: "The run cannot do this in its present state", advice: "Reload the page to see its state." },
  "image-unavailable": { title: "A step's container image is not available here", advice: "Use an image available on this VRE, or ask its operators to provide it." },
  "local-execution-refused": { title: "This VRE does not run steps without their container", advice: "Use an image that is available here." },
  "reana-credentials-missing": { title: "No REANA access token is registered", advice: "Register your REANA token first." },
  "reana-token-rejected": { title: "REANA refused your token", advice: "Register a new REANA token." },
  "reana-quota-exceeded": { title: "Your REANA quota is used up", advice: "Delete old runs on REANA, or ask for more quota." },
  "reana-request-refused": { title: "REANA refused the run", advice: "Check the reana.yaml and the inputs." },
  "projects-unavailable": { title: "Projects cannot be checked right now", advice: "Try again in a moment." },
  // catalogue
  "invalid-codemeta": { title: "The codemeta.json has problems", advice: "Each one is listed below." },
  "software-not-found": { title: "No such software", advice: "It may have been removed from the catalogue." },
  "version-exists": { title: "This version is registered already", advice: "Raise softwareVersion to register a new version." },
  "name-taken": { title: "Another entry has this name", advice: "Choose another name." },
  "not-editable": { title: "You may not change this entry", advice: "Only its registrant (or the project's maintainers) may." },
  "curators-only": { title: "Only curators may do this" },
  // zenodo
  "zenodo-validation": { title: "Zenodo refused the metadata", advice: "Correct the fields listed and try again." },
  "too-many-files": { title: "Too many files for one deposition", advice: "Put them into fewer files (an archive), or publish several records." },
  "zenodo-token-missing": { title: "No Zenodo token is registered", advice: "Save your personal Zenodo token above, then try again." },
  "zenodo-token-rejected": { title: "Zenodo refused your token", advice: "Make a new personal token on Zenodo (with deposit rights) and save it above." },
  "zenodo-forbidden": { title: "Zenodo refused this", advice: "Your token may lack the rights for it." },
  "record-not-found": { title: "No such Zenodo record", advice: "Check the DOI or record number." },
  "deposition-not-found": { title: "No such deposition", advice: "Reload the page." },
  "import-not-found": { title: "No such import", advice: "Reload the page." },
  "deposition-state": { title: "The deposition cannot do this in its present state", advice: "Reload the page to see its state." },
  "run-record-missing": {
    title: "This record cannot be reproduced",
    advice: "Only results the VRE published from a run carry the run record (vre-run-record.json) a reproduction needs.",
  },
  "reproduction-not-found": { title: "No such reproduction", advice: "Your reproductions are listed on the Reproductions page." },
  // ivoa
  "unknown-vo-service": { title: "This VO service is not offered here", advice: "Choose one from the list of services." },
  "query-not-found": { title: "No such query", advice: "Reload the page." },
  "query-rejected": { title: "The VO service refused the query", advice: "Correct the query (the service's message is below)." },
  "result-too-large": { title: "The result would be too large", advice: "Ask for fewer rows (a smaller TOP or maxrec) or fewer columns." },
  "query-state": { title: "The query cannot do this in its present state", advice: "Reload the page to see its phase." },
  "vo-service-error": { title: "The VO service answered with an error", advice: "Try again later, or another service." },
  "vo-service-unavailable": { title: "The VO service is not reachable right now", advice: "Try again later, or another service." },
  "vo-service-timeout": { title: "The VO service took too long", advice: "Ask for fewer rows, or run the query as a job (asynchronously)." },
  "registry-not-configured": { title: "This VRE has no IVOA registry to search", advice: "Use the VO services listed on this page." },
};

const BY_STATUS: Record<number, { title: string; advice: string }> = {
  0: { title: "The VRE could not be reached", advice: "Check your network connection and try again." },
  400: { title: "The request was not understood", advice: "Reload the page and try again." },
  401: { title: "Your session has ended", advice: "Sign in again." },
  403: { title: "You may not do this", advice: "Ask the project's owner for a role that allows it." },
  404: { title: "Not found", advice: "It may have been deleted, or you may not see it." },
  409: { title: "This clashes with the current state", advice: "Reload the page and try again." },
  413: { title: "This is too large to send", advice: "Send less at once." },
  422: { title: "Some of what you entered is not accepted", advice: "Correct it and try again." },
  429: { title: "Too many requests at once", advice: "Wait a few seconds and try again." },
  502: { title: "A service behind the VRE answered with an error", advice: "Try again in a moment." },
  503: { title: "A service behind the VRE is not reachable right now", advice: "Try again in a few minutes." },
  504: { title: "A service behind the VRE took too long", advice: "Try again; a smaller request may help." },
  507: { title: "Your storage quota is full", advice: "Delete files you no longer need, or ask for a larger quota." },
};

/** The last part of a problem type URI ("https://…/problems/did-not-found" → "did-not-found"). */
export function problemSlug(problem: Problem): string {
  const type = problem.type ?? "";
  return type.slice(type.lastIndexOf("/") + 1);
}

const DEFAULT_LABELS: FieldLabels = {
  name: "Name",
  slug: "Short name",
  meta: "Metadata condition",
  username: "User name",
  role: "Role",
  group: "Group",
  message: "Message",
  spec: "reana.yaml",
  inputs: "Inputs",
  project: "Project",
  scope: "Scope",
  rse_expression: "RSE expression",
  copies: "Copies",
  dids: "Files",
  metadata: "Metadata",
  title: "Title",
  description: "Description",
  creators: "Creators",
  adql: "ADQL query",
  ra: "Right ascension",
  dec: "Declination",
  radius: "Radius",
  maxrec: "Most rows",
  service: "VO service",
  token: "Token",
  doi: "DOI",
  q: "Search words",
};

/** A field's label from its location, e.g. ["query", "meta", 0] → "Metadata condition 1". */
export function fieldLabel(loc: (string | number)[] | undefined, labels: FieldLabels = {}): string {
  const parts = (loc ?? []).filter((p) => !["body", "query", "path", "header"].includes(String(p)));
  const named = [...parts].reverse().find((p) => typeof p === "string") as string | undefined;
  const index = parts.find((p) => typeof p === "number") as number | undefined;
  if (!named) return "Your input";
  const label = labels[named] ?? DEFAULT_LABELS[named] ?? named.replace(/[_-]+/g, " ").replace(/^./, (c) => c.toUpperCase());
  return index !== undefined && parts.indexOf(index) > parts.indexOf(named) ? `${label} ${index + 1}` : label;
}

/** A validator's message in plain words (pydantic's "String should match pattern '…'" etc.). */
export function fieldMessage(error: FieldError): string {
  const msg = error.msg ?? "";
  if (error.type === "string_pattern_mismatch" || msg.startsWith("String should match pattern")) {
    return "contains characters that are not allowed here";
  }
  if (error.type === "missing" || msg === "Field required") return "is required";
  if (msg.startsWith("String should have at most")) return msg.replace("String should have", "may have");
  if (msg.startsWith("String should have at least")) return msg.replace("String should have", "needs");
  if (msg.startsWith("expected key<op>value")) return "write a condition as key=value (or with !=, >, >=, <, <=), for example datatype=raw";
  return msg.replace(/^Value error, /, "");
}

/** Remove what only a program needs from a server's detail: field paths, routes, exceptions. */
function personal(detail: string | null | undefined): string | null {
  if (!detail) return null;
  if (/\b(GET|PUT|POST|PATCH|DELETE) \/|\(\w+\): \w+Error|\b(body|query|path)\.\w+/.test(detail)) return null;
  if (/problem\(s\) in the request/.test(detail)) return null;
  return detail;
}

export function explain(problem: Problem, labels: FieldLabels = {}): Explained {
  const fieldsOf = () =>
    (problem.errors ?? []).filter((e) => e && typeof e === "object" && "msg" in e).map((e) => ({ label: fieldLabel(e.loc, labels), message: fieldMessage(e) }));
  // Problems the dashboard makes itself (no type: the network, the session) are already in words.
  if (!problem.type) {
    return { title: problem.title, advice: problem.status === 0 ? BY_STATUS[0].advice : null, fields: fieldsOf(), detail: problem.detail ?? null };
  }
  const slug = problemSlug(problem);
  const known = BY_TYPE[slug];
  const byStatus = BY_STATUS[problem.status] ?? { title: problem.title, advice: "" };
  const fields = fieldsOf();
  // The service's own words help when they name what is wrong (a refused ADQL, a quota):
  // keep them unless they speak in field paths or routes.
  const ownWords = ["query-rejected", "vo-service-error", "did-exists", "member-exists", "project-exists", "invalid-slug", "quota-exceeded", "result-too-large", "scope-forbidden", "last-owner", "project-has-data", "content-conflict", "run-record-missing"];
  const detail = !known || ownWords.includes(slug) ? personal(problem.detail) : null;
  return {
    title: known?.title ?? byStatus.title,
    advice: known?.advice ?? (byStatus.advice || null),
    fields,
    detail: fields.length && slug.startsWith("invalid") ? null : detail,
  };
}
