// Astronomical archives (IVOA): the VO services this VRE offers, their tables, queries (ADQL,
// cone search, SIA v2) whose results land in a project's Data Lake scope, and registry discovery.
import { useEffect, useState } from "preact/hooks";
import { api } from "../api";
import { Ident } from "../components/Ident";
import { Done, ProblemAlert } from "../components/Problem";
import { StatusBadge } from "../components/Status";
import { Pager, TableScroll } from "../components/Table";
import { bytes, when } from "../format";
import { didTags, useAction, useInterval, useLoad, usePage } from "../hooks";
import { problemSlug } from "../problems";
import { Link, navigate, paths } from "../router";
import type { IvoaQuery, Items, Project, RegistryResource, Scope, VoService, VoServiceDetail, VoTable } from "../types";

const TYPE_WORDS: Record<string, string> = { tap: "TAP (ADQL queries)", scs: "cone search", sia2: "image search (SIA v2)" };
const LIVE = ["QUEUED", "EXECUTING"];

function ServiceDetail({ name, onUseTable }: { name: string; onUseTable: (table: string) => void }) {
  const service = useLoad((signal) => api<VoServiceDetail>(`/ivoa/services/${encodeURIComponent(name)}`, { signal }), [name]);
  const [q, setQ] = useState("");
  const [asked, setAsked] = useState<string | null>(null);
  const tables = useLoad(
    (signal) =>
      asked === null || service.data?.type !== "tap"
        ? Promise.resolve(null)
        : api<{ service: string; items: VoTable[] }>(`/ivoa/services/${encodeURIComponent(name)}/tables`, { query: { q: asked || undefined }, signal }),
    [name, asked, service.data?.type],
  );
  const paged = usePage(tables.data?.items ?? [], 10);
  const s = service.data;
  return (
    <div class="card" data-testid="vo-service">
      <h2>{s?.title ?? name}</h2>
      <ProblemAlert problem={service.problem} />
      {s ? (
        <>
          {s.description ? <p>{s.description}</p> : null}
          <dl class="facts">
            <dt>Name here</dt>
            <dd>{s.name}</dd>
            <dt>Kind</dt>
            <dd>{TYPE_WORDS[s.type] ?? s.type}</dd>
            <dt>Address</dt>
            <dd>
              <Ident value={s.url} max={48} code copy />
            </dd>
            {s.capabilities.length ? (
              <>
                <dt>Languages</dt>
                <dd>{[...new Set(s.capabilities.flatMap((c) => c.languages))].join(", ") || "—"}</dd>
                <dt>Table upload</dt>
                <dd>{s.capabilities.some((c) => c.upload_methods.length) ? "yes (cross-match with a Data Lake table)" : "no"}</dd>
              </>
            ) : null}
          </dl>
          {s.capabilities_error ? <p class="note">The service's capabilities could not be read just now; queries may still work.</p> : null}
          {s.type === "tap" ? (
            <form
              class="row"
              onSubmit={(e) => {
                e.preventDefault();
                setAsked(q);
              }}
            >
              <div class="field">
                <label for="vo-table-q">Find tables (words in the name or description)</label>
                <input id="vo-table-q" type="search" value={q} onInput={(e) => setQ(e.currentTarget.value)} />
              </div>
              <button type="submit" class="secondary">
                Show tables
              </button>
            </form>
          ) : null}
          <ProblemAlert problem={tables.problem} />
          {tables.data && !tables.data.items.length ? <p>No table matches.</p> : null}
          {paged.page.length ? (
            <ul class="plain results" data-testid="vo-tables">
              {paged.page.map((t) => (
                <li key={t.name}>
                  <strong class="breakable">{t.name}</strong>{" "}
                  <button type="button" class="secondary" onClick={() => onUseTable(t.name)}>
                    Query it<span class="sr-only"> ({t.name})</span>
                  </button>
                  {t.description ? <p class="muted">{t.description}</p> : null}
                  {t.columns.length ? (
                    <details>
                      <summary>{t.columns.length} columns</summary>
                      <TableScroll label={`Columns of ${t.name}`}>
                        <table>
                          <caption class="sr-only">Columns of {t.name}</caption>
                          <thead>
                            <tr>
                              <th scope="col">Column</th>
                              <th scope="col">Type</th>
                              <th scope="col">Unit</th>
                              <th scope="col">Meaning</th>
                            </tr>
                          </thead>
                          <tbody>
                            {t.columns.map((c) => (
                              <tr key={c.name}>
                                <td>{c.name}</td>
                                <td>{c.datatype ?? ""}</td>
                                <td>{c.unit ?? ""}</td>
                                <td>{c.description ?? c.ucd ?? ""}</td>
                              </tr>
                            ))}
                          </tbody>
                        </table>
                      </TableScroll>
                    </details>
                  ) : null}
                </li>
              ))}
            </ul>
          ) : null}
          <Pager index={paged.index} pages={paged.pages} setIndex={paged.setIndex} label="tables" total={tables.data?.items.length} />
        </>
      ) : null}
    </div>
  );
}

function QueryForm({ services, service, setService, adql, setAdql }: {
  services: VoService[];
  service: string;
  setService: (s: string) => void;
  adql: string;
  setAdql: (s: string) => void;
}) {
  const projects = useLoad((signal) => api<Items<Project>>("/projects", { query: { filter: "mine" }, signal }), [], ["projects"]);
  const scopes = useLoad((signal) => api<Scope[]>("/datalake/scopes", { signal }), [], ["scopes"]);
  const [destination, setDestination] = useState("");
  const [name, setName] = useState("");
  const [format, setFormat] = useState("votable");
  const [maxrec, setMaxrec] = useState(1000);
  const [ra, setRa] = useState("");
  const [dec, setDec] = useState("");
  const [radius, setRadius] = useState("0.1");
  const action = useAction();
  const [last, setLast] = useState<IvoaQuery | null>(null);
  const type = services.find((s) => s.name === service)?.type ?? "tap";
  const personal = scopes.data?.find((s) => s.mine && !s.project)?.name;
  useEffect(() => {
    if (!destination && projects.data?.items.length) setDestination(`project:${projects.data.items[0].slug}`);
    else if (!destination && personal) setDestination(`scope:${personal}`);
  }, [projects.data, personal, destination]);
  const submit = async (event: Event) => {
    event.preventDefault();
    const [kind, value] = [destination.slice(0, destination.indexOf(":")), destination.slice(destination.indexOf(":") + 1)];
    const scope = kind === "project" ? projects.data?.items.find((p) => p.slug === value)?.scope : value;
    const body: Record<string, unknown> = {
      service,
      maxrec,
      destination: { [kind]: value, name: name || undefined, format },
    };
    if (type === "tap") body.adql = adql;
    else {
      const position = { ra: Number(ra), dec: Number(dec), radius: Number(radius) };
      body[type === "scs" ? "cone" : "sia"] = position;
    }
    setLast(null);
    await action.mutate(
      async () => setLast(await api<IvoaQuery>("/ivoa/queries", { method: "POST", json: body })),
      ["ivoa-queries", ...(scope ? didTags(scope) : [])],
    );
  };
  return (
    <form class="card" onSubmit={submit} aria-labelledby="vo-query-heading">
      <h2 id="vo-query-heading">Query into a project</h2>
      <div class="row">
        <div class="field">
          <label for="vo-service">VO service</label>
          <select id="vo-service" value={service} onChange={(e) => setService(e.currentTarget.value)}>
            {services.map((s) => (
              <option key={s.name} value={s.name}>
                {s.title ?? s.name} ({TYPE_WORDS[s.type] ?? s.type})
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="vo-destination">Results go to</label>
          <select id="vo-destination" value={destination} onChange={(e) => setDestination(e.currentTarget.value)}>
            {projects.data?.items.map((p) => (
              <option key={p.slug} value={`project:${p.slug}`}>
                the project {p.name} ({p.scope})
              </option>
            ))}
            {personal ? <option value={`scope:${personal}`}>your own scope ({personal})</option> : null}
          </select>
        </div>
      </div>
      {type === "tap" ? (
        <div class="field">
          <label for="vo-adql">ADQL query</label>
          <textarea id="vo-adql" class="code" rows={4} required spellcheck={false} value={adql} onInput={(e) => setAdql(e.currentTarget.value)} />
          <p class="help">
            For example <code>SELECT TOP 100 * FROM ivoa.obscore</code>; pick a table above to start from it.
          </p>
        </div>
      ) : (
        <div class="row">
          <div class="field">
            <label for="vo-ra">Right ascension (degrees)</label>
            <input id="vo-ra" required inputMode="decimal" value={ra} onInput={(e) => setRa(e.currentTarget.value)} />
          </div>
          <div class="field">
            <label for="vo-dec">Declination (degrees)</label>
            <input id="vo-dec" required inputMode="decimal" value={dec} onInput={(e) => setDec(e.currentTarget.value)} />
          </div>
          <div class="field">
            <label for="vo-radius">Radius (degrees)</label>
            <input id="vo-radius" required inputMode="decimal" value={radius} onInput={(e) => setRadius(e.currentTarget.value)} />
          </div>
        </div>
      )}
      <div class="row">
        <div class="field">
          <label for="vo-maxrec">Most rows</label>
          <input id="vo-maxrec" type="number" min={1} value={maxrec} onInput={(e) => setMaxrec(Number(e.currentTarget.value))} />
        </div>
        <div class="field">
          <label for="vo-name">File name (optional)</label>
          <input id="vo-name" placeholder="m31-obscore.vot" value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="vo-format">Format</label>
          <select id="vo-format" value={format} onChange={(e) => setFormat(e.currentTarget.value)}>
            <option value="votable">VOTable</option>
            <option value="fits">FITS</option>
            <option value="parquet">Parquet</option>
          </select>
        </div>
      </div>
      <ProblemAlert
        problem={action.problem}
        labels={{ adql: "ADQL query", ra: "Right ascension", dec: "Declination", radius: "Radius", maxrec: "Most rows", name: "File name", project: "Results go to", scope: "Results go to" }}
      />
      {action.problem && problemSlug(action.problem) === "query-rejected" && action.problem.detail ? (
        <p class="note">The service said: {action.problem.detail}</p>
      ) : null}
      {last ? (
        <div class="success" role="status" data-testid="vo-result">
          {last.phase === "COMPLETED" && last.result ? (
            <p>
              {last.result.rows} row{last.result.rows === 1 ? "" : "s"} ({bytes(last.result.bytes)}) saved as{" "}
              <Ident value={last.result.did} href={paths.didRef(last.result.did)} max={60} testid="vo-result-did" />
              {last.result.truncated ? " — cut at the most rows you asked for." : "."}
            </p>
          ) : last.phase === "ERROR" ? (
            <p>The query failed: {last.error?.detail ?? last.error?.title ?? "the service gave no reason"}.</p>
          ) : (
            <p>The query runs as a job at the service; it is listed below and its result appears there when it is done.</p>
          )}
        </div>
      ) : (
        <Done text={action.done} />
      )}
      <button type="submit" disabled={action.busy || !services.length || !destination}>
        {action.busy ? "Querying…" : "Run the query"}
      </button>
    </form>
  );
}

function Queries() {
  const queries = useLoad((signal) => api<Items<IvoaQuery>>("/ivoa/queries", { signal }), [], ["ivoa-queries"]);
  const live = queries.data?.items.some((q) => LIVE.includes(q.phase)) ?? false;
  useInterval(queries.reload, 2000, live);
  const paged = usePage(queries.data?.items ?? [], 10);
  const action = useAction();
  const cancel = (q: IvoaQuery) =>
    action.mutate(() => api(`/ivoa/queries/${encodeURIComponent(q.id)}/cancel`, { method: "POST" }), ["ivoa-queries"], "The query is cancelled.");
  return (
    <div class="card">
      <h2>Your queries</h2>
      <ProblemAlert problem={queries.problem ?? action.problem} />
      <Done text={action.done} />
      {queries.data && !queries.data.items.length ? <p>No query yet.</p> : null}
      {paged.page.length ? (
        <TableScroll label="Your queries">
          <table data-testid="vo-queries">
            <caption class="sr-only">Your queries</caption>
            <thead>
              <tr>
                <th scope="col">Query</th>
                <th scope="col">Phase</th>
                <th scope="col">Result</th>
                <th scope="col">When</th>
              </tr>
            </thead>
            <tbody>
              {paged.page.map((q) => (
                <tr key={q.id}>
                  <td>
                    <strong>{q.service}</strong>
                    <br />
                    <Ident value={q.query} max={60} code />
                  </td>
                  <td>
                    <StatusBadge status={q.phase} />
                    {LIVE.includes(q.phase) ? (
                      <button type="button" class="secondary" disabled={action.busy} onClick={() => void cancel(q)}>
                        Cancel<span class="sr-only"> the query on {q.service}</span>
                      </button>
                    ) : null}
                  </td>
                  <td>
                    {q.result ? (
                      <>
                        <Ident value={q.result.did} href={paths.didRef(q.result.did)} max={40} /> <span class="muted">({q.result.rows} rows)</span>
                      </>
                    ) : q.error ? (
                      <span>{q.error.detail ?? q.error.title ?? "failed"}</span>
                    ) : (
                      "—"
                    )}
                  </td>
                  <td>{when(q.finished_at ?? q.created_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableScroll>
      ) : null}
      <Pager index={paged.index} pages={paged.pages} setIndex={paged.setIndex} label="queries" total={queries.data?.items.length} />
    </div>
  );
}

function Registry() {
  const [q, setQ] = useState("");
  const [type, setType] = useState("");
  const [asked, setAsked] = useState<{ q: string; type: string } | null>(null);
  const found = useLoad(
    (signal) =>
      asked
        ? api<Items<RegistryResource>>("/ivoa/registry", { query: { q: asked.q || undefined, service_type: asked.type || undefined, limit: 50 }, signal })
        : Promise.resolve(null),
    [asked?.q, asked?.type],
  );
  const notConfigured = found.problem && problemSlug(found.problem) === "registry-not-configured";
  const paged = usePage(found.data?.items ?? [], 10);
  return (
    <form
      class="card"
      aria-labelledby="registry-heading"
      onSubmit={(e) => {
        e.preventDefault();
        setAsked({ q, type });
      }}
    >
      <h2 id="registry-heading">Discover other VO services</h2>
      <div class="row">
        <div class="field">
          <label for="registry-q">Keywords</label>
          <input id="registry-q" type="search" value={q} onInput={(e) => setQ(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="registry-type">Kind</label>
          <select id="registry-type" value={type} onChange={(e) => setType(e.currentTarget.value)}>
            <option value="">any</option>
            <option value="tap">TAP</option>
            <option value="scs">cone search</option>
            <option value="sia2">SIA v2</option>
          </select>
        </div>
        <button type="submit" class="secondary">
          Search the registry
        </button>
      </div>
      {notConfigured ? (
        <p class="note" data-testid="registry-unavailable">
          This VRE has no IVOA registry to search. The services above are the ones it offers; ask its operators to add others.
        </p>
      ) : (
        <ProblemAlert problem={found.problem} />
      )}
      {found.data && !found.data.items.length ? <p>Nothing found.</p> : null}
      <ul class="plain results">
        {paged.page.map((r) => (
          <li key={r.ivoid}>
            <strong>{r.title ?? r.short_name ?? r.ivoid}</strong> <span class="muted">{r.service_type ? TYPE_WORDS[r.service_type] : ""}</span>
            <br />
            <Ident value={r.ivoid} max={60} code copy />
            {r.description ? <p class="muted">{r.description.length > 300 ? `${r.description.slice(0, 300)}…` : r.description}</p> : null}
          </li>
        ))}
      </ul>
      <Pager index={paged.index} pages={paged.pages} setIndex={paged.setIndex} label="registry results" total={found.data?.items.length} />
      <p class="help">To query a service found here, the VRE's operators add it to the list above.</p>
    </form>
  );
}

export function IvoaView({ query }: { query: URLSearchParams }) {
  const services = useLoad((signal) => api<Items<VoService>>("/ivoa/services", { signal }), []);
  const chosen = query.get("service") ?? "";
  const [service, setService] = useState(chosen);
  const [adql, setAdql] = useState("");
  const list = services.data?.items ?? [];
  useEffect(() => {
    if (chosen) setService(chosen);
    else if (!service && list.length) setService(list[0].name);
  }, [chosen, list.length]);
  useEffect(() => {
    const table = query.get("table");
    if (table) setAdql(`SELECT TOP 100 * FROM ${table}`);
  }, [query.get("table")]);
  const pick = (name: string) => navigate(paths.ivoa({ service: name }), true);
  return (
    <section>
      <h1>Astronomical archives (IVOA)</h1>
      <p>Query Virtual Observatory services; each result table is saved in a project's Data Lake scope, where workflows take it as input.</p>
      <ProblemAlert problem={services.problem} />
      {services.data && !list.length ? (
        <div class="card unavailable" data-testid="unavailable">
          <h2>No VO service is configured on this VRE</h2>
          <p>The operators list the services a deployment offers (TAP, cone search, SIA v2). Until then, queries cannot be run here.</p>
        </div>
      ) : null}
      {list.length ? (
        <div class="card">
          <h2>Services offered here</h2>
          <ul class="plain" data-testid="vo-services">
            {list.map((s) => (
              <li key={s.name}>
                <Link href={paths.ivoa({ service: s.name })} aria-current={s.name === service ? "true" : undefined}>
                  {s.title ?? s.name}
                </Link>{" "}
                <span class="muted">({TYPE_WORDS[s.type] ?? s.type})</span>
              </li>
            ))}
          </ul>
        </div>
      ) : null}
      {service && list.some((s) => s.name === service) ? (
        <div class="columns">
          <ServiceDetail name={service} onUseTable={(t) => setAdql(`SELECT TOP 100 * FROM ${t}`)} />
          <QueryForm services={list} service={service} setService={pick} adql={adql} setAdql={setAdql} />
        </div>
      ) : null}
      <Queries />
      <Registry />
    </section>
  );
}
