// Reproductions (POST /zenodo/reproductions): from a DOI back to a re-run in a project of
// yours, every output compared with the published one. "Reproduce" on a DOI opens the form
// here with the DOI filled in; a reproduction's page follows its job (steps, log, cancel) and
// shows the verdict in words and the comparison as a table, one row per output file.
import { useEffect, useRef, useState } from "preact/hooks";
import { api, request } from "../api";
import { useCapability } from "../capabilities";
import { Ident } from "../components/Ident";
import { ProblemAlert } from "../components/Problem";
import { StatusBadge } from "../components/Status";
import { Pager, TableScroll } from "../components/Table";
import { bytes, when } from "../format";
import { invalidate, useAction, useInterval, useLoad, usePage } from "../hooks";
import { Link, navigate, paths } from "../router";
import type { FileComparison, InputCheck, Items, Project, Reproduction, ReproductionState } from "../types";

const LIVE: ReproductionState[] = ["queued", "checking", "running", "comparing"];
const LABELS = { doi: "DOI", project: "Project of the re-run", tolerance: "Tolerance", backend: "Back end" };

export function isLive(r: Reproduction): boolean {
  return LIVE.includes(r.state);
}

/** A tolerance as people write it: 1e-6 rather than 0.000001. */
export function tolerance(value: number): string {
  if (value === 0) return "0";
  return value < 1e-3 ? value.toExponential() : String(value);
}

/** A relative difference, short: 3.2e-7, 0.012. */
function relative(value: number | null | undefined): string {
  if (value === null || value === undefined) return "—";
  if (value === 0) return "0";
  return value < 1e-3 ? value.toExponential(1) : value.toPrecision(2);
}

/** The verdict in a researcher's words (and a class for its colour, never the only signal). */
export function verdictWords(r: Reproduction): { text: string; tone: string; explain: string } {
  const differing = r.files.filter((f) => f.outcome === "differs" || f.outcome === "missing").map((f) => f.path);
  switch (r.verdict) {
    case "reproduced":
      return { text: "Reproduced", tone: "ok", explain: `Every output of the re-run is identical, byte for byte, to the published file (${r.files.length} compared).` };
    case "reproduced within tolerance":
      return {
        text: `Reproduced within tolerance ${tolerance(r.tolerance)}`,
        tone: "ok",
        explain: `The tables agree to a relative difference of at most ${tolerance(r.tolerance)}; every other output is identical.`,
      };
    case "differs":
      return {
        text: "Differs",
        tone: "bad",
        explain: `${differing.length} of ${r.files.length} output${r.files.length === 1 ? "" : "s"} differ${differing.length === 1 ? "s" : ""} from the published file${differing.length ? `: ${differing.join(", ")}` : ""}.`,
      };
    case "could not run":
      return { text: `Could not run: ${r.reason ?? "no reason was given"}`, tone: "warn", explain: "Nothing was compared. The log below says what was done before it stopped." };
    default:
      if (r.state === "cancelled") return { text: "Cancelled", tone: "warn", explain: "The reproduction was cancelled before it reached a verdict." };
      if (r.state === "interrupted") return { text: "Interrupted", tone: "warn", explain: "The VRE stopped while the reproduction ran; start it again." };
      return { text: "Not finished yet", tone: "live", explain: "The verdict appears here when the outputs have been compared." };
  }
}

const STEPS: { state: ReproductionState; label: string }[] = [
  { state: "checking", label: "Read the run record and find each input as it was" },
  { state: "running", label: "Re-run the recorded workflow" },
  { state: "comparing", label: "Compare every output with the published file" },
  { state: "finished", label: "Verdict" },
];

/** Each step's state in words: done, in progress, waiting, not reached. */
export function stepStates(r: Reproduction): string[] {
  const order = STEPS.map((s) => s.state);
  if (r.state === "finished") {
    // "could not run" stops at the step that failed: the inputs (no run id) or the re-run
    if (r.verdict === "could not run") {
      const stopped = !r.run_id ? 0 : r.files.length ? 2 : 1;
      return order.map((_, i) => (i < stopped ? "done" : i === stopped ? "stopped" : i === order.length - 1 ? "done" : "not reached"));
    }
    return order.map(() => "done");
  }
  if (r.state === "queued") return order.map(() => "waiting");
  if (r.state === "cancelled" || r.state === "interrupted") {
    const reached = !r.run_id ? 0 : r.files.length ? 2 : 1;
    return order.map((_, i) => (i < reached ? "done" : i === reached ? r.state : "not reached"));
  }
  const current = order.indexOf(r.state);
  return order.map((_, i) => (i < current ? "done" : i === current ? "in progress" : "waiting"));
}

const SOURCE_WORDS: Record<InputCheck["source"], string> = {
  "data lake": "in the Data Lake, unchanged",
  record: "the copy published in the record",
  inline: "carried by the run record",
  missing: "missing",
  changed: "changed since the original run",
};

const OUTCOME_WORDS: Record<FileComparison["outcome"], string> = {
  identical: "Yes",
  "within tolerance": "No, within tolerance",
  differs: "No",
  missing: "Missing",
};

/** "Reproduce" on a DOI: opens the reproductions page with the DOI filled in. */
export function ReproduceLink({ doi, button = false }: { doi: string; button?: boolean }) {
  return (
    <Link href={paths.reproductions(doi)} class={button ? "button secondary" : undefined} data-testid="reproduce">
      Reproduce<span class="sr-only"> {doi}</span>
    </Link>
  );
}

function StartForm({ initialDoi }: { initialDoi: string }) {
  const projects = useLoad((signal) => api<Items<Project>>("/projects", { query: { filter: "mine" }, signal }), [], ["projects"]);
  const [doi, setDoi] = useState(initialDoi);
  const [project, setProject] = useState("");
  const [tol, setTol] = useState("1e-6");
  const action = useAction();
  useEffect(() => setDoi(initialDoi), [initialDoi]);
  // the re-run writes its outputs into the project's scope: projects where one may submit runs
  const writable = (projects.data?.items ?? []).filter((p) => !p.archived && p.role && p.role !== "viewer");
  const submit = async (event: Event) => {
    event.preventDefault();
    const started = await action.run(() =>
      api<Reproduction>("/zenodo/reproductions", {
        method: "POST",
        json: { doi: doi.trim(), project: project || null, tolerance: Number(tol) },
      }),
    );
    if (started) {
      invalidate("reproductions");
      navigate(paths.reproduction(started.id));
    }
  };
  const tolBad = tol.trim() === "" || Number.isNaN(Number(tol)) || Number(tol) < 0 || Number(tol) > 1;
  return (
    <form class="card" onSubmit={submit} aria-labelledby="reproduce-heading">
      <h2 id="reproduce-heading">Reproduce a published result</h2>
      <p class="help">
        From its DOI alone: the record's run record says how it was made; the VRE finds each input as it was, runs the same workflow
        again and compares every output with the published file.
      </p>
      <div class="row">
        <div class="field grow">
          <label for="repro-doi">DOI of the published result</label>
          <input id="repro-doi" required placeholder="10.5281/zenodo.1234567" value={doi} onInput={(e) => setDoi(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="repro-project">Project of the re-run</label>
          <select id="repro-project" value={project} onChange={(e) => setProject(e.currentTarget.value)} aria-describedby="repro-project-help">
            <option value="">none: my own scope</option>
            {writable.map((p) => (
              <option key={p.slug} value={p.slug}>
                {p.name} ({p.slug})
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="repro-tolerance">Tolerance (relative, for tables)</label>
          <input
            id="repro-tolerance"
            inputMode="decimal"
            value={tol}
            aria-invalid={tolBad}
            aria-describedby="repro-tolerance-help"
            onInput={(e) => setTol(e.currentTarget.value)}
          />
        </div>
        <button type="submit" disabled={action.busy || tolBad}>
          Start the reproduction
        </button>
      </div>
      <p id="repro-project-help" class="help">
        The re-run's outputs, and any input taken from the record, go to the project's scope (or to yours).
      </p>
      <p id="repro-tolerance-help" class={tolBad ? "field-error" : "help"}>
        {tolBad ? "Write a number between 0 and 1, for example 1e-6." : "Numbers in tables that differ by at most this fraction count as the same."}
      </p>
      <ProblemAlert problem={action.problem ?? projects.problem} labels={LABELS} />
    </form>
  );
}

function ReproductionList() {
  const list = useLoad((signal) => api<Items<Reproduction>>("/zenodo/reproductions", { signal }), [], ["reproductions"]);
  const paged = usePage(list.data?.items ?? [], 10);
  useInterval(list.reload, 2000, list.data?.items.some(isLive) ?? false);
  return (
    <div class="card">
      <h2 id="reproductions-heading">Your reproductions</h2>
      <ProblemAlert problem={list.problem} />
      {list.data && !list.data.items.length ? <p>None yet. Start one above, or with “Reproduce” next to a DOI.</p> : null}
      {list.data?.items.length ? (
        <TableScroll label="Your reproductions">
          <table data-testid="reproductions">
            <caption class="sr-only">Your reproductions</caption>
            <thead>
              <tr>
                <th scope="col">DOI</th>
                <th scope="col">Project</th>
                <th scope="col">State</th>
                <th scope="col">Verdict</th>
                <th scope="col">Started</th>
              </tr>
            </thead>
            <tbody>
              {paged.page.map((r) => (
                <tr key={r.id}>
                  <td>
                    <Link href={paths.reproduction(r.id)} class="breakable">
                      {r.doi}
                    </Link>
                  </td>
                  <td>{r.project ?? "your own scope"}</td>
                  <td>
                    <StatusBadge status={r.state} />
                  </td>
                  <td class="breakable">{r.verdict || r.state !== "finished" ? verdictWords(r).text : "—"}</td>
                  <td>{when(r.created_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableScroll>
      ) : null}
      <Pager index={paged.index} pages={paged.pages} setIndex={paged.setIndex} label="reproductions" total={list.data?.items.length} />
    </div>
  );
}

export function ReproductionsView({ query }: { query: URLSearchParams }) {
  // reading a record needs Zenodo (or the stand-in): say so before the user tries
  const zenodo = useCapability("zenodo", ["zenodo.zenodo"]);
  return (
    <section>
      <h1>Reproductions</h1>
      <p>
        <Link href={paths.zenodo()}>Zenodo</Link> › Reproductions
      </p>
      {zenodo && !zenodo.available ? (
        <div class="card unavailable" data-testid="unavailable">
          <h2>Reproducing is unavailable</h2>
          <p>{zenodo.reason} A reproduction reads the published record from Zenodo; ask the VRE's operators to connect it.</p>
        </div>
      ) : null}
      <StartForm initialDoi={query.get("doi") ?? ""} />
      <ReproductionList />
    </section>
  );
}

function Differences({ file }: { file: FileComparison }) {
  const parts = [];
  if (file.columns?.length) {
    parts.push(
      <div key="columns">
        Columns that differ:{" "}
        <ul class="plain" data-testid="columns">
          {file.columns.map((c) => (
            <li key={c.column}>
              <code>{c.column}</code>
              {c.max_relative_difference !== null && c.max_relative_difference !== undefined
                ? ` (largest relative difference ${relative(c.max_relative_difference)})`
                : ""}
              {c.detail ? <span class="muted"> {c.detail}</span> : null}
            </li>
          ))}
        </ul>
      </div>,
    );
  }
  if (file.max_relative_difference !== null && file.max_relative_difference !== undefined && !file.columns?.length) {
    parts.push(<div key="max">Largest relative difference {relative(file.max_relative_difference)}</div>);
  }
  if (file.original_bytes !== file.reproduced_bytes && file.original_bytes != null && file.reproduced_bytes != null) {
    parts.push(
      <div key="size">
        Size {bytes(file.original_bytes)} → {bytes(file.reproduced_bytes)}
      </div>,
    );
  }
  if (file.diff) {
    parts.push(
      <details key="diff">
        <summary>Short text diff</summary>
        <pre class="diff" tabIndex={0} data-testid="diff">
          {file.diff}
        </pre>
      </details>,
    );
  }
  if (file.detail && !file.columns?.length) parts.push(
      <div key="detail" class="muted">
        {file.detail}
      </div>,
    );
  if (!parts.length) return <>{file.outcome === "identical" ? "none" : "—"}</>;
  return <>{parts}</>;
}

/** The comparison: one row per output file. */
export function ComparisonTable({ files }: { files: FileComparison[] }) {
  return (
    <TableScroll label="Comparison of the outputs">
      {/* On a phone each row is stacked as a block (styles.css, .stack); the explicit roles keep
          it a table for screen readers whatever its display. */}
      <table data-testid="comparison" class="comparison stack" role="table">
        <caption class="sr-only">Comparison of the outputs</caption>
        <thead role="rowgroup">
          <tr role="row">
            <th scope="col" role="columnheader">Output file</th>
            <th scope="col" role="columnheader">md5: original / new</th>
            <th scope="col" role="columnheader">Identical?</th>
            <th scope="col" role="columnheader">Differences</th>
          </tr>
        </thead>
        <tbody role="rowgroup">
          {files.map((f) => (
            <tr key={f.path} data-testid="comparison-row" data-outcome={f.outcome} role="row">
              <th scope="row" role="rowheader">
                <Ident value={f.path} max={48} code />
              </th>
              <td role="cell" data-label="md5">
                <span class="md5">
                  <span class="muted md5-label">original</span> {f.original_md5 ? <Ident value={f.original_md5} max={32} code /> : "—"}
                </span>
                <span class="md5">
                  <span class="muted md5-label">new</span> {f.reproduced_md5 ? <Ident value={f.reproduced_md5} max={32} code /> : "—"}
                </span>
              </td>
              <td role="cell" data-label="Identical?">
                <span class={`badge badge-outcome-${f.outcome.replace(/ /g, "-")}`} data-testid="outcome">
                  {OUTCOME_WORDS[f.outcome]}
                </span>
                {f.method && f.method !== "checksum" ? <span class="muted"> by {f.method === "table" ? "its numbers" : f.method === "text" ? "its text" : "its bytes"}</span> : null}
              </td>
              <td class="breakable" role="cell" data-label="Differences">
                <Differences file={f} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </TableScroll>
  );
}

function JobLog({ id, live }: { id: string; live: boolean }) {
  const [text, setText] = useState("");
  const [tick, setTick] = useState(0);
  const box = useRef<HTMLPreElement>(null);
  useEffect(() => {
    const controller = new AbortController();
    request(`/zenodo/reproductions/${encodeURIComponent(id)}/logs`, { signal: controller.signal })
      .then((answer) => answer.text())
      .then((whole) => {
        if (!controller.signal.aborted) setText(whole);
      })
      .catch(() => undefined);
    return () => controller.abort();
  }, [id, tick, live]);
  useInterval(() => setTick((t) => t + 1), 2000, live);
  useEffect(() => {
    const el = box.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [text]);
  return (
    <div class="card">
      <h2 id="repro-log-heading">Log</h2>
      <pre ref={box} class="log" tabIndex={0} aria-labelledby="repro-log-heading" data-testid="repro-log">
        {text || "(nothing yet)"}
      </pre>
    </div>
  );
}

export function ReproductionView({ id }: { id: string }) {
  const job = useLoad((signal) => api<Reproduction>(`/zenodo/reproductions/${encodeURIComponent(id)}`, { signal }), [id], ["reproductions"]);
  const r = job.data;
  const live = r ? isLive(r) : false;
  useInterval(job.reload, 1500, live);
  const action = useAction();
  const cancel = () =>
    action.mutate(() => api(`/zenodo/reproductions/${encodeURIComponent(id)}/cancel`, { method: "POST" }), ["reproductions"], "The reproduction is cancelled.");
  if (!r) {
    return (
      <section>
        <h1>Reproduction</h1>
        {job.problem ? <ProblemAlert problem={job.problem} /> : <p aria-live="polite">Loading…</p>}
      </section>
    );
  }
  const verdict = verdictWords(r);
  const states = stepStates(r);
  return (
    <section>
      <h1 class="breakable">
        Reproduction of {r.doi.slice(0, r.doi.indexOf("/") + 1)}
        <wbr />
        {r.doi.slice(r.doi.indexOf("/") + 1)}
      </h1>
      <p>
        <Link href={paths.reproductions()}>Reproductions</Link> › <span class="breakable">{r.doi}</span>
      </p>
      <div class={`card verdict verdict-${verdict.tone}`} aria-live="polite">
        <p class="verdict-text" data-testid="verdict">
          {verdict.text}
        </p>
        <p data-testid="verdict-explained">{verdict.explain}</p>
      </div>
      <div class="columns">
        <div class="card">
          <h2>Status</h2>
          <p>
            <StatusBadge status={r.state} /> <span data-testid="repro-state" class="sr-only">{r.state}</span>
          </p>
          <ol class="steps repro-steps" data-testid="repro-steps">
            {STEPS.map((s, i) => (
              <li key={s.state} data-state={states[i]}>
                {s.label}: <strong>{states[i]}</strong>
              </li>
            ))}
          </ol>
          <ProblemAlert problem={action.problem} />
          {live ? (
            <button type="button" class="secondary" onClick={() => void cancel()} disabled={action.busy}>
              Cancel the reproduction
            </button>
          ) : null}
        </div>
        <div class="card">
          <h2>What was reproduced</h2>
          <dl class="facts">
            <dt>DOI</dt>
            <dd>
              <code>{r.doi}</code> <Link href={paths.provenance(`doi:${r.doi.toLowerCase()}`, "down", 2)}>provenance</Link>
            </dd>
            <dt>Original run</dt>
            <dd>{r.original_run_id ? <Ident value={r.original_run_id} max={13} code /> : "—"}</dd>
            <dt>Re-run</dt>
            <dd>{r.run_id ? <Ident value={r.run_id} href={paths.run(r.run_id)} max={13} /> : "not started"}</dd>
            <dt>Project</dt>
            <dd>{r.project ? <Link href={paths.project(r.project)}>{r.project}</Link> : "your own scope"}</dd>
            <dt>Tolerance</dt>
            <dd>{tolerance(r.tolerance)} (relative, for tables)</dd>
            <dt>Started</dt>
            <dd>{when(r.created_at)}</dd>
            <dt>Finished</dt>
            <dd>{when(r.finished_at)}</dd>
          </dl>
        </div>
      </div>
      <div class="card">
        <h2>Comparison of the outputs</h2>
        {r.files.length ? (
          <ComparisonTable files={r.files} />
        ) : (
          <p>{live ? "The outputs are compared when the re-run has finished." : "No output was compared."}</p>
        )}
      </div>
      {r.inputs.length ? (
        <div class="card">
          <h2>Inputs</h2>
          <TableScroll label="Inputs of the re-run">
            <table data-testid="repro-inputs" class="stack" role="table">
              <caption class="sr-only">Inputs of the re-run</caption>
              <thead role="rowgroup">
                <tr role="row">
                  <th scope="col" role="columnheader">Input</th>
                  <th scope="col" role="columnheader">Found</th>
                  <th scope="col" role="columnheader">Read by the re-run</th>
                </tr>
              </thead>
              <tbody role="rowgroup">
                {r.inputs.map((i) => (
                  <tr key={i.path} role="row">
                    <th scope="row" role="rowheader">
                      <Ident value={i.path} max={32} code />
                      {i.did ? (
                        <span class="muted">
                          {" "}
                          (was <Ident value={i.did} max={36} />)
                        </span>
                      ) : null}
                    </th>
                    <td class="breakable" role="cell" data-label="Found">
                      {SOURCE_WORDS[i.source]}
                      {i.detail ? <span class="muted"> {i.detail}</span> : null}
                    </td>
                    <td role="cell" data-label="Read by the re-run">
                      {i.used ? <Ident value={i.used} href={paths.didRef(i.used)} max={40} /> : "—"}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableScroll>
        </div>
      ) : null}
      <JobLog id={r.id} live={live} />
    </section>
  );
}
