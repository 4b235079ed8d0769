import type { Problem } from "../types";

/** An API problem, announced to screen readers (role=alert), with its field errors listed. */
export function ProblemAlert({ problem, signIn }: { problem: Problem | null; signIn?: string }) {
  if (!problem) return null;
  return (
    <div class="problem" role="alert">
      <p class="problem-title">
        <strong>{problem.title}</strong>
        {problem.status ? <span class="problem-status"> ({problem.status})</span> : null}
      </p>
      {problem.detail ? <p>{problem.detail}</p> : null}
      {problem.errors && problem.errors.length > 0 ? (
        <ul>
          {problem.errors.map((e, i) => (
            <li key={i}>
              {e.loc && e.loc.length ? <code>{e.loc.join(".")}</code> : null}
              {e.loc && e.loc.length ? ": " : null}
              {e.msg}
              {e.line ? ` (line ${e.line}${e.column ? `, column ${e.column}` : ""})` : null}
            </li>
          ))}
        </ul>
      ) : null}
      {problem.status === 401 && signIn ? (
        <p>
          <a href={signIn}>Sign in again</a>
        </p>
      ) : null}
      {problem.request_id ? <p class="muted">Request id: {problem.request_id}</p> : null}
    </div>
  );
}
