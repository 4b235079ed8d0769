// The one door to the VRE: the browser session (/auth/session) and the public HTTP API.
//
// The access token lives in this module only (never in storage or a URL). It is refreshed a
// minute before it expires; every API call sends it as a Bearer token.
import type { Problem, Session, UploadedFile } from "./types";

const SESSION_HEADERS = { "X-Requested-With": "vre-app" };
const REFRESH_MARGIN_S = 60;

let session: Session | null = null;
let refreshTimer: number | undefined;
let pendingSession: Promise<Session | null> | null = null;
const listeners = new Set<(s: Session | null) => void>();

/** An API answer that was not 2xx, with its RFC 9457 problem. */
export class ApiError extends Error {
  readonly status: number;
  readonly problem: Problem;

  constructor(problem: Problem) {
    super(problem.detail ? `${problem.title}: ${problem.detail}` : problem.title);
    this.status = problem.status;
    this.problem = problem;
  }
}

/** Turn any failure into a problem to show. */
export function toProblem(err: unknown): Problem {
  if (err instanceof ApiError) return err.problem;
  if (err instanceof DOMException && err.name === "AbortError") {
    return { title: "Cancelled", status: 0 };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { title: "The VRE could not be reached", status: 0, detail: message };
}

export function onSessionChange(listener: (s: Session | null) => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function currentSession(): Session | null {
  return session;
}

function setSession(next: Session | null): void {
  session = next;
  window.clearTimeout(refreshTimer);
  if (next) {
    const delayMs = (next.expires_at - REFRESH_MARGIN_S) * 1000 - Date.now();
    refreshTimer = window.setTimeout(() => void loadSession(), Math.max(delayMs, 5000));
  }
  for (const listener of listeners) listener(next);
}

/** Ask the gateway for the session's access token; null when there is no session. */
export function loadSession(): Promise<Session | null> {
  pendingSession ??= (async () => {
    try {
      const answer = await fetch("/auth/session", {
        headers: SESSION_HEADERS,
        credentials: "same-origin",
        cache: "no-store",
      });
      if (answer.status === 401) {
        setSession(null);
        return null;
      }
      if (!answer.ok) throw new ApiError(await readProblem(answer));
      const next = (await answer.json()) as Session;
      setSession(next);
      return next;
    } finally {
      pendingSession = null;
    }
  })();
  return pendingSession;
}

export async function logout(): Promise<void> {
  await fetch("/auth/logout", { method: "POST", headers: SESSION_HEADERS, credentials: "same-origin" });
  setSession(null);
  window.location.assign("/");
}

export function signInUrl(): string {
  const next = window.location.pathname + window.location.search;
  return `/auth/login?next=${encodeURIComponent(next)}`;
}

async function readProblem(answer: Response): Promise<Problem> {
  const type = answer.headers.get("content-type") ?? "";
  if (type.includes("json")) {
    try {
      const body = (await answer.json()) as Partial<Problem>;
      return { ...body, title: body.title ?? answer.statusText, status: body.status ?? answer.status };
    } catch {
      /* fall through to the status line */
    }
  }
  return { title: answer.statusText || `HTTP ${answer.status}`, status: answer.status };
}

export type Query = Record<string, string | number | boolean | null | undefined | string[]>;

export function withQuery(path: string, query?: Query): string {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === null || value === undefined || value === "") continue;
    if (Array.isArray(value)) value.forEach((v) => params.append(key, v));
    else params.append(key, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

/** Encode each segment of a DID name (names may contain '/'). */
export function didPath(scope: string, name: string): string {
  return `${encodeURIComponent(scope)}/${name.split("/").map(encodeURIComponent).join("/")}`;
}

interface RequestOptions {
  method?: string;
  query?: Query;
  json?: unknown;
  body?: BodyInit;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

async function token(): Promise<string> {
  if (!session || session.expires_at - 5 < Date.now() / 1000) await loadSession();
  if (!session) throw new ApiError({ title: "Not signed in", status: 401, detail: "Your session has ended." });
  return session.access_token;
}

/** The Authorization header of the session (for calls that read any answer, e.g. /readyz). */
export async function authorization(): Promise<Record<string, string>> {
  try {
    return { Authorization: `Bearer ${await token()}` };
  } catch {
    return {};
  }
}

/** Call the API and answer the raw Response (2xx only; otherwise an ApiError). */
export async function request(path: string, options: RequestOptions = {}): Promise<Response> {
  const send = async (): Promise<Response> => {
    const headers: Record<string, string> = { Authorization: `Bearer ${await token()}`, ...options.headers };
    let body = options.body;
    if (options.json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(options.json);
    }
    return fetch(withQuery(path, options.query), {
      method: options.method ?? "GET",
      headers,
      body,
      signal: options.signal,
      credentials: "omit",
    });
  };
  let answer = await send();
  if (answer.status === 401) {
    // The token may have been revoked or expired early: ask the session once more.
    await loadSession();
    answer = await send();
  }
  if (!answer.ok) throw new ApiError(await readProblem(answer));
  return answer;
}

/** Call the API and answer its JSON body (undefined for 204). */
export async function api<T>(path: string, options: RequestOptions = {}): Promise<T> {
  const answer = await request(path, options);
  if (answer.status === 204) return undefined as T;
  return (await answer.json()) as T;
}

export interface UploadHandle {
  done: Promise<UploadedFile>;
  abort: () => void;
}

/** Stream one file to the Data Lake with XMLHttpRequest, for upload progress events. */
export function uploadFile(
  scope: string,
  name: string,
  file: File,
  query: Query,
  onProgress: (sent: number, total: number) => void,
): UploadHandle {
  const xhr = new XMLHttpRequest();
  const done = (async () => {
    const bearer = await token();
    return new Promise<UploadedFile>((resolve, reject) => {
      xhr.open("PUT", withQuery(`/datalake/files/${didPath(scope, name)}`, query));
      xhr.setRequestHeader("Authorization", `Bearer ${bearer}`);
      xhr.setRequestHeader("Content-Type", "application/octet-stream");
      xhr.upload.onprogress = (event) => onProgress(event.loaded, event.lengthComputable ? event.total : file.size);
      xhr.onload = () => {
        let body: unknown = null;
        try {
          body = JSON.parse(xhr.responseText);
        } catch {
          body = null;
        }
        if (xhr.status >= 200 && xhr.status < 300) {
          onProgress(file.size, file.size);
          resolve(body as UploadedFile);
        } else {
          const problem = (body as Problem | null) ?? { title: xhr.statusText, status: xhr.status };
          reject(new ApiError({ ...problem, status: problem.status ?? xhr.status }));
        }
      };
      xhr.onerror = () => reject(new ApiError({ title: "The upload failed", status: 0, detail: "Network error" }));
      xhr.onabort = () => reject(new ApiError({ title: "Upload cancelled", status: 0 }));
      xhr.send(file);
    });
  })();
  return { done, abort: () => xhr.abort() };
}

/** Download a file through the API (it needs the Authorization header): Blob → object URL. */
export async function downloadFile(scope: string, name: string): Promise<void> {
  const answer = await request(`/datalake/files/${didPath(scope, name)}`);
  const blob = await answer.blob();
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = name.split("/").pop() ?? name;
  document.body.append(link);
  link.click();
  link.remove();
  window.setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** Follow a run's log: append each chunk as it arrives until the server closes the stream. */
export async function followLogs(runId: string, onText: (text: string) => void, signal: AbortSignal): Promise<void> {
  const answer = await request(`/workflows/runs/${encodeURIComponent(runId)}/logs`, {
    query: { follow: true },
    signal,
  });
  if (!answer.body) {
    onText(await answer.text());
    return;
  }
  const reader = answer.body.pipeThrough(new TextDecoderStream()).getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    if (value) onText(value);
  }
}
