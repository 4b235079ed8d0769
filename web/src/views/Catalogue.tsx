// The software catalogue: search with facets; register from a codemeta.json with every
// validation problem shown at once.
import { useState } from "preact/hooks";
import { api, ApiError } from "../api";
import { ProblemAlert } from "../components/Problem";
import { useAction, useLoad } from "../hooks";
import { Link, navigate, paths, useLocation } from "../router";
import type { CatalogueSearch, FieldError, Items, Project, Registration, Software } from "../types";

const FACETS: [string, string][] = [
  ["keyword", "Keywords"],
  ["license", "Licences"],
  ["language", "Languages"],
  ["platform", "Platforms"],
  ["community", "Communities"],
];

const EXAMPLE_CODEMETA = `{
  "@context": "https://w3id.org/codemeta/3.0",
  "@type": "SoftwareSourceCode",
  "name": "my-analysis",
  "description": "What the software does.",
  "softwareVersion": "1.0.0",
  "datePublished": "2026-01-31",
  "license": "https://spdx.org/licenses/MIT",
  "codeRepository": "https://example.org/my-analysis",
  "readme": "https://example.org/my-analysis#readme",
  "keywords": ["astroparticle"],
  "programmingLanguage": ["Python"],
  "author": [{"@type": "Person", "givenName": "Alice", "familyName": "Doe"}],
  "maintainer": [{"@type": "Person", "givenName": "Alice", "familyName": "Doe"}]
}
`;

function Register() {
  const projects = useLoad((signal) => api<Items<Project>>("/projects", { query: { filter: "mine" }, signal }), []);
  const [text, setText] = useState(EXAMPLE_CODEMETA);
  const [project, setProject] = useState("");
  const [errors, setErrors] = useState<FieldError[] | null>(null);
  const [done, setDone] = useState<Registration | null>(null);
  const action = useAction();
  const load = async (event: Event) => {
    const file = (event.currentTarget as HTMLInputElement).files?.[0];
    if (file) setText(await file.text());
  };
  const submit = async (event: Event) => {
    event.preventDefault();
    setErrors(null);
    setDone(null);
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (err) {
      action.setProblem({ title: "This is not JSON", status: 0, detail: err instanceof Error ? err.message : String(err) });
      return;
    }
    await action.run(async () => {
      try {
        const result = await api<Registration>("/catalogue/software", { method: "POST", json: doc, query: { project: project || undefined } });
        setDone(result);
      } catch (err) {
        if (err instanceof ApiError && err.status === 422 && err.problem.errors?.length) {
          setErrors(err.problem.errors);
          return;
        }
        throw err;
      }
    });
  };
  return (
    <form class="card" onSubmit={submit} aria-labelledby="register-heading">
      <h2 id="register-heading">Register software from a codemeta.json</h2>
      <div class="field">
        <label for="codemeta-text">codemeta.json</label>
        <textarea id="codemeta-text" class="code" rows={14} spellcheck={false} value={text} onInput={(e) => setText(e.currentTarget.value)} />
      </div>
      <div class="row">
        <div class="field">
          <label for="codemeta-file">Or load it from a file</label>
          <input id="codemeta-file" type="file" accept=".json,application/json,application/ld+json" onChange={(e) => void load(e)} />
        </div>
        <div class="field">
          <label for="codemeta-project">Belongs to project</label>
          <select id="codemeta-project" value={project} onChange={(e) => setProject(e.currentTarget.value)}>
            <option value="">none</option>
            {projects.data?.items.map((p) => (
              <option key={p.slug} value={p.slug}>
                {p.name}
              </option>
            ))}
          </select>
        </div>
      </div>
      <ProblemAlert problem={action.problem} />
      {errors ? (
        <div class="problem" role="alert" data-testid="codemeta-errors">
          <p>
            <strong>
              {errors.length} problem{errors.length === 1 ? "" : "s"} in the codemeta.json
            </strong>
          </p>
          <ul>
            {errors.map((e, i) => (
              <li key={i}>
                <code>{(e.loc ?? []).filter((l) => l !== "body").join(".") || "(document)"}</code>: {e.msg}
              </li>
            ))}
          </ul>
        </div>
      ) : null}
      {done ? (
        <div class="success" role="status">
          {done.created ? "Registered" : "Added version"} {done.version} of{" "}
          <Link href={paths.software(done.software.id)}>{done.software.name}</Link>.
          {done.warnings?.length ? (
            <ul>
              {done.warnings.map((w, i) => (
                <li key={i}>
                  Recommended: <code>{(w.loc ?? []).join(".")}</code>: {w.msg}
                </li>
              ))}
            </ul>
          ) : null}
        </div>
      ) : null}
      <button type="submit" disabled={action.busy}>
        Register
      </button>
    </form>
  );
}

export function CatalogueView() {
  const { query } = useLocation();
  const key = query.toString();
  const results = useLoad(
    (signal) =>
      api<CatalogueSearch>("/catalogue/software/search", {
        query: Object.fromEntries(FACETS.map(([f]) => [f, query.getAll(f)]).concat([["q", [query.get("q") ?? ""]]])),
        signal,
      }),
    [key],
  );
  const [q, setQ] = useState(query.get("q") ?? "");
  const go = (params: URLSearchParams) => navigate(`${paths.catalogue()}${params.toString() ? "?" + params.toString() : ""}`);
  const search = (event: Event) => {
    event.preventDefault();
    const params = new URLSearchParams(query);
    if (q) params.set("q", q);
    else params.delete("q");
    go(params);
  };
  const toggle = (facet: string, value: string, on: boolean) => {
    const params = new URLSearchParams(query);
    const values = params.getAll(facet).filter((v) => v !== value);
    params.delete(facet);
    (on ? [...values, value] : values).forEach((v) => params.append(facet, v));
    go(params);
  };
  return (
    <section>
      <h1>Software catalogue</h1>
      <form class="card" role="search" onSubmit={search}>
        <div class="row">
          <div class="field grow">
            <label for="catalogue-q">Search software</label>
            <input id="catalogue-q" type="search" value={q} onInput={(e) => setQ(e.currentTarget.value)} />
          </div>
          <button type="submit">Search</button>
        </div>
      </form>
      <div class="with-sidebar">
        <aside class="card facets" aria-label="Filters">
          <h2>Filters</h2>
          {FACETS.map(([facet, label]) => {
            const counts = results.data?.facets[facet] ?? [];
            const chosen = query.getAll(facet);
            if (!counts.length && !chosen.length) return null;
            return (
              <fieldset key={facet}>
                <legend>{label}</legend>
                {counts.map((c) => (
                  <label class="inline block" key={c.value}>
                    <input type="checkbox" checked={chosen.includes(c.value)} onChange={(e) => toggle(facet, c.value, e.currentTarget.checked)} />{" "}
                    {c.value} <span class="muted">({c.count})</span>
                  </label>
                ))}
              </fieldset>
            );
          })}
        </aside>
        <div class="card grow">
          <h2>Results{results.data ? ` (${results.data.total})` : ""}</h2>
          <ProblemAlert problem={results.problem} />
          {results.data && !results.data.items.length ? <p>No software matches.</p> : null}
          <ul class="plain results">
            {results.data?.items.map((s) => (
              <li key={s.id}>
                <Link href={paths.software(s.id)}>
                  <strong>{s.name}</strong>
                </Link>{" "}
                <span class="muted">{s.latest_version}</span>
                <p>{s.description}</p>
                <p class="muted">
                  {[...(s.programming_languages ?? []), ...(s.licenses ?? []), ...(s.keywords ?? [])].join(" · ")}
                </p>
              </li>
            ))}
          </ul>
        </div>
      </div>
      <Register />
    </section>
  );
}

export function SoftwareView({ id }: { id: string }) {
  const software = useLoad((signal) => api<Software>(`/catalogue/software/${encodeURIComponent(id)}`, { signal }), [id]);
  const s = software.data;
  return (
    <section>
      <h1>{s ? s.name : `Software ${id}`}</h1>
      <p>
        <Link href={paths.catalogue()}>Catalogue</Link> › {s?.name ?? id}
      </p>
      <ProblemAlert problem={software.problem} />
      {s ? (
        <div class="card">
          <p>{s.description}</p>
          <dl class="facts">
            <dt>Latest version</dt>
            <dd>{s.latest_version}</dd>
            <dt>Versions</dt>
            <dd>{s.versions.join(", ")}</dd>
            <dt>Registered by</dt>
            <dd>{s.registrant}</dd>
            {s.project ? (
              <>
                <dt>Project</dt>
                <dd>
                  <Link href={paths.project(s.project)}>{s.project}</Link>
                </dd>
              </>
            ) : null}
            <dt>Licences</dt>
            <dd>{s.licenses?.join(", ") || "—"}</dd>
            <dt>Languages</dt>
            <dd>{s.programming_languages?.join(", ") || "—"}</dd>
            <dt>Keywords</dt>
            <dd>{s.keywords?.join(", ") || "—"}</dd>
            {s.code_repository ? (
              <>
                <dt>Code</dt>
                <dd>
                  {/* "git+https://…" (a VCS URL, as pip writes it) opens as the https address */}
                  <a href={s.code_repository.replace(/^git\+(?=https?:)/, "")} rel="noopener noreferrer" class="breakable">
                    {s.code_repository}
                  </a>
                </dd>
              </>
            ) : null}
            {s.dois?.length ? (
              <>
                <dt>DOIs</dt>
                <dd>{s.dois.join(", ")}</dd>
              </>
            ) : null}
          </dl>
        </div>
      ) : null}
    </section>
  );
}
