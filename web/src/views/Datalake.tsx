// The Data Lake browser: scopes → datasets/containers → files, metadata, search, uploads with
// progress, downloads, replicas, rules with the bytes they lock, and a quota bar per RSE.
import { useRef, useState } from "preact/hooks";
import { useEffect } from "preact/hooks";
import { api, didPath, downloadFile, toProblem, uploadFile, type UploadHandle } from "../api";
import { Ident } from "../components/Ident";
import { Done, ProblemAlert } from "../components/Problem";
import { StatusBadge } from "../components/Status";
import { Pager, TableScroll } from "../components/Table";
import { bytes, when } from "../format";
import { didTags, invalidate, useAction, useInterval, useInvalidated, useLoad, usePage } from "../hooks";
import { Link, navigate, paths } from "../router";
import type { Did, DidPage, FileReplicas, ProvGraph, Problem, Rse, Rule, Scope, UploadedFile, Usage } from "../types";

/** Parse "key=value" lines into metadata (values that read as JSON numbers/booleans keep their type). */
export function parseMetadata(text: string): { metadata: Record<string, unknown>; bad: string[] } {
  const metadata: Record<string, unknown> = {};
  const bad: string[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line) continue;
    const at = line.indexOf("=");
    if (at < 1) {
      bad.push(line);
      continue;
    }
    const key = line.slice(0, at).trim();
    const value = line.slice(at + 1).trim();
    let parsed: unknown = value;
    try {
      parsed = JSON.parse(value);
    } catch {
      parsed = value;
    }
    metadata[key] = parsed;
  }
  return { metadata, bad };
}

/** Usage against the quota: the caller's own, or a project scope's (its project account's). */
function QuotaBars({ scope, project }: { scope?: string; project?: string | null }) {
  const usage = useLoad(
    (signal) => api<Usage>("/datalake/usage", { query: { scope: project ? scope : undefined }, signal }),
    [scope, project],
    ["usage"],
  );
  // The Data Lake counts usage in a background pass a few seconds after a change: after an
  // upload or a deletion, look again for half a minute.
  const [lagUntil, setLagUntil] = useState(0);
  useInvalidated(["usage"], () => setLagUntil(Date.now() + 30_000));
  useInterval(usage.reload, 4000, lagUntil > Date.now());
  useEffect(() => {
    if (!lagUntil) return undefined;
    const id = window.setTimeout(() => setLagUntil(0), Math.max(0, lagUntil - Date.now()));
    return () => window.clearTimeout(id);
  }, [lagUntil]);
  return (
    <div class="card">
      <h2>{project ? `Quota of the project ${project}` : "Your personal quota"}</h2>
      <ProblemAlert problem={usage.problem} />
      {usage.data?.rses.map((r) => {
        const id = `quota-${r.rse}`;
        return (
          <div class="field" key={r.rse}>
            <label for={id} data-testid="quota">
              {r.rse}: {bytes(r.used_bytes)} used by {r.used_files} file{r.used_files === 1 ? "" : "s"}
              {r.limit_bytes !== null && r.limit_bytes !== undefined ? ` of ${bytes(r.limit_bytes)}` : " (no limit)"}
            </label>
            {r.limit_bytes ? (
              <meter id={id} min={0} max={r.limit_bytes} value={r.used_bytes} high={r.limit_bytes * 0.9} optimum={0}>
                {Math.round((100 * r.used_bytes) / r.limit_bytes)}%
              </meter>
            ) : null}
          </div>
        );
      })}
      <p class="help">
        {project
          ? "Files in a project's scope count against the project's quota, not yours."
          : "Files you put into a project's scope count against that project's quota (see its scope page)."}{" "}
        {lagUntil > Date.now() ? "Counting the latest change…" : "The figures follow changes within a few seconds."}
      </p>
    </div>
  );
}

function RulesTable({ rules, onDelete, busy }: { rules: Rule[]; onDelete?: (r: Rule) => void; busy?: boolean }) {
  const [filter, setFilter] = useState("");
  const [state, setState] = useState("");
  const shown = rules.filter(
    (r) => (!filter || `${r.scope}:${r.name}`.toLowerCase().includes(filter.toLowerCase())) && (!state || r.state === state),
  );
  const paged = usePage(shown, 20);
  if (!rules.length) return <p>No replication rule.</p>;
  const states = [...new Set(rules.map((r) => r.state))].sort();
  return (
    <>
      {rules.length > 20 ? (
        <div class="row">
          <div class="field">
            <label for="rules-filter">Rules on names containing</label>
            <input id="rules-filter" value={filter} onInput={(e) => { setFilter(e.currentTarget.value); paged.setIndex(0); }} />
          </div>
          <div class="field">
            <label for="rules-state">State</label>
            <select id="rules-state" value={state} onChange={(e) => { setState(e.currentTarget.value); paged.setIndex(0); }}>
              <option value="">any</option>
              {states.map((s) => (
                <option key={s} value={s}>
                  {s}
                </option>
              ))}
            </select>
          </div>
        </div>
      ) : null}
      {shown.length ? (
        <TableScroll label="Replication rules">
          <table data-testid="rules">
            <caption class="sr-only">Replication rules</caption>
            <thead>
              <tr>
                <th scope="col">File or dataset</th>
                <th scope="col">Where</th>
                <th scope="col">State</th>
                <th scope="col">Locks (ok / replicating / stuck)</th>
                <th scope="col">Bytes locked</th>
                <th scope="col">Expires</th>
                {onDelete ? <th scope="col">Actions</th> : null}
              </tr>
            </thead>
            <tbody>
              {paged.page.map((r) => (
                <tr key={r.id}>
                  <td>
                    <Ident value={`${r.scope}:${r.name}`} href={paths.did(r.scope, r.name)} max={40} />
                  </td>
                  <td>
                    {r.copies} × <code>{r.rse_expression}</code>
                  </td>
                  <td>
                    <StatusBadge status={r.state} />
                    {r.error ? <span class="muted"> {r.error}</span> : null}
                  </td>
                  <td>
                    {r.locks_ok} / {r.locks_replicating} / {r.locks_stuck}
                  </td>
                  <td>{bytes(r.locked_bytes)}</td>
                  <td>{r.expires_at ? when(r.expires_at) : "never"}</td>
                  {onDelete ? (
                    <td>
                      <button type="button" class="secondary" disabled={busy} onClick={() => onDelete(r)}>
                        Delete rule<span class="sr-only"> on {r.name}</span>
                      </button>
                    </td>
                  ) : null}
                </tr>
              ))}
            </tbody>
          </table>
        </TableScroll>
      ) : (
        <p>No rule matches.</p>
      )}
      <Pager index={paged.index} pages={paged.pages} setIndex={paged.setIndex} label="replication rules" total={shown.length} />
    </>
  );
}

function useRules(filter?: { scope: string; name: string }) {
  const rules = useLoad((signal) => api<Rule[]>("/datalake/rules", { signal }), [], ["rules"]);
  const replicating = rules.data?.some((r) => r.state === "REPLICATING") ?? false;
  useInterval(rules.reload, 3000, replicating);
  const items = (rules.data ?? []).filter((r) => !filter || (r.scope === filter.scope && r.name === filter.name));
  return { ...rules, items };
}

export function DatalakeView() {
  const scopes = useLoad((signal) => api<Scope[]>("/datalake/scopes", { signal }), [], ["scopes"]);
  const rules = useRules();
  const action = useAction();
  const remove = (r: Rule) =>
    action.mutate(
      () => api(`/datalake/rules/${encodeURIComponent(r.id)}`, { method: "DELETE" }),
      ["rules", "usage", `did:${r.scope}:${r.name}`],
      `Deleted the rule on ${r.scope}:${r.name}.`,
    );
  const mine = scopes.data?.filter((s) => s.mine) ?? [];
  // The Data Lake lists only readable scopes; those not writable here are other projects'.
  const others = scopes.data?.filter((s) => !s.mine && s.project) ?? [];
  return (
    <section>
      <h1>Data Lake</h1>
      <div class="columns">
        <div class="card">
          <h2>Your scopes</h2>
          <ProblemAlert problem={scopes.problem} />
          <ul class="plain">
            {mine.map((s) => (
              <li key={s.name}>
                <Link href={paths.scope(s.name)}>{s.name}</Link>
                {s.project ? <span class="muted"> (project {s.project})</span> : <span class="muted"> (personal)</span>}
              </li>
            ))}
          </ul>
          {others.length ? (
            <details>
              <summary>Public projects' scopes ({others.length})</summary>
              <ul class="plain">
                {others.map((s) => (
                  <li key={s.name}>
                    <Link href={paths.scope(s.name)}>{s.name}</Link>
                  </li>
                ))}
              </ul>
            </details>
          ) : null}
        </div>
        <QuotaBars />
      </div>
      <div class="card">
        <h2>Your replication rules</h2>
        <ProblemAlert problem={rules.problem ?? action.problem} />
        <Done text={action.done} />
        <RulesTable rules={rules.items} busy={action.busy} onDelete={(r) => void remove(r)} />
      </div>
    </section>
  );
}

interface UploadItem {
  key: string;
  name: string;
  size: number;
  sent: number;
  state: "uploading" | "done" | "failed";
  result?: UploadedFile;
  problem?: Problem;
  handle?: UploadHandle;
}

function Uploader({ scope }: { scope: string }) {
  const rses = useLoad((signal) => api<Rse[]>("/datalake/rses", { signal }), []);
  const [items, setItems] = useState<UploadItem[]>([]);
  const [prefix, setPrefix] = useState("");
  const [rse, setRse] = useState("");
  const [dataset, setDataset] = useState("");
  const [meta, setMeta] = useState("");
  const [metaProblem, setMetaProblem] = useState<string | null>(null);
  const fileInput = useRef<HTMLInputElement>(null);
  const update = (key: string, change: Partial<UploadItem>) =>
    setItems((all) => all.map((it) => (it.key === key ? { ...it, ...change } : it)));

  const start = (event: Event) => {
    event.preventDefault();
    const files = Array.from(fileInput.current?.files ?? []);
    if (!files.length) return;
    const parsed = parseMetadata(meta);
    if (parsed.bad.length) {
      setMetaProblem(`Write each metadata line as key=value: “${parsed.bad[0]}” has no “=”.`);
      return;
    }
    setMetaProblem(null);
    const metaQuery = Object.entries(parsed.metadata).map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`);
    const folder = prefix.replace(/^\/+|\/+$/g, "");
    const datasetDid = dataset ? (dataset.includes(":") ? dataset : `${scope}:${dataset}`) : undefined;
    const started = files.map((file, i) => {
      const name = folder ? `${folder}/${file.name}` : file.name;
      const key = `${Date.now()}-${i}-${name}`;
      const handle = uploadFile(
        scope,
        name,
        file,
        { rse: rse || undefined, dataset: datasetDid, meta: metaQuery.length ? metaQuery : undefined },
        (sent) => update(key, { sent }),
      );
      handle.done
        .then((result) => {
          update(key, { state: "done", sent: file.size, result });
          const tags = didTags(scope, name);
          if (datasetDid) tags.push(`did:${datasetDid}`);
          invalidate(...tags);
        })
        .catch((err: unknown) => update(key, { state: "failed", problem: toProblem(err) }));
      return { key, name, size: file.size, sent: 0, state: "uploading" as const, handle };
    });
    setItems((all) => [...started, ...all]);
    if (fileInput.current) fileInput.current.value = "";
  };

  return (
    <form class="card" onSubmit={start} aria-labelledby="upload-heading">
      <h2 id="upload-heading">Upload files</h2>
      <div class="field">
        <label for="upload-files">Files (choose one or several, any size)</label>
        <input id="upload-files" ref={fileInput} type="file" multiple required />
      </div>
      <div class="row">
        <div class="field">
          <label for="upload-prefix">Folder in the scope (optional)</label>
          <input id="upload-prefix" placeholder="inputs" value={prefix} onInput={(e) => setPrefix(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="upload-rse">Storage element</label>
          <select id="upload-rse" value={rse} onChange={(e) => setRse(e.currentTarget.value)}>
            <option value="">default</option>
            {rses.data
              ?.filter((r) => r.availability_write !== false)
              .map((r) => (
                <option key={r.name} value={r.name}>
                  {r.name}
                </option>
              ))}
          </select>
        </div>
        <div class="field">
          <label for="upload-dataset">Add to dataset (optional)</label>
          <input id="upload-dataset" placeholder="run42" value={dataset} onInput={(e) => setDataset(e.currentTarget.value)} />
        </div>
      </div>
      <div class="field">
        <label for="upload-meta">Metadata for these files (optional, key=value, one per line)</label>
        <textarea id="upload-meta" rows={2} placeholder={"datatype=raw\nrun_number=42"} value={meta} onInput={(e) => setMeta(e.currentTarget.value)} />
      </div>
      {metaProblem ? (
        <div class="problem" role="alert">
          <p>{metaProblem}</p>
        </div>
      ) : null}
      <button type="submit">Upload</button>
      {items.length ? (
        <ul class="uploads" aria-label="Uploads">
          {items.map((it) => {
            const id = `progress-${it.key}`;
            const pct = it.size ? Math.floor((100 * it.sent) / it.size) : it.state === "done" ? 100 : 0;
            return (
              <li key={it.key} class={`upload upload-${it.state}`} data-testid="upload">
                <label for={id}>
                  {it.name} ({bytes(it.size)}):{" "}
                  <span data-testid="upload-state">
                    {it.state === "uploading" ? `${pct}%` : it.state === "done" ? "uploaded" : "failed"}
                  </span>
                </label>
                <progress id={id} max={it.size || 1} value={it.state === "done" ? it.size || 1 : it.sent}>
                  {pct}%
                </progress>
                {it.state === "uploading" ? (
                  <button type="button" class="secondary" onClick={() => it.handle?.abort()}>
                    Cancel<span class="sr-only"> the upload of {it.name}</span>
                  </button>
                ) : null}
                {it.result ? (
                  <p class="checksums">
                    <Ident value={`${it.result.scope}:${it.result.name}`} href={paths.did(it.result.scope, it.result.name)} max={48} /> on{" "}
                    {it.result.rse}
                    {it.result.created ? "" : " (already there, same content)"} · adler32{" "}
                    <code data-testid="adler32">{it.result.adler32}</code> · md5{" "}
                    <Ident value={it.result.md5} max={12} code copy />
                  </p>
                ) : null}
                {it.problem ? <ProblemAlert problem={it.problem} /> : null}
              </li>
            );
          })}
        </ul>
      ) : null}
    </form>
  );
}

function CreateCollection({ scope }: { scope: string }) {
  const [name, setName] = useState("");
  const [type, setType] = useState<"dataset" | "container">("dataset");
  const action = useAction();
  const submit = async (event: Event) => {
    event.preventDefault();
    const ok = await action.mutate(
      () => api<Did>(`/datalake/dids/${encodeURIComponent(scope)}`, { method: "POST", json: { name, type } }),
      didTags(scope),
      `Created the ${type} ${name}.`,
    );
    if (ok) setName("");
  };
  return (
    <form class="card" onSubmit={submit} aria-labelledby="collection-heading">
      <h2 id="collection-heading">New dataset or container</h2>
      <ProblemAlert problem={action.problem} />
      <Done text={action.done} />
      <div class="row">
        <div class="field">
          <label for="collection-name">Name</label>
          <input id="collection-name" required value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="collection-type">Type</label>
          <select id="collection-type" value={type} onChange={(e) => setType(e.currentTarget.value as "dataset" | "container")}>
            <option value="dataset">dataset</option>
            <option value="container">container</option>
          </select>
        </div>
        <button type="submit" disabled={action.busy}>
          Create
        </button>
      </div>
    </form>
  );
}

export function DidTable({ dids, caption }: { dids: Did[]; caption: string }) {
  // Listings may leave checksums and dates out: show those columns only when there is something.
  const withChecksum = dids.some((d) => d.adler32);
  const withDate = dids.some((d) => d.created_at);
  return (
    <TableScroll label={caption}>
      <table>
        <caption class="sr-only">{caption}</caption>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Type</th>
            <th scope="col">Size</th>
            {withChecksum ? <th scope="col">adler32</th> : null}
            {withDate ? <th scope="col">Created</th> : null}
          </tr>
        </thead>
        <tbody>
          {dids.map((d) => (
            <tr key={`${d.scope}:${d.name}`}>
              <td>
                <Ident value={`${d.scope}:${d.name}`} text={d.name} href={paths.did(d.scope, d.name)} max={48} />
              </td>
              <td>{d.type}</td>
              <td>{d.type === "file" ? bytes(d.bytes) : d.length !== null && d.length !== undefined ? `${d.length} files` : "—"}</td>
              {withChecksum ? (
                <td>
                  <code>{d.adler32 ?? ""}</code>
                </td>
              ) : null}
              {withDate ? <td>{when(d.created_at)}</td> : null}
            </tr>
          ))}
        </tbody>
      </table>
    </TableScroll>
  );
}

export function ScopeView({ scope, query }: { scope: string; query: URLSearchParams }) {
  const name = query.get("name") ?? "*";
  const type = query.get("type") ?? "all";
  const meta = query.getAll("meta");
  const offset = Number(query.get("offset") ?? 0);
  const key = query.toString();
  const scopes = useLoad((signal) => api<Scope[]>("/datalake/scopes", { signal }), [], ["scopes"]);
  const project = scopes.data?.find((s) => s.name === scope)?.project ?? null;
  const dids = useLoad(
    (signal) =>
      api<DidPage>(`/datalake/dids/${encodeURIComponent(scope)}`, {
        query: { name, type, meta, offset, limit: 50 },
        signal,
      }),
    [scope, key],
    [`scope:${scope}`],
  );
  const [nameInput, setNameInput] = useState(name);
  const [typeInput, setTypeInput] = useState(type);
  const [metaInput, setMetaInput] = useState(meta.join("\n"));
  const filtered = name !== "*" || type !== "all" || meta.length > 0;
  const search = (event: Event) => {
    event.preventDefault();
    const params = new URLSearchParams();
    if (nameInput && nameInput !== "*") params.set("name", nameInput);
    if (typeInput !== "all") params.set("type", typeInput);
    metaInput
      .split("\n")
      .map((l) => l.trim())
      .filter(Boolean)
      .forEach((m) => params.append("meta", m));
    const text = params.toString();
    navigate(paths.scope(scope) + (text ? `?${text}` : ""));
  };
  const page = (next: number) => {
    const params = new URLSearchParams(query);
    params.set("offset", String(next));
    navigate(`${paths.scope(scope)}?${params.toString()}`);
  };
  const wider = !name.includes("*") ? `*${name}*` : null;
  const widerHref = wider ? paths.scope(scope, Object.fromEntries([...new URLSearchParams(query)].filter(([k]) => k !== "name" && k !== "offset").concat([["name", wider]]))) : null;
  return (
    <section>
      <h1>Scope {scope}</h1>
      <p>
        <Link href={paths.datalake()}>Data Lake</Link> › {scope}
        {project ? (
          <>
            {" "}
            · the files of the project <Link href={paths.project(project)}>{project}</Link>
          </>
        ) : null}
      </p>
      <div class="columns">
        <Uploader scope={scope} />
        <form class="card" onSubmit={search} role="search" aria-labelledby="search-heading">
          <h2 id="search-heading">Search</h2>
          <div class="row">
            <div class="field">
              <label for="search-name">Name (with * wildcards)</label>
              <input id="search-name" value={nameInput} onInput={(e) => setNameInput(e.currentTarget.value)} />
            </div>
            <div class="field">
              <label for="search-type">Type</label>
              <select id="search-type" value={typeInput} onChange={(e) => setTypeInput(e.currentTarget.value)}>
                <option value="all">all</option>
                <option value="file">files</option>
                <option value="dataset">datasets</option>
                <option value="container">containers</option>
                <option value="collection">datasets and containers</option>
              </select>
            </div>
          </div>
          <div class="field">
            <label for="search-meta">Metadata conditions, one per line</label>
            <textarea
              id="search-meta"
              rows={2}
              placeholder="datatype=raw&#10;run_number>=40"
              aria-describedby="search-meta-help"
              value={metaInput}
              onInput={(e) => setMetaInput(e.currentTarget.value)}
            />
            <p id="search-meta-help" class="help">
              <code>key=value</code>, with <code>!=</code>, <code>&gt;</code>, <code>&gt;=</code>, <code>&lt;</code>,{" "}
              <code>&lt;=</code> as well.
            </p>
          </div>
          <button type="submit">Search</button>
        </form>
      </div>
      <div class="card">
        <h2>Contents</h2>
        <ProblemAlert problem={dids.problem} labels={{ meta: "Metadata condition" }} />
        {dids.loading && !dids.data ? <p aria-live="polite">Loading…</p> : null}
        {dids.data && !dids.problem && !dids.data.items.length ? (
          filtered ? (
            <p data-testid="empty">
              Nothing matches{name !== "*" ? ` the name “${name}”` : ""}
              {meta.length ? " with these metadata conditions" : ""}.{" "}
              {widerHref ? (
                <>
                  Names match exactly unless you use <code>*</code>:{" "}
                  <Link href={widerHref}>search for {wider}</Link>.
                </>
              ) : (
                <Link href={paths.scope(scope)}>Show everything in the scope</Link>
              )}
            </p>
          ) : (
            <p data-testid="empty">This scope is empty: upload files above, or create a dataset below.</p>
          )
        ) : null}
        {dids.data?.items.length && !dids.problem ? <DidTable dids={dids.data.items} caption={`Contents of ${scope}`} /> : null}
        <div class="row">
          {offset > 0 ? (
            <button type="button" class="secondary" onClick={() => page(Math.max(0, offset - 50))}>
              Previous page
            </button>
          ) : null}
          {dids.data?.next_offset ? (
            <button type="button" class="secondary" onClick={() => page(dids.data?.next_offset ?? 0)}>
              Next page
            </button>
          ) : null}
        </div>
      </div>
      <div class="columns">
        <CreateCollection scope={scope} />
        {scopes.data ? <QuotaBars scope={scope} project={project} /> : null}
      </div>
    </section>
  );
}

function MetadataEditor({ did }: { did: Did }) {
  const [text, setText] = useState("");
  const [lineProblem, setLineProblem] = useState<string | null>(null);
  const action = useAction();
  const path = `/datalake/dids/${didPath(did.scope, did.name)}/metadata`;
  const tags = didTags(did.scope, did.name);
  const save = async (event: Event) => {
    event.preventDefault();
    const parsed = parseMetadata(text);
    if (parsed.bad.length || !Object.keys(parsed.metadata).length) {
      setLineProblem(parsed.bad.length ? `Write each line as key=value: “${parsed.bad[0]}” has no “=”.` : "Write at least one key=value line.");
      return;
    }
    setLineProblem(null);
    const keys = Object.keys(parsed.metadata);
    if (await action.mutate(() => api(path, { method: "POST", json: { metadata: parsed.metadata } }), tags, `Saved ${keys.join(", ")}.`)) setText("");
  };
  const remove = (key: string) => action.mutate(() => api(path, { method: "POST", json: { metadata: { [key]: null } } }), tags, `Removed ${key}.`);
  const entries = Object.entries(did.metadata ?? {});
  const show = (v: unknown) => (typeof v === "string" ? v : JSON.stringify(v));
  return (
    <div class="card">
      <h2>Metadata</h2>
      {entries.length ? (
        <TableScroll label="Metadata">
          <table data-testid="metadata">
            <caption class="sr-only">Metadata of {did.name}</caption>
            <thead>
              <tr>
                <th scope="col">Key</th>
                <th scope="col">Value</th>
                <th scope="col">Actions</th>
              </tr>
            </thead>
            <tbody>
              {entries.map(([k, v]) => (
                <tr key={k}>
                  <td>{k}</td>
                  <td class="breakable">{show(v)}</td>
                  <td>
                    <button type="button" class="secondary" onClick={() => setText(`${k}=${show(v)}`)}>
                      Edit<span class="sr-only"> {k}</span>
                    </button>{" "}
                    <button type="button" class="secondary" disabled={action.busy} onClick={() => void remove(k)}>
                      Remove<span class="sr-only"> {k}</span>
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableScroll>
      ) : (
        <p>No metadata yet.</p>
      )}
      <form onSubmit={save}>
        <ProblemAlert problem={action.problem} />
        {lineProblem ? (
          <div class="problem" role="alert">
            <p>{lineProblem}</p>
          </div>
        ) : null}
        <Done text={action.done} />
        <div class="field">
          <label for="meta-lines">Set metadata (key=value, one per line; an existing key gets the new value)</label>
          <textarea id="meta-lines" rows={2} placeholder={"datatype=raw\nrun_number=42"} value={text} onInput={(e) => setText(e.currentTarget.value)} />
        </div>
        <button type="submit" disabled={action.busy}>
          Save metadata
        </button>
      </form>
    </div>
  );
}

function Replicas({ did }: { did: Did }) {
  const replicas = useLoad(
    (signal) => api<FileReplicas[]>(`/datalake/dids/${didPath(did.scope, did.name)}/replicas`, { signal }),
    [did.scope, did.name],
    [`did:${did.scope}:${did.name}`, "rules"],
  );
  return (
    <div class="card">
      <h2>Replicas</h2>
      <ProblemAlert problem={replicas.problem} />
      <ul class="plain">
        {replicas.data?.flatMap((f) =>
          f.replicas.map((r) => (
            <li key={`${f.name}-${r.rse}`}>
              {f.name !== did.name ? `${f.name}: ` : ""}
              <strong>{r.rse}</strong> <StatusBadge status={r.state} />
            </li>
          )),
        )}
        {replicas.data && !replicas.data.some((f) => f.replicas.length) ? <li>No replica.</li> : null}
      </ul>
    </div>
  );
}

function DidRules({ did }: { did: Did }) {
  const rules = useRules({ scope: did.scope, name: did.name });
  const rses = useLoad((signal) => api<Rse[]>("/datalake/rses", { signal }), []);
  const [expression, setExpression] = useState("");
  const [copies, setCopies] = useState(1);
  const action = useAction();
  const add = async (event: Event) => {
    event.preventDefault();
    await action.mutate(
      () => api("/datalake/rules", { method: "POST", json: { dids: [`${did.scope}:${did.name}`], rse_expression: expression, copies } }),
      ["rules", "usage", `did:${did.scope}:${did.name}`],
      `Added a rule: ${copies} × ${expression}.`,
    );
  };
  return (
    <div class="card">
      <h2>Replication rules</h2>
      <ProblemAlert problem={rules.problem ?? action.problem} />
      <Done text={action.done} />
      <RulesTable rules={rules.items} />
      <form onSubmit={add} class="row">
        <div class="field">
          <label for="rule-expression">Keep a copy on (RSE expression)</label>
          <input
            id="rule-expression"
            list="rse-names"
            required
            value={expression}
            onInput={(e) => setExpression(e.currentTarget.value)}
          />
          <datalist id="rse-names">
            {rses.data?.map((r) => <option key={r.name} value={r.name} />)}
          </datalist>
        </div>
        <div class="field">
          <label for="rule-copies">Copies</label>
          <input id="rule-copies" type="number" min={1} value={copies} onInput={(e) => setCopies(Number(e.currentTarget.value))} />
        </div>
        <button type="submit" disabled={action.busy}>
          Add rule
        </button>
      </form>
    </div>
  );
}

function Content({ did }: { did: Did }) {
  const content = useLoad(
    (signal) => api<Did[]>(`/datalake/dids/${didPath(did.scope, did.name)}/content`, { signal }),
    [did.scope, did.name],
    [`did:${did.scope}:${did.name}`],
  );
  const [attach, setAttach] = useState("");
  const action = useAction();
  const add = async (event: Event) => {
    event.preventDefault();
    const dids = attach
      .split(/[\s,]+/)
      .filter(Boolean)
      .map((d) => (d.includes(":") ? d : `${did.scope}:${d}`));
    // attach answers 204 (no body): success is the answer's status, and the content reloads.
    const ok = await action.mutate(
      () => api(`/datalake/dids/${didPath(did.scope, did.name)}/attach`, { method: "POST", json: { dids } }),
      [...didTags(did.scope, did.name), ...dids.map((d) => `did:${d}`)],
      `Attached ${dids.length} item${dids.length === 1 ? "" : "s"}.`,
    );
    if (ok) setAttach("");
  };
  return (
    <div class="card">
      <h2>Content</h2>
      <ProblemAlert problem={content.problem ?? action.problem} labels={{ dids: "Attach" }} />
      <Done text={action.done} />
      {content.data && !content.data.length ? <p data-testid="empty">Empty: attach files below.</p> : null}
      {content.data?.length ? <DidTable dids={content.data} caption={`Content of ${did.name}`} /> : null}
      <form onSubmit={add} class="row">
        <div class="field">
          <label for="attach-dids">Attach files or datasets (names in this scope, or scope:name; separated by spaces)</label>
          <input id="attach-dids" required value={attach} onInput={(e) => setAttach(e.currentTarget.value)} />
        </div>
        <button type="submit" disabled={action.busy}>
          Attach
        </button>
      </form>
    </div>
  );
}

/** Who put the file into the Data Lake, from its provenance (the Rucio account is the VRE's own). */
function useOrigin(scope: string, name: string) {
  return useLoad(
    async (signal) => {
      try {
        return await api<ProvGraph>("/provenance", { query: { entity: `did:${scope}:${name}`, direction: "up", depth: 1 }, signal });
      } catch {
        return null;
      }
    },
    [scope, name],
    [`did:${scope}:${name}`],
  );
}

export function DidView({ scope, name }: { scope: string; name: string }) {
  const did = useLoad((signal) => api<Did>(`/datalake/dids/${didPath(scope, name)}`, { signal }), [scope, name], [`did:${scope}:${name}`]);
  const scopes = useLoad((signal) => api<Scope[]>("/datalake/scopes", { signal }), [], ["scopes"]);
  const origin = useOrigin(scope, name);
  const download = useAction();
  const d = did.data;
  const ref = `${scope}:${name}`;
  const project = scopes.data?.find((s) => s.name === scope)?.project ?? null;
  const activities = origin.data?.nodes.filter((n) => n.category === "activity") ?? [];
  const run = activities.find((n) => n.type === "run");
  const upload = activities.find((n) => n.type === "upload" || n.type === "import" || n.type === "query");
  const runQuery = new URLSearchParams({ input: ref });
  if (project) runQuery.set("project", project);
  return (
    <section>
      <h1 class="breakable">{name}</h1>
      <p class="breakable">
        <Link href={paths.datalake()}>Data Lake</Link> › <Link href={paths.scope(scope)}>{scope}</Link> › {name}
      </p>
      <ProblemAlert problem={did.problem} />
      {d ? (
        <>
          <div class="card">
            <dl class="facts">
              <dt>DID</dt>
              <dd>
                <code data-testid="did" class="breakable">{ref}</code>
              </dd>
              <dt>Type</dt>
              <dd>{d.type}</dd>
              {d.type === "file" ? (
                <>
                  <dt>Size</dt>
                  <dd>{bytes(d.bytes)}</dd>
                  <dt>adler32</dt>
                  <dd>
                    <code>{d.adler32}</code>
                  </dd>
                  <dt>md5</dt>
                  <dd>
                    <Ident value={d.md5 ?? ""} max={20} code copy />
                  </dd>
                </>
              ) : null}
              <dt>{run ? "Made by" : "Added by"}</dt>
              <dd data-testid="origin">
                {run ? (
                  <>
                    the run <Link href={paths.run(run.id.slice(4))}>{run.label ?? run.id.slice(4, 12)}</Link>
                    {run.actor ? ` of ${run.actor}` : ""}
                  </>
                ) : upload?.actor ? (
                  `${upload.actor} (${upload.type === "upload" ? "uploaded" : upload.type === "import" ? "imported from Zenodo" : "a VO query"})`
                ) : origin.loading ? (
                  "…"
                ) : (
                  "not recorded"
                )}
              </dd>
              {project ? (
                <>
                  <dt>Project</dt>
                  <dd>
                    <Link href={paths.project(project)}>{project}</Link>
                  </dd>
                </>
              ) : null}
              <dt>Created</dt>
              <dd>{when(d.created_at)}</dd>
            </dl>
            <p class="row">
              {d.type === "file" ? (
                <button type="button" disabled={download.busy} onClick={() => void download.run(() => downloadFile(scope, name))}>
                  Download
                </button>
              ) : null}
              <Link class="button secondary" href={paths.provenance(`did:${ref}`, "up")}>
                Where it came from (provenance)
              </Link>
              <Link class="button secondary" href={paths.provenance(`did:${ref}`, "down")}>
                What was made from it
              </Link>
              <Link class="button secondary" href={`${paths.workflows()}?${runQuery.toString()}`}>
                Run a workflow on it
              </Link>
            </p>
            <ProblemAlert problem={download.problem} />
            {d.type === "file" ? (
              <p class="help">
                The download passes through your browser's memory; for very large files use{" "}
                <code class="breakable">
                  curl -H "Authorization: Bearer …" {window.location.origin}/datalake/files/{didPath(scope, name)}
                </code>
                .
              </p>
            ) : null}
          </div>
          <div class="columns">
            <MetadataEditor did={d} />
            <Replicas did={d} />
          </div>
          {d.type !== "file" ? <Content did={d} /> : null}
          <DidRules did={d} />
        </>
      ) : null}
    </section>
  );
}
