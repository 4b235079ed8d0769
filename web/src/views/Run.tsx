// One run: live status, live logs that follow, outputs linked to their Data Lake DIDs.
import { useEffect, useRef, useState } from "preact/hooks";
import { api, followLogs, request, toProblem } from "../api";
import { Ident } from "../components/Ident";
import { ProblemAlert } from "../components/Problem";
import { TableScroll } from "../components/Table";
import { StatusBadge } from "../components/Status";
import { bytes, when } from "../format";
import { invalidate, useAction, useInterval, useLoad } from "../hooks";
import { Link, navigate, paths } from "../router";
import { FINAL_STATUSES, type Deposition, type Items, type Problem, type Run } from "../types";
import { ReproduceLink } from "./Reproductions";

/** The DOIs this run's outputs were published under (your depositions; none when Zenodo is
 * not connected). */
function PublishedAs({ runId }: { runId: string }) {
  const list = useLoad(
    (signal) => api<Items<Deposition>>("/zenodo/depositions", { signal }).catch(() => ({ items: [] as Deposition[] })),
    [runId],
    ["depositions"],
  );
  const dois = (list.data?.items ?? []).filter((d) => d.run_id === runId && d.doi).map((d) => d.doi as string);
  if (!dois.length) return null;
  return (
    <>
      <dt>Published as</dt>
      <dd data-testid="run-doi">
        {dois.map((doi) => (
          <span key={doi} class="doi-line">
            <code>{doi}</code> <ReproduceLink doi={doi} />
          </span>
        ))}
      </dd>
    </>
  );
}

function LiveLog({ runId, final }: { runId: string; final: boolean }) {
  const [text, setText] = useState("");
  const [following, setFollowing] = useState(true);
  const [ended, setEnded] = useState(false);
  const [problem, setProblem] = useState<Problem | null>(null);
  const [attempt, setAttempt] = useState(0);
  const box = useRef<HTMLPreElement>(null);
  const stick = useRef(true);

  useEffect(() => {
    const controller = new AbortController();
    setText("");
    setEnded(false);
    setProblem(null);
    followLogs(runId, (chunk) => setText((t) => t + chunk), controller.signal)
      .then(() => setEnded(true))
      .catch((err: unknown) => {
        if (!controller.signal.aborted) setProblem(toProblem(err));
      });
    return () => controller.abort();
  }, [runId, attempt]);

  // When the run has ended, read the whole log once more: step headers written while a step
  // ran ("(running)") then show how each step ended.
  useEffect(() => {
    if (!ended || !final) return undefined;
    const controller = new AbortController();
    request(`/workflows/runs/${encodeURIComponent(runId)}/logs`, { signal: controller.signal })
      .then((answer) => answer.text())
      .then((whole) => {
        if (!controller.signal.aborted && whole) setText(whole);
      })
      .catch(() => undefined);
    return () => controller.abort();
  }, [ended, final, runId]);

  // The stream ends with each step on some back ends: read again while the run goes on.
  useEffect(() => {
    if (ended && !final) {
      const id = window.setTimeout(() => setAttempt((a) => a + 1), 1000);
      return () => window.clearTimeout(id);
    }
    return undefined;
  }, [ended, final]);

  useEffect(() => {
    const el = box.current;
    if (el && following && stick.current) el.scrollTop = el.scrollHeight;
  }, [text, following]);

  return (
    <div class="card">
      <h2 id="logs-heading">Logs</h2>
      <p class="row">
        <label class="inline">
          <input type="checkbox" checked={following} onChange={(e) => setFollowing(e.currentTarget.checked)} /> Scroll with
          new lines
        </label>
        <span data-testid="log-state" aria-live="polite">
          {ended && final ? "The run has ended; this is the whole log." : "Following the log as it is written…"}
        </span>
      </p>
      <ProblemAlert problem={problem} />
      <pre
        ref={box}
        class="log"
        tabIndex={0}
        aria-labelledby="logs-heading"
        data-testid="log"
        onScroll={(e) => {
          const el = e.currentTarget;
          stick.current = el.scrollTop + el.clientHeight >= el.scrollHeight - 8;
        }}
      >
        {text || "(no output yet)"}
      </pre>
    </div>
  );
}

/** Steps that ran on the host because their image is missing: one sentence for the researcher,
 * the operator's instructions folded away. */
export function splitWarnings(warnings: string[]): { host: string[]; operator: string[]; other: string[] } {
  const host: string[] = [];
  const operator: string[] = [];
  const other: string[] = [];
  for (const w of warnings) {
    // "step NAME: image IMAGE is not available locally / cannot be pulled …; … It runs on the host instead …"
    const m = /^step (.+?): image (\S+) .*runs on the host instead/s.exec(w);
    if (m) {
      host.push(m[1]);
      operator.push(w);
    } else other.push(w);
  }
  return { host, operator, other };
}

export function RunView({ id }: { id: string }) {
  const run = useLoad((signal) => api<Run>(`/workflows/runs/${encodeURIComponent(id)}`, { signal }), [id]);
  const r = run.data;
  const final = r ? FINAL_STATUSES.includes(r.status) : false;
  // A run just submitted may not be readable at once on a busy server: look again a few times.
  const [misses, setMisses] = useState(0);
  const retrying = !r && !!run.problem && ![401, 403].includes(run.problem.status) && misses < 5;
  useInterval(
    () => {
      if (!r) setMisses((m) => m + 1);
      run.reload();
    },
    1500,
    retrying || (!!r && !final),
  );
  const action = useAction();
  const cancel = () =>
    action.run(async () => {
      await api(`/workflows/runs/${encodeURIComponent(id)}/cancel`, { method: "POST" });
      run.reload();
      invalidate("runs");
    });
  const rerun = () =>
    action.run(async () => {
      const next = await api<Run>(`/workflows/runs/${encodeURIComponent(id)}/rerun`, { method: "POST", json: {} });
      navigate(paths.run(next.id));
    });
  if (run.problem && !r && !retrying) {
    return (
      <section>
        <h1>Run {id}</h1>
        <ProblemAlert problem={run.problem} />
      </section>
    );
  }
  if (!r) return <p aria-live="polite">Loading…</p>;
  const warnings = splitWarnings(r.warnings ?? []);
  return (
    <section>
      <h1 class="breakable">Run {r.name}</h1>
      <p>
        <Link href={paths.workflows()}>Workflows</Link> › {r.name}
      </p>
      <div class="card">
        <p class="runstatus" aria-live="polite">
          Status: <StatusBadge status={r.status} />{" "}
          <span data-testid="run-status" class="sr-only">
            {r.status}
          </span>
          {r.progress ? (
            <span class="muted">
              {" "}
              {r.progress.finished} of {r.progress.total} steps finished
            </span>
          ) : null}
        </p>
        {r.progress && r.progress.total ? (
          <progress aria-label="Steps finished" max={r.progress.total} value={r.progress.finished}>
            {r.progress.finished} / {r.progress.total}
          </progress>
        ) : null}
        <dl class="facts">
          <dt>Id</dt>
          <dd>
            <Ident value={r.id} max={13} code copy />
          </dd>
          <dt>Owner</dt>
          <dd>{r.owner}</dd>
          <dt>Project</dt>
          <dd>{r.project ? <Link href={paths.project(r.project)}>{r.project}</Link> : "none"}</dd>
          <dt>Back end</dt>
          <dd>
            {r.backend} ({r.workflow_type})
          </dd>
          <dt>Submitted</dt>
          <dd>{when(r.created_at)}</dd>
          <dt>Started</dt>
          <dd>{when(r.started_at)}</dd>
          <dt>Finished</dt>
          <dd>{when(r.finished_at)}</dd>
          {r.status === "finished" ? <PublishedAs runId={r.id} /> : null}
        </dl>
        {r.error ? (
          <div class="problem" role="alert">
            <strong>{r.error.title ?? "The run failed"}</strong>
            {r.error.detail ? <p>{r.error.detail}</p> : null}
          </div>
        ) : null}
        {warnings.host.length ? (
          <div class="note" data-testid="host-note">
            <p>
              {warnings.host.length === 1 ? `The step ${warnings.host[0]} ran` : `The steps ${warnings.host.join(", ")} ran`} directly on the
              VRE's machine, without its container image (the image is not installed here). Results can differ from a run in the
              container.
            </p>
            <details>
              <summary>For the VRE's operators</summary>
              <ul>
                {warnings.operator.map((w, i) => (
                  <li key={i} class="breakable">
                    {w}
                  </li>
                ))}
              </ul>
            </details>
          </div>
        ) : null}
        {warnings.other.length ? (
          <ul class="warnings">
            {warnings.other.map((w, i) => (
              <li key={i} class="breakable">
                {w}
              </li>
            ))}
          </ul>
        ) : null}
        <ProblemAlert problem={action.problem} />
        <p class="row">
          {!final ? (
            <button type="button" class="secondary" onClick={() => void cancel()} disabled={action.busy}>
              Cancel the run
            </button>
          ) : (
            <button type="button" class="secondary" onClick={() => void rerun()} disabled={action.busy}>
              Run again
            </button>
          )}
          <Link class="button secondary" href={paths.provenance(`run:${r.id}`, "up", 3)}>
            Provenance of this run
          </Link>
          {r.status === "finished" && r.outputs.some((o) => o.did) ? (
            <Link class="button secondary" href={`${paths.zenodo()}?run=${encodeURIComponent(r.id)}`}>
              Publish the outputs with a DOI
            </Link>
          ) : null}
        </p>
      </div>
      <div class="card">
        <h2>Outputs</h2>
        {r.outputs.length ? (
          <TableScroll label="Outputs of the run">
          <table data-testid="outputs">
            <caption class="sr-only">Outputs of the run</caption>
            <thead>
              <tr>
                <th scope="col">File</th>
                <th scope="col">Data Lake DID</th>
                <th scope="col">Size</th>
                <th scope="col">adler32</th>
              </tr>
            </thead>
            <tbody>
              {r.outputs.map((o) => (
                <tr key={o.path}>
                  <td>
                    <Ident value={o.path} max={28} code />
                  </td>
                  <td>{o.did ? <Ident value={o.did} href={paths.didRef(o.did)} max={36} /> : "not registered"}</td>
                  <td>{bytes(o.bytes)}</td>
                  <td>
                    <code>{o.adler32}</code>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          </TableScroll>
        ) : (
          <p>{final ? "This run has no registered output." : "The outputs appear here when the run has finished."}</p>
        )}
        {r.output_dataset ? (
          <p>
            Dataset of the outputs: <Ident value={r.output_dataset} href={paths.didRef(r.output_dataset)} max={44} />
          </p>
        ) : null}
      </div>
      <LiveLog runId={r.id} final={final} />
      <div class="columns">
        <div class="card">
          <h2>Steps</h2>
          <ol class="steps">
            {r.steps.map((s) => (
              <li key={s.index}>
                <strong>{s.name}</strong> <StatusBadge status={s.status} />
                {s.execution ? <span class="muted"> ({s.execution})</span> : null}
                {s.exit_code !== null && s.exit_code !== undefined ? <span class="muted"> exit {s.exit_code}</span> : null}
                {s.message ? <p class="muted">{s.message}</p> : null}
              </li>
            ))}
          </ol>
        </div>
        <div class="card">
          <h2>Inputs</h2>
          {r.inputs.length ? (
            <ul class="plain">
              {r.inputs.map((i) => (
                <li key={i.path}>
                  {i.did ? <Ident value={i.did} href={paths.didRef(i.did)} max={40} /> : i.kind} → <code class="breakable">{i.path}</code>
                </li>
              ))}
            </ul>
          ) : (
            <p>None.</p>
          )}
        </div>
      </div>
    </section>
  );
}
