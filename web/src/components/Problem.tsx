import { explain, type FieldLabels } from "../problems";
import type { Problem } from "../types";

/**
 * An API problem in words for a person (what happened, what to do), announced to screen
 * readers (role=alert). Field errors name the form's own labels; the request id is kept for
 * support under "Details".
 */
export function ProblemAlert({ problem, signIn, labels }: { problem: Problem | null; signIn?: string; labels?: FieldLabels }) {
  if (!problem || (problem.status === 0 && problem.title === "Cancelled")) return null;
  const e = explain(problem, labels);
  return (
    <div class="problem" role="alert" data-problem-type={problem.type ?? ""}>
      <p class="problem-title">
        <strong>{e.title}</strong>
      </p>
      {e.detail ? <p>{e.detail}</p> : null}
      {e.fields.length ? (
        <ul>
          {e.fields.map((f, i) => (
            <li key={i}>
              {f.label}: {f.message}
            </li>
          ))}
        </ul>
      ) : null}
      {e.advice ? <p>{e.advice}</p> : null}
      {problem.status === 401 && signIn ? (
        <p>
          <a href={signIn}>Sign in again</a>
        </p>
      ) : null}
      {problem.request_id ? (
        <details class="problem-details">
          <summary>Details for support</summary>
          <p class="muted">
            Request id <code>{problem.request_id}</code> (status {problem.status})
          </p>
        </details>
      ) : null}
    </div>
  );
}

/** A short confirmation of what an action did (a polite live region, so it is announced). */
export function Done({ text }: { text: string | null }) {
  return (
    <p class="done" role="status" data-testid="done">
      {text ?? ""}
    </p>
  );
}
