// Zenodo: import a record by DOI into a project, publish Data Lake files or a run's outputs,
// and see the DOI.
import { useEffect, useState } from "preact/hooks";
import { api } from "../api";
import { useCapability } from "../capabilities";
import { Ident } from "../components/Ident";
import { Done, ProblemAlert } from "../components/Problem";
import { StatusBadge } from "../components/Status";
import { Pager, TableScroll } from "../components/Table";
import { bytes, when } from "../format";
import { invalidate, useAction, useInterval, useLoad, usePage } from "../hooks";
import { Link, paths } from "../router";
import type { Deposition, Items, Project, RunPage, Scope, ZenodoCredentials, ZenodoImport } from "../types";
import { ReproduceLink } from "./Reproductions";

function Credentials() {
  const status = useLoad((signal) => api<ZenodoCredentials>("/zenodo/credentials", { signal }), [], ["zenodo-token"]);
  const [token, setToken] = useState("");
  const action = useAction();
  const save = async (event: Event) => {
    event.preventDefault();
    if (await action.mutate(() => api("/zenodo/credentials", { method: "PUT", json: { token } }), ["zenodo-token", "depositions"], "Your token is saved.")) {
      setToken("");
    }
  };
  const forget = () => action.mutate(() => api("/zenodo/credentials", { method: "DELETE" }), ["zenodo-token"], "Your token is forgotten.");
  return (
    <form class="card" onSubmit={save} aria-labelledby="zenodo-token-heading">
      <h2 id="zenodo-token-heading">Your Zenodo token</h2>
      <ProblemAlert problem={status.problem ?? action.problem} labels={{ token: "Personal access token" }} />
      <Done text={action.done} />
      {status.data ? (
        <p>
          {status.data.registered ? "A personal token is registered" : "No token registered yet"} for{" "}
          <code>{status.data.zenodo_url}</code>. Publishing needs one; importing public records does not.
        </p>
      ) : null}
      <div class="row">
        <div class="field grow">
          <label for="zenodo-token">Personal access token</label>
          <input id="zenodo-token" type="password" autocomplete="off" required value={token} onInput={(e) => setToken(e.currentTarget.value)} />
        </div>
        <button type="submit" disabled={action.busy}>
          Save token
        </button>
        {status.data?.registered ? (
          <button type="button" class="secondary" disabled={action.busy} onClick={() => void forget()}>
            Forget token
          </button>
        ) : null}
      </div>
    </form>
  );
}

function Imports() {
  const projects = useLoad((signal) => api<Items<Project>>("/projects", { query: { filter: "mine" }, signal }), []);
  const scopes = useLoad((signal) => api<Scope[]>("/datalake/scopes", { signal }), []);
  const imports = useLoad((signal) => api<Items<ZenodoImport>>("/zenodo/imports", { signal }), [], ["imports"]);
  const pagedImports = usePage(imports.data?.items ?? [], 10);
  const live = imports.data?.items.some((i) => i.state === "queued" || i.state === "running") ?? false;
  useInterval(imports.reload, 2000, live);
  const [doi, setDoi] = useState("");
  const [scope, setScope] = useState("");
  const [dataset, setDataset] = useState("");
  const action = useAction();
  const projectScopes = projects.data?.items.map((p) => p.scope) ?? [];
  const finished = imports.data?.items.filter((i) => i.state === "completed").map((i) => i.id).join(",");
  // An import that has finished put files into a scope: the scope's listings and quota change.
  useEffect(() => {
    if (finished) invalidate("usage", ...(imports.data?.items.map((i) => `scope:${i.scope}`) ?? []));
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [finished]);
  const choices = (scopes.data ?? [])
    .filter((s) => s.mine)
    .sort((a, b) => Number(projectScopes.includes(b.name)) - Number(projectScopes.includes(a.name)));
  useEffect(() => {
    if (!scope && choices.length) setScope(choices[0].name);
  }, [choices.length, scope]);
  const submit = async (event: Event) => {
    event.preventDefault();
    const target = scope;
    const isRecord = /^\d+$/.test(doi.trim());
    const ok = await action.mutate(
      () =>
        api("/zenodo/imports", {
          method: "POST",
          json: {
            ...(isRecord ? { record_id: Number(doi.trim()) } : { doi: doi.trim() }),
            scope: target,
            dataset: dataset || undefined,
          },
        }),
      ["imports"],
      "The import has started: it is listed below.",
    );
    if (ok) setDoi("");
  };
  return (
    <div class="card">
      <h2 id="import-heading">Import a record into the Data Lake</h2>
      <form onSubmit={submit} aria-labelledby="import-heading">
        <div class="row">
          <div class="field grow">
            <label for="import-doi">DOI or record number</label>
            <input id="import-doi" required placeholder="10.5281/zenodo.1234567" value={doi} onInput={(e) => setDoi(e.currentTarget.value)} />
          </div>
          <div class="field">
            <label for="import-scope">Into scope</label>
            <select id="import-scope" value={scope} onChange={(e) => setScope(e.currentTarget.value)}>
              {choices.map((s) => (
                <option key={s.name} value={s.name}>
                  {s.name}
                  {s.project ? ` (project ${s.project})` : ""}
                </option>
              ))}
            </select>
          </div>
          <div class="field">
            <label for="import-dataset">Dataset name (optional)</label>
            <input id="import-dataset" value={dataset} onInput={(e) => setDataset(e.currentTarget.value)} />
          </div>
          <button type="submit" disabled={action.busy}>
            Import
          </button>
        </div>
      </form>
      <ProblemAlert problem={imports.problem ?? action.problem ?? scopes.problem} labels={{ doi: "DOI or record number", scope: "Into scope", dataset: "Dataset name" }} />
      <Done text={action.done} />
      {imports.data?.items.length ? (
        <TableScroll label="Your imports">
        <table>
          <caption class="sr-only">Your imports</caption>
          <thead>
            <tr>
              <th scope="col">Record</th>
              <th scope="col">State</th>
              <th scope="col">Progress</th>
              <th scope="col">In the Data Lake</th>
            </tr>
          </thead>
          <tbody>
            {pagedImports.page.map((i) => (
              <tr key={i.id}>
                <td>
                  {i.title} <span class="muted">{i.doi ?? i.record_id}</span>
                  {i.doi ? (
                    <>
                      {" · "}
                      <ReproduceLink doi={i.doi} />
                    </>
                  ) : null}
                </td>
                <td>
                  <StatusBadge status={i.state} />
                  {i.error?.detail ? <span class="muted"> {i.error.detail}</span> : null}
                </td>
                <td>
                  <progress aria-label={`Import of ${i.title}`} max={i.total_bytes || 1} value={i.bytes_done} /> {bytes(i.bytes_done)} of{" "}
                  {bytes(i.total_bytes)}
                </td>
                <td>
                  {/* dataset: "scope:name" (older answers: the name alone) */}
                  <Link href={paths.didRef(i.dataset.includes(":") ? i.dataset : `${i.scope}:${i.dataset}`)} class="breakable">
                    {i.dataset.includes(":") ? i.dataset : `${i.scope}:${i.dataset}`}
                  </Link>
                  {i.files.length ? (
                    <ul class="plain">
                      {i.files.map((f) => (
                        <li key={f.did}>
                          <Link href={paths.didRef(f.did)} data-testid="imported-did" class="breakable">
                            {f.did}
                          </Link>{" "}
                          <span class="muted">({bytes(f.bytes)})</span>
                        </li>
                      ))}
                    </ul>
                  ) : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        </TableScroll>
      ) : null}
      <Pager index={pagedImports.index} pages={pagedImports.pages} setIndex={pagedImports.setIndex} label="imports" total={imports.data?.items.length} />
    </div>
  );
}

function Publish({ initialRun }: { initialRun: string }) {
  const runs = useLoad((signal) => api<RunPage>("/workflows/runs", { query: { status: "finished", size: 50 }, signal }), []);
  const [source, setSource] = useState<"run" | "dids">(initialRun ? "run" : "dids");
  const [runId, setRunId] = useState(initialRun);
  const [dids, setDids] = useState("");
  const [title, setTitle] = useState("");
  const [description, setDescription] = useState("");
  const [creators, setCreators] = useState("");
  const [uploadType, setUploadType] = useState("dataset");
  const [license, setLicense] = useState("cc-by-4.0");
  const action = useAction();
  const submit = async (event: Event) => {
    event.preventDefault();
    const metadata = {
      upload_type: uploadType,
      title,
      description,
      license,
      creators: creators
        .split("\n")
        .map((c) => c.trim())
        .filter(Boolean)
        .map((name) => ({ name })),
    };
    const body =
      source === "run" ? { run_id: runId, metadata } : { dids: dids.split(/[\s,]+/).filter(Boolean), metadata };
    await action.mutate(
      () => api<Deposition>("/zenodo/depositions", { method: "POST", json: body }),
      ["depositions"],
      "The deposition is being prepared: publish it below when it is ready.",
    );
  };
  return (
    <form class="card" onSubmit={submit} aria-labelledby="publish-heading">
      <h2 id="publish-heading">Publish with a DOI</h2>
      <fieldset class="field">
        <legend>What to publish</legend>
        <label class="inline">
          <input type="radio" name="publish-source" checked={source === "run"} onChange={() => setSource("run")} /> a run's outputs
        </label>
        <label class="inline">
          <input type="radio" name="publish-source" checked={source === "dids"} onChange={() => setSource("dids")} /> chosen Data Lake
          files
        </label>
      </fieldset>
      {source === "run" ? (
        <div class="field">
          <label for="publish-run">Finished run</label>
          <select id="publish-run" required value={runId} onChange={(e) => setRunId(e.currentTarget.value)}>
            <option value="">choose a run</option>
            {runs.data?.items.map((r) => (
              <option key={r.id} value={r.id}>
                {r.name} ({when(r.finished_at)})
              </option>
            ))}
          </select>
        </div>
      ) : (
        <div class="field">
          <label for="publish-dids">DIDs (scope:name, one per line)</label>
          <textarea id="publish-dids" rows={3} required value={dids} onInput={(e) => setDids(e.currentTarget.value)} />
        </div>
      )}
      <div class="field">
        <label for="publish-title">Title</label>
        <input id="publish-title" required value={title} onInput={(e) => setTitle(e.currentTarget.value)} />
      </div>
      <div class="field">
        <label for="publish-description">Description</label>
        <textarea id="publish-description" rows={3} required value={description} onInput={(e) => setDescription(e.currentTarget.value)} />
      </div>
      <div class="field">
        <label for="publish-creators">Creators (“Family, Given”, one per line)</label>
        <textarea id="publish-creators" rows={2} required value={creators} onInput={(e) => setCreators(e.currentTarget.value)} />
      </div>
      <div class="row">
        <div class="field">
          <label for="publish-type">Type</label>
          <select id="publish-type" value={uploadType} onChange={(e) => setUploadType(e.currentTarget.value)}>
            {["dataset", "software", "publication", "poster", "presentation", "image", "other"].map((t) => (
              <option key={t} value={t}>
                {t}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="publish-license">Licence</label>
          <input id="publish-license" value={license} onInput={(e) => setLicense(e.currentTarget.value)} />
        </div>
      </div>
      <ProblemAlert problem={action.problem ?? runs.problem} labels={{ dids: "DIDs", run_id: "Finished run", upload_type: "Type", license: "Licence" }} />
      <Done text={action.done} />
      <button type="submit" disabled={action.busy}>
        Create the deposition
      </button>
      <p class="help">The files are uploaded to Zenodo first; publish the deposition below when it is ready.</p>
    </form>
  );
}

function Depositions() {
  const list = useLoad((signal) => api<Items<Deposition>>("/zenodo/depositions", { signal }), [], ["depositions"]);
  const paged = usePage(list.data?.items ?? [], 10);
  const live = list.data?.items.some((d) => d.state === "uploading") ?? false;
  useInterval(list.reload, 2000, live);
  const action = useAction();
  const publish = (d: Deposition) =>
    action.mutate(
      () => api(`/zenodo/depositions/${encodeURIComponent(d.id)}/publish`, { method: "POST" }),
      ["depositions"],
      `Published ${d.title ?? "the deposition"}.`,
    );
  return (
    <div class="card">
      <h2>Your depositions</h2>
      <ProblemAlert problem={list.problem ?? action.problem} />
      <Done text={action.done} />
      {list.data && !list.data.items.length ? <p>None yet.</p> : null}
      {list.data?.items.length ? (
        <TableScroll label="Your depositions">
        <table>
          <caption class="sr-only">Your depositions</caption>
          <thead>
            <tr>
              <th scope="col">Title</th>
              <th scope="col">State</th>
              <th scope="col">DOI</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {paged.page.map((d) => (
              <tr key={d.id}>
                <td>
                  {d.title ?? "(untitled)"}
                  {d.run_id ? (
                    <>
                      {" "}
                      <span class="muted">from run</span> <Ident value={d.run_id} href={paths.run(d.run_id)} max={13} />
                    </>
                  ) : null}
                </td>
                <td>
                  <StatusBadge status={d.state} />
                  {d.error?.detail ? <span class="muted"> {d.error.detail}</span> : null}
                </td>
                <td>
                  {d.doi ? (
                    <>
                      <code data-testid="doi">{d.doi}</code>{" "}
                      <Link href={paths.provenance(`doi:${d.doi.toLowerCase()}`, "up")}>provenance</Link>
                      {" · "}
                      <ReproduceLink doi={d.doi} />
                      {d.html_url ? (
                        <>
                          {" · "}
                          <a href={d.html_url} rel="noopener noreferrer">
                            on Zenodo
                          </a>
                        </>
                      ) : null}
                    </>
                  ) : (
                    "—"
                  )}
                </td>
                <td>
                  {d.state === "ready" ? (
                    <button type="button" onClick={() => void publish(d)} disabled={action.busy}>
                      Publish<span class="sr-only"> {d.title}</span>
                    </button>
                  ) : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        </TableScroll>
      ) : null}
      <Pager index={paged.index} pages={paged.pages} setIndex={paged.setIndex} label="depositions" total={list.data?.items.length} />
    </div>
  );
}

export function ZenodoView({ query }: { query: URLSearchParams }) {
  // Importing and publishing need Zenodo itself: say so before the user tries.
  const zenodo = useCapability("zenodo", ["zenodo.zenodo"]);
  const url = useLoad((signal) => api<ZenodoCredentials>("/zenodo/credentials", { signal }), []);
  return (
    <section>
      <h1>Zenodo</h1>
      {zenodo && !zenodo.available ? (
        <div class="card unavailable" data-testid="unavailable">
          <h2>Importing and publishing are unavailable</h2>
          <p>
            {zenodo.reason} {url.data ? <>(It is configured as <code class="breakable">{url.data.zenodo_url}</code>.)</> : null}
          </p>
          <p>
            Ask the VRE's operators to connect Zenodo. Your depositions made earlier are listed below; your files stay in the{" "}
            <Link href={paths.datalake()}>Data Lake</Link>.
          </p>
        </div>
      ) : null}
      {zenodo?.available ? (
        <>
          <Credentials />
          <Imports />
          <Publish initialRun={query.get("run") ?? ""} />
        </>
      ) : null}
      {zenodo ? <Depositions /> : <p aria-live="polite">Checking Zenodo…</p>}
      {zenodo?.available ? (
        <div class="card">
          <h2>Reproduce a published result</h2>
          <p>
            Any result the VRE published from a run can be re-run from its DOI alone and compared file by file.{" "}
            <Link href={paths.reproductions()}>Start a reproduction, or see yours</Link>.
          </p>
        </div>
      ) : null}
    </section>
  );
}
