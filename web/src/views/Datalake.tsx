// The Data Lake browser: scopes → datasets/containers → files, metadata, search, uploads with
// progress, downloads, replicas, rules with the bytes they lock, and a quota bar per RSE.
import { useRef, useState } from "preact/hooks";
import { api, didPath, downloadFile, toProblem, uploadFile, type UploadHandle } from "../api";
import { ProblemAlert } from "../components/Problem";
import { StatusBadge } from "../components/Status";
import { bytes, when } from "../format";
import { useAction, useInterval, useLoad } from "../hooks";
import { Link, navigate, paths } from "../router";
import type { Did, DidPage, FileReplicas, Problem, Rse, Rule, Scope, UploadedFile, Usage } from "../types";

function QuotaBars() {
  const usage = useLoad((signal) => api<Usage>("/datalake/usage", { signal }), []);
  return (
    <div class="card">
      <h2>Your quota per storage element</h2>
      <ProblemAlert problem={usage.problem} />
      {usage.data?.rses.map((r) => {
        const id = `quota-${r.rse}`;
        return (
          <div class="field" key={r.rse}>
            <label for={id}>
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
    </div>
  );
}

function RulesTable({ rules, onDelete }: { rules: Rule[]; onDelete?: (r: Rule) => void }) {
  if (!rules.length) return <p>No replication rule.</p>;
  return (
    <table>
      <caption class="sr-only">Replication rules</caption>
      <thead>
        <tr>
          <th scope="col">DID</th>
          <th scope="col">Where</th>
          <th scope="col">State</th>
          <th scope="col">Locks (ok / replicating / stuck)</th>
          <th scope="col">Bytes locked</th>
          <th scope="col">Expires</th>
          {onDelete ? <th scope="col">Actions</th> : null}
        </tr>
      </thead>
      <tbody>
        {rules.map((r) => (
          <tr key={r.id}>
            <td>
              <Link href={paths.did(r.scope, r.name)}>
                {r.scope}:{r.name}
              </Link>
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
                <button type="button" class="secondary" onClick={() => onDelete(r)}>
                  Delete rule<span class="sr-only"> on {r.name}</span>
                </button>
              </td>
            ) : null}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function useRules(filter?: { scope: string; name: string }) {
  const rules = useLoad((signal) => api<Rule[]>("/datalake/rules", { signal }), []);
  const replicating = rules.data?.some((r) => r.state === "REPLICATING") ?? false;
  useInterval(rules.reload, 3000, replicating);
  const items = (rules.data ?? []).filter((r) => !filter || (r.scope === filter.scope && r.name === filter.name));
  return { ...rules, items };
}

export function DatalakeView() {
  const scopes = useLoad((signal) => api<Scope[]>("/datalake/scopes", { signal }), []);
  const rules = useRules();
  const action = useAction();
  const remove = (r: Rule) =>
    action.run(async () => {
      await api(`/datalake/rules/${encodeURIComponent(r.id)}`, { method: "DELETE" });
      rules.reload();
    });
  const mine = scopes.data?.filter((s) => s.mine) ?? [];
  const others = scopes.data?.filter((s) => !s.mine) ?? [];
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
              <summary>Other scopes ({others.length})</summary>
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
        <RulesTable rules={rules.items} onDelete={(r) => void remove(r)} />
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

function Uploader({ scope, onUploaded }: { scope: string; onUploaded: () => void }) {
  const rses = useLoad((signal) => api<Rse[]>("/datalake/rses", { signal }), []);
  const [items, setItems] = useState<UploadItem[]>([]);
  const [prefix, setPrefix] = useState("");
  const [rse, setRse] = useState("");
  const [dataset, setDataset] = useState("");
  const fileInput = useRef<HTMLInputElement>(null);
  const update = (key: string, change: Partial<UploadItem>) =>
    setItems((all) => all.map((it) => (it.key === key ? { ...it, ...change } : it)));

  const start = (event: Event) => {
    event.preventDefault();
    const files = Array.from(fileInput.current?.files ?? []);
    if (!files.length) return;
    const folder = prefix.replace(/^\/+|\/+$/g, "");
    const started = files.map((file, i) => {
      const name = folder ? `${folder}/${file.name}` : file.name;
      const key = `${Date.now()}-${i}-${name}`;
      const handle = uploadFile(
        scope,
        name,
        file,
        { rse: rse || undefined, dataset: dataset ? (dataset.includes(":") ? dataset : `${scope}:${dataset}`) : undefined },
        (sent) => update(key, { sent }),
      );
      handle.done
        .then((result) => {
          update(key, { state: "done", sent: file.size, result });
          onUploaded();
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
                    <Link href={paths.did(it.result.scope, it.result.name)}>
                      {it.result.scope}:{it.result.name}
                    </Link>{" "}
                    on {it.result.rse}
                    {it.result.created ? "" : " (already there, same content)"} · adler32{" "}
                    <code data-testid="adler32">{it.result.adler32}</code> · md5 <code>{it.result.md5}</code>
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

function CreateCollection({ scope, onCreated }: { scope: string; onCreated: () => void }) {
  const [name, setName] = useState("");
  const [type, setType] = useState<"dataset" | "container">("dataset");
  const action = useAction();
  const submit = async (event: Event) => {
    event.preventDefault();
    if (await action.run(() => api<Did>(`/datalake/dids/${encodeURIComponent(scope)}`, { method: "POST", json: { name, type } }))) {
      setName("");
      onCreated();
    }
  };
  return (
    <form class="card" onSubmit={submit} aria-labelledby="collection-heading">
      <h2 id="collection-heading">New dataset or container</h2>
      <ProblemAlert problem={action.problem} />
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
              <Link href={paths.did(d.scope, d.name)}>{d.name}</Link>
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
  );
}

export function ScopeView({ scope, query }: { scope: string; query: URLSearchParams }) {
  const name = query.get("name") ?? "*";
  const type = query.get("type") ?? "all";
  const meta = query.getAll("meta");
  const offset = Number(query.get("offset") ?? 0);
  const key = query.toString();
  const dids = useLoad(
    (signal) =>
      api<DidPage>(`/datalake/dids/${encodeURIComponent(scope)}`, {
        query: { name, type, meta, offset, limit: 50 },
        signal,
      }),
    [scope, key],
  );
  const [nameInput, setNameInput] = useState(name);
  const [typeInput, setTypeInput] = useState(type);
  const [metaInput, setMetaInput] = useState(meta.join("\n"));
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
  return (
    <section>
      <h1>Scope {scope}</h1>
      <p>
        <Link href={paths.datalake()}>Data Lake</Link> › {scope}
      </p>
      <div class="columns">
        <Uploader scope={scope} onUploaded={dids.reload} />
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
        <ProblemAlert problem={dids.problem} />
        {dids.loading && !dids.data ? <p aria-live="polite">Loading…</p> : null}
        {dids.data && !dids.data.items.length ? <p>Nothing matches.</p> : null}
        {dids.data?.items.length ? <DidTable dids={dids.data.items} caption={`Contents of ${scope}`} /> : null}
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
      <CreateCollection scope={scope} onCreated={dids.reload} />
    </section>
  );
}

function MetadataEditor({ did, onSaved }: { did: Did; onSaved: () => void }) {
  const [key, setKey] = useState("");
  const [value, setValue] = useState("");
  const action = useAction();
  const save = async (event: Event) => {
    event.preventDefault();
    let parsed: unknown = value;
    try {
      parsed = JSON.parse(value);
    } catch {
      parsed = value;
    }
    const ok = await action.run(() =>
      api(`/datalake/dids/${didPath(did.scope, did.name)}/metadata`, { method: "POST", json: { metadata: { [key]: parsed } } }),
    );
    if (ok) {
      setKey("");
      setValue("");
      onSaved();
    }
  };
  const entries = Object.entries(did.metadata ?? {});
  return (
    <div class="card">
      <h2>Metadata</h2>
      {entries.length ? (
        <dl class="facts">
          {entries.map(([k, v]) => [<dt key={`k-${k}`}>{k}</dt>, <dd key={`v-${k}`}>{typeof v === "string" ? v : JSON.stringify(v)}</dd>])}
        </dl>
      ) : (
        <p>No metadata yet.</p>
      )}
      <form onSubmit={save}>
        <ProblemAlert problem={action.problem} />
        <div class="row">
          <div class="field">
            <label for="meta-key">Key</label>
            <input id="meta-key" required value={key} onInput={(e) => setKey(e.currentTarget.value)} />
          </div>
          <div class="field">
            <label for="meta-value">Value</label>
            <input id="meta-value" required value={value} onInput={(e) => setValue(e.currentTarget.value)} />
          </div>
          <button type="submit" disabled={action.busy}>
            Set
          </button>
        </div>
      </form>
    </div>
  );
}

function Replicas({ did }: { did: Did }) {
  const replicas = useLoad(
    (signal) => api<FileReplicas[]>(`/datalake/dids/${didPath(did.scope, did.name)}/replicas`, { signal }),
    [did.scope, did.name],
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
    const ok = await action.run(() =>
      api("/datalake/rules", { method: "POST", json: { dids: [`${did.scope}:${did.name}`], rse_expression: expression, copies } }),
    );
    if (ok) rules.reload();
  };
  return (
    <div class="card">
      <h2>Replication rules</h2>
      <ProblemAlert problem={rules.problem ?? action.problem} />
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
  );
  const [attach, setAttach] = useState("");
  const action = useAction();
  const add = async (event: Event) => {
    event.preventDefault();
    const dids = attach
      .split(/[\s,]+/)
      .filter(Boolean)
      .map((d) => (d.includes(":") ? d : `${did.scope}:${d}`));
    if (await action.run(() => api(`/datalake/dids/${didPath(did.scope, did.name)}/attach`, { method: "POST", json: { dids } }))) {
      setAttach("");
      content.reload();
    }
  };
  return (
    <div class="card">
      <h2>Content</h2>
      <ProblemAlert problem={content.problem ?? action.problem} />
      {content.data && !content.data.length ? <p>Empty.</p> : null}
      {content.data?.length ? <DidTable dids={content.data} caption={`Content of ${did.name}`} /> : null}
      <form onSubmit={add} class="row">
        <div class="field">
          <label for="attach-dids">Attach DIDs (names or scope:name, separated by spaces)</label>
          <input id="attach-dids" required value={attach} onInput={(e) => setAttach(e.currentTarget.value)} />
        </div>
        <button type="submit" disabled={action.busy}>
          Attach
        </button>
      </form>
    </div>
  );
}

export function DidView({ scope, name }: { scope: string; name: string }) {
  const did = useLoad((signal) => api<Did>(`/datalake/dids/${didPath(scope, name)}`, { signal }), [scope, name]);
  const download = useAction();
  const d = did.data;
  const ref = `${scope}:${name}`;
  return (
    <section>
      <h1>{name}</h1>
      <p>
        <Link href={paths.datalake()}>Data Lake</Link> › <Link href={paths.scope(scope)}>{scope}</Link> › {name}
      </p>
      <ProblemAlert problem={did.problem} />
      {d ? (
        <>
          <div class="card">
            <dl class="facts">
              <dt>DID</dt>
              <dd>
                <code data-testid="did">{ref}</code>
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
                    <code>{d.md5}</code>
                  </dd>
                </>
              ) : null}
              <dt>Account</dt>
              <dd>{d.account ?? "—"}</dd>
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
              <Link class="button secondary" href={`${paths.workflows()}?input=${encodeURIComponent(ref)}`}>
                Run a workflow on it
              </Link>
            </p>
            <ProblemAlert problem={download.problem} />
            {d.type === "file" ? (
              <p class="help">
                The download passes through your browser's memory; for very large files use{" "}
                <code>
                  curl -H "Authorization: Bearer …" {window.location.origin}/datalake/files/{didPath(scope, name)}
                </code>
                .
              </p>
            ) : null}
          </div>
          <div class="columns">
            <MetadataEditor did={d} onSaved={did.reload} />
            <Replicas did={d} />
          </div>
          {d.type !== "file" ? <Content did={d} /> : null}
          <DidRules did={d} />
        </>
      ) : null}
    </section>
  );
}
