// The overview: where to start, your projects and your latest runs.
import { api } from "../api";
import { ProblemAlert } from "../components/Problem";
import { StatusBadge } from "../components/Status";
import { when } from "../format";
import { useLoad } from "../hooks";
import { Link, paths } from "../router";
import type { Items, Project, RunPage } from "../types";

export function HomeView() {
  const projects = useLoad((signal) => api<Items<Project>>("/projects", { query: { filter: "mine" }, signal }), [], ["projects"]);
  const runs = useLoad((signal) => api<RunPage>("/workflows/runs", { query: { size: 5 }, signal }), [], ["runs"]);
  return (
    <section>
      <h1>Overview</h1>
      <div class="card">
        <h2>Getting started</h2>
        <ol class="steps">
          <li>
            <Link href={paths.projects()}>Create a Science Project</Link>: its members share a Data Lake scope,
            runs and publications.
          </li>
          <li>
            Open the project's <strong>Data Lake scope</strong> and upload your input files (several at once, any
            size).
          </li>
          <li>
            Go to <Link href={paths.workflows()}>Workflows</Link>, pick your files as inputs, keep or edit the
            example reana.yaml, and submit: the logs follow live and the outputs land in the Data Lake.
          </li>
          <li>
            Bring tables from the Virtual Observatory into a project from <Link href={paths.ivoa()}>Archives (IVOA)</Link>; find
            anything again with the search box at the top.
          </li>
          <li>
            Look at the <strong>provenance picture</strong> of any output, and publish it with a DOI from{" "}
            <Link href={paths.zenodo()}>Zenodo</Link>.
          </li>
        </ol>
      </div>
      <div class="columns">
        <div class="card">
          <h2>Your projects</h2>
          <ProblemAlert problem={projects.problem} />
          {projects.data && projects.data.items.length === 0 ? (
            <p>
              No project yet. <Link href={paths.projects()}>Create one</Link>.
            </p>
          ) : null}
          <ul class="plain">
            {projects.data?.items.map((p) => (
              <li key={p.slug}>
                <Link href={paths.project(p.slug)}>{p.name}</Link> <span class="muted">({p.role ?? p.visibility})</span>
              </li>
            ))}
          </ul>
        </div>
        <div class="card">
          <h2>Latest runs</h2>
          <ProblemAlert problem={runs.problem} />
          {runs.data && runs.data.items.length === 0 ? <p>No workflow run yet.</p> : null}
          <ul class="plain">
            {runs.data?.items.map((r) => (
              <li key={r.id}>
                <Link href={paths.run(r.id)}>{r.name}</Link> <StatusBadge status={r.status} />{" "}
                <span class="muted">{when(r.created_at)}</span>
              </li>
            ))}
          </ul>
        </div>
      </div>
    </section>
  );
}
