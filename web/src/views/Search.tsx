// One search box across everything: projects, Data Lake files, software, runs, depositions, VO
// services and tables (GET /search), each hit linked to its own page.
import { useEffect, useState } from "preact/hooks";
import { api } from "../api";
import { Ident } from "../components/Ident";
import { ProblemAlert } from "../components/Problem";
import { useLoad } from "../hooks";
import { Link, navigate, paths } from "../router";
import type { SearchHit, SearchResults } from "../types";

const KINDS: [string, string][] = [
  ["project", "Projects"],
  ["did", "Data Lake files and datasets"],
  ["run", "Workflow runs"],
  ["software", "Software"],
  ["deposition", "Zenodo depositions"],
  ["vo-service", "VO services"],
  ["vo-table", "VO tables"],
];

const SOURCES: Record<string, string> = {
  projects: "projects",
  datalake: "the Data Lake",
  catalogue: "the software catalogue",
  workflows: "workflow runs",
  zenodo: "Zenodo depositions",
  ivoa: "the VO services",
};

/** The dashboard page of a search hit. */
export function hitHref(hit: SearchHit): string {
  switch (hit.type) {
    case "project":
      return paths.project(hit.id);
    case "did":
      return paths.didRef(hit.id);
    case "run":
      return paths.run(hit.id);
    case "software":
      return paths.software(hit.id);
    case "deposition":
      return paths.zenodo();
    case "vo-service":
      return paths.ivoa({ service: hit.id });
    case "vo-table": {
      const at = hit.id.indexOf(":");
      return paths.ivoa({ service: hit.id.slice(0, at), table: hit.id.slice(at + 1) });
    }
    default:
      return paths.search(hit.title);
  }
}

/** The search box every page carries (in the navigation bar). */
export function SearchBox({ initial }: { initial: string }) {
  const [q, setQ] = useState(initial);
  useEffect(() => setQ(initial), [initial]);
  return (
    <form
      role="search"
      class="searchbox"
      onSubmit={(e) => {
        e.preventDefault();
        if (q.trim()) navigate(paths.search(q.trim()));
      }}
    >
      <label for="global-search" class="sr-only">
        Search everything
      </label>
      <input id="global-search" type="search" placeholder="Search everything" value={q} onInput={(e) => setQ(e.currentTarget.value)} />
      <button type="submit" class="secondary">
        Search<span class="sr-only"> everything</span>
      </button>
    </form>
  );
}

export function SearchView({ query }: { query: URLSearchParams }) {
  const q = query.get("q") ?? "";
  const results = useLoad(
    (signal) => (q ? api<SearchResults>("/search", { query: { q, limit: 100 }, signal }) : Promise.resolve(null)),
    [q],
  );
  const data = results.data;
  const missing = data ? Object.entries(data.sources).filter(([, state]) => state === "timeout" || state === "error") : [];
  return (
    <section>
      <h1>Search</h1>
      {!q ? <p>Type words into the search box above: projects, files, runs, software, depositions and VO services are searched at once.</p> : null}
      <ProblemAlert problem={results.problem} labels={{ q: "Search words" }} />
      {q && results.loading && !data ? <p aria-live="polite">Searching…</p> : null}
      {data ? (
        <>
          <p aria-live="polite" data-testid="search-summary">
            {data.items.length ? `${data.items.length} result${data.items.length === 1 ? "" : "s"} for “${q}”.` : `Nothing found for “${q}”.`}
            {!data.items.length && !q.includes("*") ? " Try fewer or shorter words; file names can be searched in a scope with * wildcards." : ""}
          </p>
          {missing.length ? (
            <p class="note">
              Not searched this time ({missing.map(([s]) => SOURCES[s] ?? s).join(", ")} did not answer in time): the results may be
              incomplete.
            </p>
          ) : null}
          {KINDS.map(([kind, label]) => {
            const hits = data.items.filter((h) => h.type === kind);
            if (!hits.length) return null;
            return (
              <div class="card" key={kind}>
                <h2>
                  {label} ({hits.length})
                </h2>
                <ul class="plain results" data-testid={`hits-${kind}`}>
                  {hits.map((h) => (
                    <li key={`${h.type}:${h.id}`}>
                      <Ident value={h.id} text={h.title} href={hitHref(h)} max={60} />
                      {h.project ? (
                        <span class="muted">
                          {" "}
                          in project <Link href={paths.project(h.project)}>{h.project}</Link>
                        </span>
                      ) : null}
                      {h.type === "did" ? <span class="muted"> · <Ident value={h.id} max={40} /></span> : null}
                    </li>
                  ))}
                </ul>
              </div>
            );
          })}
          {data.items.some((h) => !KINDS.some(([k]) => k === h.type)) ? (
            <div class="card">
              <h2>Other</h2>
              <ul class="plain">
                {data.items
                  .filter((h) => !KINDS.some(([k]) => k === h.type))
                  .map((h) => (
                    <li key={`${h.type}:${h.id}`}>
                      {h.title} <span class="muted">({h.type})</span>
                    </li>
                  ))}
              </ul>
            </div>
          ) : null}
        </>
      ) : null}
    </section>
  );
}
