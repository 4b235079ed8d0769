// Workflows: submit a reana.yaml (pasted or from a file) with inputs picked from the Data Lake,
// validation errors next to their lines, and the runs with their live status.
import { useEffect, useMemo, useState } from "preact/hooks";
import { api, ApiError, toProblem } from "../api";
import { Ident } from "../components/Ident";
import { ProblemAlert } from "../components/Problem";
import { StatusBadge } from "../components/Status";
import { Pager, TableScroll } from "../components/Table";
import { bytes, when } from "../format";
import { invalidate, useAction, useInterval, useLoad } from "../hooks";
import { navigate, paths, useLocation } from "../router";
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

/** The reana.yaml key an error is about ("workflow.specification.steps.0.commands" → "commands: "). */
function keyOf(path: string | null | undefined): string {
  const key = (path ?? "").split(".").filter((p) => p && !/^\d+$/.test(p)).pop();
  return key ? `${key}: ` : "";
}

/** REANA's messages, with what to do where the usual mistake is known. */
export function specHint(message: string): string {
  const typed = /^(.*) is not of type '(\w+)'$/.exec(message);
  if (typed) {
    const kinds: Record<string, string> = { array: "a list (one “- item” per line)", object: "a mapping (key: value lines)", string: "text", integer: "a whole number", number: "a number", boolean: "true or false" };
    return `${typed[1]} should be ${kinds[typed[2]] ?? typed[2]}`;
  }
  const required = /^'([^']+)' is a required property$/.exec(message);
  if (required) return `“${required[1]}” is missing here`;
  const unexpanded = /could not be expanded\. Please take a look to '([^']+)'/.exec(message);
  if (unexpanded) {
    const name = unexpanded[1];
    return `$${name} is read as a workflow parameter, and there is no parameter “${name}”. If it is a shell variable, write $$${name} (REANA turns $$ into $); otherwise declare “${name}” under inputs.parameters.`;
  }
  return message;
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
    add(e.line, { kind: "error", text: `${keyOf(e.path)}${specHint(e.msg)}${e.column ? ` (column ${e.column})` : ""}` }),
  );
  findings.warnings.forEach((w) => add(w.line, { kind: "warning", text: `${keyOf(w.path)}${specHint(w.message)}` }));
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
  // The Data Lake lists only the scopes the user may read.
  const scopes = useLoad((signal) => api<Scope[]>("/datalake/scopes", { signal }), [], ["scopes"]);
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
  const search = async (wanted: string = pattern) => {
    setProblem(null);
    try {
      const page = await api<DidPage>(`/datalake/dids/${encodeURIComponent(scope)}`, { query: { name: wanted || "*", limit: 100 } });
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
                {s.project ? ` (project ${s.project})` : " (personal)"}
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
          <p>
            {pattern && pattern !== "*" ? `Nothing is called “${pattern}” in ${scope}.` : `${scope} is empty.`}
            {pattern && !pattern.includes("*") ? (
              <>
                {" "}
                Names match exactly unless you use *:{" "}
                <button type="button" class="linklike" onClick={() => { setPattern(`*${pattern}*`); void search(`*${pattern}*`); }}>
                  search for *{pattern}*
                </button>
              </>
            ) : null}
          </p>
        )
      ) : null}
      <p id="inputs-chosen" aria-live="polite">
        {inputs.length ? `Chosen inputs (${inputs.length}):` : "No input chosen: the run starts with an empty workspace."}
      </p>
      {inputs.length ? (
        <ul class="plain" aria-labelledby="inputs-chosen">
          {inputs.map((d) => (
            <li key={d}>
              <Ident value={d} max={40} code /> → workspace <code>{d.slice(d.indexOf(":") + 1).split("/").pop()}</code>{" "}
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
  const projects = useLoad((signal) => api<Items<Project>>("/projects", { query: { filter: "mine" }, signal }), [], ["projects"]);
  const [spec, setSpec] = useState(EXAMPLE_SPEC);
  const [name, setName] = useState("");
  const [project, setProject] = useState(query.get("project") ?? "");
  const [inputs, setInputs] = useState<string[]>(query.getAll("input"));
  const [findings, setFindings] = useState<Findings | null>(null);
  const [checkedText, setCheckedText] = useState("");
  const action = useAction();
  const nameProblem = name && !/^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$/.test(name)
    ? /\s/.test(name)
      ? "No spaces: use letters, digits, “-” and “_” (for example best-limit)."
      : "Use letters, digits, “-” and “_” only, starting with a letter or digit (at most 100)."
    : null;
  // Inputs from a project's scope: the run belongs to that project unless the user chose,
  // so its outputs land next to its inputs.
  const [projectTouched, setProjectTouched] = useState(!!query.get("project"));
  useEffect(() => {
    if (projectTouched || project || !projects.data) return;
    const scopes = new Set(inputs.map((d) => d.split(":")[0]));
    const owning = projects.data.items.filter((p) => scopes.has(p.scope));
    if (owning.length === 1) setProject(owning[0].slug);
  }, [inputs, projects.data, projectTouched, project]);

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
    if (nameProblem) return;
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
        invalidate("runs");
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
          <input
            id="run-name"
            value={name}
            aria-invalid={nameProblem ? "true" : undefined}
            aria-describedby="run-name-help"
            onInput={(e) => setName(e.currentTarget.value)}
          />
          <p id="run-name-help" class={nameProblem ? "field-error" : "help"} data-testid="run-name-help">
            {nameProblem ?? "Letters, digits, “-” and “_”; left empty, the VRE names the run."}
          </p>
        </div>
        <div class="field">
          <label for="run-project">Project</label>
          <select
            id="run-project"
            value={project}
            onChange={(e) => {
              setProjectTouched(true);
              setProject(e.currentTarget.value);
            }}
            aria-describedby="run-project-help"
          >
            <option value="">none (personal run)</option>
            {projects.data?.items.map((p) => (
              <option key={p.slug} value={p.slug}>
                {p.name}
              </option>
            ))}
          </select>
          <p id="run-project-help" class="help">
            A project run's outputs go to the project's scope; otherwise to your own
            {project ? "" : inputs.some((d) => d.startsWith("proj.")) ? " (your inputs are in a project: choose it to keep the outputs with them)" : ""}.
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
      <ProblemAlert problem={action.problem} labels={{ name: "Run name", project: "Project", inputs: "Inputs" }} />
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
  const [page, setPage] = useState(1);
  const runs = useLoad(
    (signal) => api<RunPage>("/workflows/runs", { query: { size: 25, page, status: status || undefined }, signal }),
    [status, page],
    ["runs"],
  );
  const live = runs.data?.items.some((r) => !FINAL_STATUSES.includes(r.status)) ?? false;
  useInterval(runs.reload, 2000, live);
  return (
    <div class="card">
      <h2>Your runs</h2>
      <div class="field">
        <label for="runs-status">Status</label>
        <select
          id="runs-status"
          value={status}
          onChange={(e) => {
            setStatus(e.currentTarget.value);
            setPage(1);
          }}
        >
          <option value="">any</option>
          {["queued", "running", "finished", "failed", "cancelled", "interrupted"].map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </select>
      </div>
      <ProblemAlert problem={runs.problem} />
      {runs.data && !runs.data.items.length ? <p>{status ? `No ${status} run.` : "No run yet: submit one above."}</p> : null}
      {runs.data?.items.length ? (
        <TableScroll label="Workflow runs">
        <table>
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
                  <Ident value={r.id} text={r.name} href={paths.run(r.id)} max={40} />
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
        </TableScroll>
      ) : null}
      {runs.data ? (
        <Pager
          index={page - 1}
          pages={Math.max(1, Math.ceil(runs.data.total / 25))}
          setIndex={(i) => setPage(i + 1)}
          label="runs"
          total={runs.data.total}
        />
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
