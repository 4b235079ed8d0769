// Workflows: submit a reana.yaml (pasted or from a file) with inputs picked from the Data Lake,
// validation errors next to their lines, and the runs with their live status.
import { useEffect, useMemo, useState } from "preact/hooks";
import { api, ApiError, toProblem } from "../api";
import { ProblemAlert } from "../components/Problem";
import { StatusBadge } from "../components/Status";
import { bytes, when } from "../format";
import { useAction, useInterval, useLoad } from "../hooks";
import { Link, navigate, paths, useLocation } from "../router";
import {
  FINAL_STATUSES,
  type Did,
  type DidPage,
  type Items,
  type Problem,
  type Project,
  type Run,
  type RunPage,
  type Scope,
  type SpecFinding,
  type SpecWarning,
  type ValidationReport,
} from "../types";

/** A first workflow that works on any input files: it counts their lines and bytes. */
export const EXAMPLE_SPEC = `version: 0.9.4
inputs:
  parameters: {}
workflow:
  type: serial
  specification:
    steps:
      - name: count
        environment: docker.io/library/debian:bookworm-slim
        commands:
          - find . -maxdepth 1 -type f ! -name '.*' -exec wc -l -c {} + | tee counts.txt
      - name: report
        environment: docker.io/library/debian:bookworm-slim
        commands:
          - mkdir -p results
          - sort -n counts.txt > results/summary.txt
          - cat results/summary.txt
outputs:
  files:
    - results/summary.txt
`;

interface Findings {
  errors: SpecFinding[];
  warnings: SpecWarning[];
  valid: boolean | null;
}

/** The reana.yaml as numbered lines, each error and warning shown under the line it concerns. */
function SpecLines({ text, findings }: { text: string; findings: Findings }) {
  const lines = text.split("\n");
  if (lines.length && lines[lines.length - 1] === "") lines.pop();
  const byLine = new Map<number, { kind: "error" | "warning"; text: string }[]>();
  const loose: { kind: "error" | "warning"; text: string }[] = [];
  const add = (line: number | null | undefined, item: { kind: "error" | "warning"; text: string }) => {
    if (line && line >= 1 && line <= lines.length) byLine.set(line, [...(byLine.get(line) ?? []), item]);
    else loose.push(item);
  };
  findings.errors.forEach((e) =>
    add(e.line, { kind: "error", text: `${e.path ? e.path + ": " : ""}${e.msg}${e.column ? ` (column ${e.column})` : ""}` }),
  );
  findings.warnings.forEach((w) => add(w.line, { kind: "warning", text: `${w.path ? w.path + ": " : ""}${w.message}` }));
  return (
    <div class="spec-view" data-testid="spec-view">
      <h3>
        {findings.errors.length
          ? `${findings.errors.length} error${findings.errors.length === 1 ? "" : "s"} in the reana.yaml`
          : "The reana.yaml is valid"}
        {findings.warnings.length ? `, ${findings.warnings.length} warning${findings.warnings.length === 1 ? "" : "s"}` : ""}
      </h3>
      {loose.length ? (
        <ul class="spec-loose">
          {loose.map((f, i) => (
            <li key={i} class={`spec-${f.kind}`}>
              <strong>{f.kind === "error" ? "Error" : "Warning"}:</strong> {f.text}
            </li>
          ))}
        </ul>
      ) : null}
      <ol class="spec-lines" aria-label="reana.yaml with its problems">
        {lines.map((line, i) => {
          const notes = byLine.get(i + 1);
          return (
            <li key={i} class={notes?.some((n) => n.kind === "error") ? "has-error" : undefined}>
              <code>{line || " "}</code>
              {notes?.map((n, j) => (
                <p key={j} class={`spec-${n.kind}`} data-testid={`spec-${n.kind}`} data-line={i + 1}>
                  <strong>
                    {n.kind === "error" ? "Error" : "Warning"} on line {i + 1}:
                  </strong>{" "}
                  {n.text}
                </p>
              ))}
            </li>
          );
        })}
      </ol>
    </div>
  );
}

/** Pick Data Lake files (or datasets) as the run's inputs. */
function InputPicker({ inputs, setInputs, defaultScope }: { inputs: string[]; setInputs: (d: string[]) => void; defaultScope: string }) {
  const scopes = useLoad((signal) => api<Scope[]>("/datalake/scopes", { signal }), []);
  const [scope, setScope] = useState(defaultScope);
  const [pattern, setPattern] = useState("*");
  const [found, setFound] = useState<Did[] | null>(null);
  const [problem, setProblem] = useState<Problem | null>(null);
  useEffect(() => {
    if (defaultScope) setScope(defaultScope);
  }, [defaultScope]);
  useEffect(() => {
    if (!scope && scopes.data?.length) setScope(scopes.data.find((s) => s.mine)?.name ?? scopes.data[0].name);
  }, [scopes.data, scope]);
  const search = async () => {
    setProblem(null);
    try {
      const page = await api<DidPage>(`/datalake/dids/${encodeURIComponent(scope)}`, { query: { name: pattern || "*", limit: 100 } });
      setFound(page.items);
    } catch (err) {
      setProblem(toProblem(err));
    }
  };
  const toggle = (did: string, on: boolean) => setInputs(on ? [...inputs.filter((d) => d !== did), did] : inputs.filter((d) => d !== did));
  return (
    <fieldset class="field picker">
      <legend>Inputs from the Data Lake</legend>
      <div class="row">
        <div class="field">
          <label for="input-scope">Scope</label>
          <select id="input-scope" value={scope} onChange={(e) => setScope(e.currentTarget.value)}>
            {scopes.data?.map((s) => (
              <option key={s.name} value={s.name}>
                {s.name}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="input-pattern">Name (with * wildcards)</label>
          <input
            id="input-pattern"
            value={pattern}
            onInput={(e) => setPattern(e.currentTarget.value)}
            onKeyDown={(e) => {
              if (e.key === "Enter") {
                e.preventDefault();
                void search();
              }
            }}
          />
        </div>
        <button type="button" class="secondary" onClick={() => void search()}>
          Find files
        </button>
      </div>
      <ProblemAlert problem={problem ?? scopes.problem} />
      {found ? (
        found.length ? (
          <ul class="plain checklist">
            {found.map((d) => {
              const ref = `${d.scope}:${d.name}`;
              return (
                <li key={ref}>
                  <label class="inline">
                    <input type="checkbox" checked={inputs.includes(ref)} onChange={(e) => toggle(ref, e.currentTarget.checked)} /> {d.name}{" "}
                    <span class="muted">
                      ({d.type}
                      {d.type === "file" ? `, ${bytes(d.bytes)}` : ""})
                    </span>
                  </label>
                </li>
              );
            })}
          </ul>
        ) : (
          <p>Nothing matches in {scope}.</p>
        )
      ) : null}
      <p id="inputs-chosen" aria-live="polite">
        {inputs.length ? `Chosen inputs (${inputs.length}):` : "No input chosen: the run starts with an empty workspace."}
      </p>
      {inputs.length ? (
        <ul class="plain" aria-labelledby="inputs-chosen">
          {inputs.map((d) => (
            <li key={d}>
              <code>{d}</code> → workspace <code>{d.slice(d.indexOf(":") + 1).split("/").pop()}</code>{" "}
              <button type="button" class="secondary" onClick={() => toggle(d, false)}>
                Remove<span class="sr-only"> {d}</span>
              </button>
            </li>
          ))}
        </ul>
      ) : null}
    </fieldset>
  );
}

function SubmitForm({ onSubmitted }: { onSubmitted: (run: Run) => void }) {
  const { query } = useLocation();
  const projects = useLoad((signal) => api<Items<Project>>("/projects", { query: { filter: "mine" }, signal }), []);
  const [spec, setSpec] = useState(EXAMPLE_SPEC);
  const [name, setName] = useState("");
  const [project, setProject] = useState(query.get("project") ?? "");
  const [inputs, setInputs] = useState<string[]>(query.getAll("input"));
  const [findings, setFindings] = useState<Findings | null>(null);
  const [checkedText, setCheckedText] = useState("");
  const action = useAction();

  const defaultScope = useMemo(() => {
    const fromInput = inputs[0]?.split(":")[0];
    if (fromInput) return fromInput;
    return projects.data?.items.find((p) => p.slug === project)?.scope ?? "";
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [project, projects.data]);

  const loadFile = async (event: Event) => {
    const file = (event.currentTarget as HTMLInputElement).files?.[0];
    if (file) {
      setSpec(await file.text());
      setFindings(null);
    }
  };

  const showFindings = (err: unknown): boolean => {
    if (err instanceof ApiError && err.status === 422) {
      const errors = (err.problem.errors ?? []) as SpecFinding[];
      const specErrors = errors.filter((e) => (e.loc ?? [])[0] === "spec" || e.line);
      if (specErrors.length) {
        const warnings = ((err.problem as unknown as { warnings?: SpecWarning[] }).warnings ?? []) as SpecWarning[];
        setFindings({ errors: specErrors, warnings, valid: false });
        setCheckedText(spec);
        return specErrors.length === errors.length;
      }
    }
    return false;
  };

  const validate = () =>
    action.run(async () => {
      try {
        const report = await api<ValidationReport>("/workflows/validate", {
          method: "POST",
          body: spec,
          headers: { "Content-Type": "application/yaml" },
          query: { backend: "local" },
        });
        setFindings({ errors: report.errors, warnings: report.warnings, valid: report.valid });
        setCheckedText(spec);
      } catch (err) {
        if (!showFindings(err)) throw err;
      }
    });

  const submit = async (event: Event) => {
    event.preventDefault();
    await action.run(async () => {
      try {
        const run = await api<Run>("/workflows/runs", {
          method: "POST",
          json: {
            spec,
            name: name || undefined,
            project: project || undefined,
            inputs: inputs.map((did) => ({ did })),
          },
        });
        onSubmitted(run);
      } catch (err) {
        if (!showFindings(err)) throw err;
        action.setProblem({ title: "The reana.yaml has errors", status: 422, detail: "Each one is shown next to its line below." });
      }
    });
  };

  return (
    <form class="card" onSubmit={submit} aria-labelledby="submit-heading">
      <h2 id="submit-heading">Run a workflow</h2>
      <div class="row">
        <div class="field">
          <label for="run-name">Run name (optional)</label>
          <input id="run-name" pattern="[A-Za-z0-9][A-Za-z0-9_\-]{0,99}" value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="run-project">Project</label>
          <select id="run-project" value={project} onChange={(e) => setProject(e.currentTarget.value)} aria-describedby="run-project-help">
            <option value="">none (personal run)</option>
            {projects.data?.items.map((p) => (
              <option key={p.slug} value={p.slug}>
                {p.name}
              </option>
            ))}
          </select>
          <p id="run-project-help" class="help">
            A project run's outputs go to the project's scope; otherwise to your own.
          </p>
        </div>
      </div>
      <InputPicker inputs={inputs} setInputs={setInputs} defaultScope={defaultScope} />
      <div class="field">
        <label for="run-spec">reana.yaml</label>
        <textarea
          id="run-spec"
          class="code"
          rows={Math.min(24, Math.max(8, spec.split("\n").length + 1))}
          spellcheck={false}
          aria-describedby="run-spec-help"
          value={spec}
          onInput={(e) => setSpec(e.currentTarget.value)}
        />
        <p id="run-spec-help" class="help">
          Paste or edit the workflow, or load it from a file. Input files are staged at the top of the workspace under
          their own names; the files listed under <code>outputs</code> are registered in the Data Lake.
        </p>
      </div>
      <div class="field">
        <label for="run-spec-file">Load reana.yaml from a file</label>
        <input id="run-spec-file" type="file" accept=".yaml,.yml,.json,text/yaml,application/json" onChange={(e) => void loadFile(e)} />
      </div>
      <ProblemAlert problem={action.problem} />
      {findings ? (
        <>
          {checkedText !== spec ? <p class="help">The reana.yaml changed since it was checked.</p> : null}
          <SpecLines text={checkedText} findings={findings} />
        </>
      ) : null}
      <p class="row">
        <button type="button" class="secondary" disabled={action.busy} onClick={() => void validate()}>
          Check the reana.yaml
        </button>
        <button type="submit" disabled={action.busy}>
          Submit the run
        </button>
      </p>
    </form>
  );
}

function RunsList() {
  const [status, setStatus] = useState("");
  const runs = useLoad(
    (signal) => api<RunPage>("/workflows/runs", { query: { size: 25, status: status || undefined }, signal }),
    [status],
  );
  const live = runs.data?.items.some((r) => !FINAL_STATUSES.includes(r.status)) ?? false;
  useInterval(runs.reload, 2000, live);
  return (
    <div class="card">
      <h2>Your runs</h2>
      <div class="field">
        <label for="runs-status">Status</label>
        <select id="runs-status" value={status} onChange={(e) => setStatus(e.currentTarget.value)}>
          <option value="">any</option>
          {["queued", "running", "finished", "failed", "cancelled", "interrupted"].map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </select>
      </div>
      <ProblemAlert problem={runs.problem} />
      {runs.data && !runs.data.items.length ? <p>No run yet.</p> : null}
      {runs.data?.items.length ? (
        <table aria-live="polite">
          <caption class="sr-only">Workflow runs</caption>
          <thead>
            <tr>
              <th scope="col">Run</th>
              <th scope="col">Status</th>
              <th scope="col">Steps done</th>
              <th scope="col">Submitted</th>
              <th scope="col">Finished</th>
            </tr>
          </thead>
          <tbody>
            {runs.data.items.map((r) => (
              <tr key={r.id}>
                <td>
                  <Link href={paths.run(r.id)}>{r.name}</Link>
                </td>
                <td>
                  <StatusBadge status={r.status} />
                </td>
                <td>{r.progress ? `${r.progress.finished} / ${r.progress.total}` : "—"}</td>
                <td>{when(r.created_at)}</td>
                <td>{when(r.finished_at)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      {runs.data && runs.data.total > runs.data.items.length ? (
        <p class="muted">
          Showing the latest {runs.data.items.length} of {runs.data.total}.
        </p>
      ) : null}
    </div>
  );
}

export function WorkflowsView() {
  return (
    <section>
      <h1>Workflows</h1>
      <SubmitForm onSubmitted={(run) => navigate(paths.run(run.id))} />
      <RunsList />
    </section>
  );
}
