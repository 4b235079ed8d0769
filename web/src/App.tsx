// The dashboard's frame: who is signed in, the navigation, and one view per address.
import { useEffect, useRef, useState } from "preact/hooks";
import { currentSession, loadSession, logout, onSessionChange, signInUrl, toProblem } from "./api";
import { useCapability } from "./capabilities";
import { ProblemAlert } from "./components/Problem";
import { epoch } from "./format";
import { Link, paths, useLocation } from "./router";
import type { Problem, Session } from "./types";
import { CatalogueView, SoftwareView } from "./views/Catalogue";
import { DatalakeView, DidView, ScopeView } from "./views/Datalake";
import { HomeView } from "./views/Home";
import { IvoaView } from "./views/Ivoa";
import { SearchBox, SearchView } from "./views/Search";
import { ProjectsView, ProjectView } from "./views/Projects";
import { ProvenanceView } from "./views/Provenance";
import { ReproductionsView, ReproductionView } from "./views/Reproductions";
import { RunView } from "./views/Run";
import { WorkflowsView } from "./views/Workflows";
import { ZenodoView } from "./views/Zenodo";

const NAV: [string, string][] = [
  [paths.home(), "Overview"],
  [paths.projects(), "Projects"],
  [paths.datalake(), "Data Lake"],
  [paths.workflows(), "Workflows"],
  [paths.catalogue(), "Catalogue"],
  [paths.ivoa(), "Archives (IVOA)"],
  [paths.zenodo(), "Zenodo"],
  [paths.provenance(""), "Provenance"],
];

function route(path: string, query: URLSearchParams) {
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  switch (parts[0]) {
    case undefined:
      return <HomeView />;
    case "projects":
      return parts[1] ? <ProjectView slug={parts[1]} /> : <ProjectsView />;
    case "datalake":
      if (parts.length >= 3) return <DidView scope={parts[1]} name={parts.slice(2).join("/")} />;
      if (parts.length === 2) return <ScopeView scope={parts[1]} query={query} />;
      return <DatalakeView />;
    case "workflows":
      return <WorkflowsView />;
    case "runs":
      return parts[1] ? <RunView id={parts[1]} /> : <WorkflowsView />;
    case "catalogue":
      return parts[1] ? <SoftwareView id={parts[1]} /> : <CatalogueView />;
    case "zenodo":
      return <ZenodoView query={query} />;
    case "reproductions":
      return parts[1] ? <ReproductionView id={parts[1]} /> : <ReproductionsView query={query} />;
    case "provenance":
      return <ProvenanceView query={query} />;
    case "ivoa":
      return <IvoaView query={query} />;
    case "search":
      return <SearchView query={query} />;
    default:
      return (
        <section>
          <h1>Page not found</h1>
          <p>
            There is no dashboard page at this address. <Link href={paths.home()}>Go to the overview</Link>.
          </p>
        </section>
      );
  }
}

function UserBox({ session }: { session: Session }) {
  const { user } = session;
  return (
    <div class="userbox">
      <p>
        Signed in as <strong data-testid="username">{user.name || user.username}</strong>
        {user.name ? <span class="muted"> ({user.username})</span> : null}
      </p>
      <p class="muted userbox-more">
        Groups: {user.groups.length ? user.groups.join(", ") : "none"} · session ends {epoch(session.session_expires_at)}
      </p>
      <button type="button" class="secondary" onClick={() => void logout()}>
        Sign out
      </button>
    </div>
  );
}

/** A navigation label, marked when the deployment lacks what the page is for (from /readyz). */
function NavLabel({ href, label }: { href: string; label: string }) {
  const zenodo = useCapability("zenodo", ["zenodo.zenodo"]);
  const off = href === paths.zenodo() && zenodo && !zenodo.available;
  return (
    <>
      {label}
      {off ? (
        <span class="nav-off" title={zenodo?.reason ?? undefined}>
          {" "}
          (unavailable)
        </span>
      ) : null}
    </>
  );
}

export function App() {
  const [session, setSession] = useState<Session | null>(currentSession());
  const [checked, setChecked] = useState(false);
  const [problem, setProblem] = useState<Problem | null>(null);
  const { path, query } = useLocation();
  const main = useRef<HTMLElement>(null);
  const first = useRef(true);

  useEffect(() => {
    const off = onSessionChange(setSession);
    loadSession()
      .catch((err: unknown) => setProblem(toProblem(err)))
      .finally(() => setChecked(true));
    return off;
  }, []);

  // After in-app navigation, move focus to the new page's heading (screen readers and keyboards).
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    window.scrollTo(0, 0);
    const heading = main.current?.querySelector<HTMLElement>("h1");
    if (heading) {
      heading.tabIndex = -1;
      heading.focus();
    }
  }, [path]);

  useEffect(() => {
    const heading = main.current?.querySelector("h1")?.textContent;
    document.title = heading ? `${heading} · VRE` : "VRE dashboard";
  });

  const section = "/" + (path.split("/")[1] ?? "");
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="topbar">
        <a class="brand" href="/">
          VRE
        </a>
        {session ? <UserBox session={session} /> : null}
      </header>
      {session ? (
        <nav aria-label="Dashboard" class="mainnav">
          <ul>
            {NAV.map(([href, label]) => {
              const target = "/" + (href.split("?")[0].slice("/app/".length).split("/")[0] ?? "");
              const current = target === section || (target === "/" && section === "/");
              const active = current || (target === "/workflows" && section === "/runs") || (target === "/zenodo" && section === "/reproductions");
              return (
                <li key={href}>
                  <Link href={href} aria-current={active ? "page" : undefined}>
                    <NavLabel href={href} label={label} />
                  </Link>
                </li>
              );
            })}
          </ul>
          <SearchBox initial={section === "/search" ? query.get("q") ?? "" : ""} />
        </nav>
      ) : null}
      <main id="main" ref={main}>
        <ProblemAlert problem={problem} />
        {!checked ? (
          <p aria-live="polite">Checking your session…</p>
        ) : session ? (
          route(path, query)
        ) : (
          <section class="signedout">
            <h1>You are not signed in</h1>
            <p>Your session has ended, or you have not signed in yet.</p>
            <p>
              <a class="button" href={signInUrl()}>
                Sign in again
              </a>
            </p>
          </section>
        )}
      </main>
    </>
  );
}
