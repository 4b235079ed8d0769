// Science Projects: list, create, members and roles, group bindings, invitations.
import { useState } from "preact/hooks";
import { api } from "../api";
import { Done, ProblemAlert } from "../components/Problem";
import { Pager, TableScroll } from "../components/Table";
import { when } from "../format";
import { invalidate, useAction, useLoad, usePage } from "../hooks";
import { Link, navigate, paths } from "../router";
import { ROLES, type GroupBinding, type Invitation, type Items, type Member, type Project, type Role } from "../types";

function MyInvitations() {
  const invitations = useLoad((signal) => api<Items<Invitation>>("/invitations", { signal }), [], ["invitations"]);
  const action = useAction();
  const pending = invitations.data?.items.filter((i) => i.state === "pending") ?? [];
  if (!pending.length && !invitations.problem && !action.done) return null;
  // Accepting makes the project appear in every list of projects and scopes on the page.
  const answer = (i: Invitation, verb: "accept" | "decline") =>
    action.mutate(
      () => api(`/invitations/${encodeURIComponent(i.id)}/${verb}`, { method: "POST" }),
      ["invitations", "projects", "scopes"],
      verb === "accept" ? `You joined ${i.project_name} as ${i.role}.` : `You declined the invitation to ${i.project_name}.`,
    );
  return (
    <div class="card">
      <h2>Invitations for you</h2>
      <ProblemAlert problem={invitations.problem ?? action.problem} />
      <Done text={action.done} />
      {!pending.length ? <p>No invitation waits for you.</p> : null}
      <ul class="plain">
        {pending.map((i) => (
          <li key={i.id}>
            <strong>{i.project_name}</strong> as {i.role}
            {i.invited_by ? ` (from ${i.invited_by})` : ""}
            {i.message ? <q> {i.message}</q> : null}{" "}
            <button type="button" disabled={action.busy} onClick={() => void answer(i, "accept")}>
              Accept
            </button>{" "}
            <button type="button" class="secondary" disabled={action.busy} onClick={() => void answer(i, "decline")}>
              Decline
            </button>
          </li>
        ))}
      </ul>
    </div>
  );
}

const MAX_SLUG = 20; // Rucio scopes have at most 25 characters, "proj." included

/** The short name the server derives from a project's name (same rule: ASCII, lower case, dashes). */
export function deriveSlug(name: string): string {
  const ascii = name.normalize("NFKD").replace(/[^\x00-\x7f]/g, "").toLowerCase();
  return ascii.replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, MAX_SLUG).replace(/-+$/, "");
}

function slugHint(slug: string): string | null {
  if (!slug) return null;
  if (slug.length > MAX_SLUG) return `At most ${MAX_SLUG} characters (now ${slug.length}).`;
  if (/[A-Z]/.test(slug)) return "Use lower-case letters only.";
  if (/[^a-z0-9-]/.test(slug)) return "Use only lower-case letters, digits and dashes (no spaces).";
  if (slug.startsWith("-") || slug.endsWith("-")) return "Start and end with a letter or a digit.";
  if (slug.length < 2) return "At least 2 characters.";
  return null;
}

function CreateProject() {
  const [name, setName] = useState("");
  const [slug, setSlug] = useState("");
  const [description, setDescription] = useState("");
  const [visibility, setVisibility] = useState<"private" | "public">("private");
  const action = useAction();
  const hint = slugHint(slug);
  const derived = deriveSlug(name);
  const effective = slug || derived;
  const submit = async (event: Event) => {
    event.preventDefault();
    if (hint) return;
    const created = await action.run(() =>
      api<Project>("/projects", {
        method: "POST",
        json: { name, slug: slug || undefined, description, visibility },
      }),
    );
    if (created) {
      invalidate("projects", "scopes");
      navigate(paths.project(created.slug));
    }
  };
  return (
    <form class="card" onSubmit={submit} aria-labelledby="create-project">
      <h2 id="create-project">Create a project</h2>
      <ProblemAlert problem={action.problem} />
      <div class="field">
        <label for="project-name">Name</label>
        <input id="project-name" required value={name} onInput={(e) => setName(e.currentTarget.value)} />
      </div>
      <div class="field">
        <label for="project-slug">Short name (slug)</label>
        <input
          id="project-slug"
          maxLength={40}
          aria-describedby="project-slug-help project-slug-preview"
          aria-invalid={hint ? "true" : undefined}
          autocapitalize="off"
          spellcheck={false}
          value={slug}
          onInput={(e) => setSlug(e.currentTarget.value)}
        />
        <p id="project-slug-help" class="help">
          Lower-case letters, digits and dashes, at most {MAX_SLUG}; it names the Data Lake scope{" "}
          <code>proj.&lt;short name&gt;</code>. Left empty, it is made from the name.
        </p>
        {hint ? (
          <p class="field-error" id="project-slug-preview" data-testid="slug-hint">
            {hint}
          </p>
        ) : (
          <p class="help" id="project-slug-preview" aria-live="polite" data-testid="slug-preview">
            {effective ? (
              <>
                The scope will be <code>proj.{effective}</code>
                {!slug && derived.length >= MAX_SLUG ? " (made from the name, cut to 20 characters)" : !slug ? " (made from the name)" : ""}.
              </>
            ) : name ? (
              "No short name can be made from this name: give one."
            ) : null}
          </p>
        )}
      </div>
      <div class="field">
        <label for="project-description">Description</label>
        <textarea id="project-description" rows={2} value={description} onInput={(e) => setDescription(e.currentTarget.value)} />
      </div>
      <fieldset class="field">
        <legend>Visibility</legend>
        <label class="inline">
          <input type="radio" name="visibility" checked={visibility === "private"} onChange={() => setVisibility("private")} />{" "}
          Private (members only)
        </label>
        <label class="inline">
          <input type="radio" name="visibility" checked={visibility === "public"} onChange={() => setVisibility("public")} />{" "}
          Public (everyone may read)
        </label>
      </fieldset>
      <button type="submit" disabled={action.busy}>
        Create project
      </button>
    </form>
  );
}

export function ProjectsView() {
  const [filter, setFilter] = useState("mine");
  const projects = useLoad((signal) => api<Items<Project>>("/projects", { query: { filter }, signal }), [filter], ["projects"]);
  const paged = usePage(projects.data?.items ?? [], 20);
  return (
    <section>
      <h1>Projects</h1>
      <MyInvitations />
      <div class="columns">
        <div class="card">
          <h2>Projects</h2>
          <div class="field">
            <label for="project-filter">Show</label>
            <select id="project-filter" value={filter} onChange={(e) => setFilter(e.currentTarget.value)}>
              <option value="mine">my projects</option>
              <option value="public">public projects</option>
              <option value="all">all I can see</option>
            </select>
          </div>
          <ProblemAlert problem={projects.problem} />
          {projects.data && !projects.data.items.length ? (
            <p data-testid="empty">{filter === "mine" ? "You are not in any project yet: create one, or accept an invitation." : "No project here yet."}</p>
          ) : null}
          {paged.page.length ? (
            <TableScroll label="Projects">
              <table data-testid="projects">
                <caption class="sr-only">Projects</caption>
                <thead>
                  <tr>
                    <th scope="col">Project</th>
                    <th scope="col">Your role</th>
                    <th scope="col">Visibility</th>
                    <th scope="col">Data Lake scope</th>
                  </tr>
                </thead>
                <tbody>
                  {paged.page.map((p) => (
                    <tr key={p.slug}>
                      <td>
                        <Link href={paths.project(p.slug)}>{p.name}</Link>
                      </td>
                      <td>{p.role ?? "—"}</td>
                      <td>{p.visibility}</td>
                      <td>
                        <Link href={paths.scope(p.scope)}>{p.scope}</Link>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </TableScroll>
          ) : null}
          <Pager index={paged.index} pages={paged.pages} setIndex={paged.setIndex} label="projects" total={projects.data?.items.length} />
        </div>
        <CreateProject />
      </div>
    </section>
  );
}

function RoleSelect({ id, value, onChange, label }: { id: string; value: Role; onChange: (r: Role) => void; label: string }) {
  return (
    <select id={id} aria-label={label} value={value} onChange={(e) => onChange(e.currentTarget.value as Role)}>
      {ROLES.map((r) => (
        <option key={r} value={r}>
          {r}
        </option>
      ))}
    </select>
  );
}

function Members({ project, canManage }: { project: Project; canManage: boolean }) {
  const base = `/projects/${encodeURIComponent(project.slug)}`;
  const tag = `members:${project.slug}`;
  const members = useLoad((signal) => api<Items<Member>>(`${base}/members`, { signal }), [project.slug], [tag]);
  const action = useAction();
  const [username, setUsername] = useState("");
  const [role, setRole] = useState<Role>("member");
  const add = async (event: Event) => {
    event.preventDefault();
    const ok = await action.mutate(() => api(`${base}/members`, { method: "POST", json: { username, role } }), [tag], `Added ${username} as ${role}.`);
    if (ok) setUsername("");
  };
  const change = (m: Member, r: Role) =>
    action.mutate(
      () => api(`${base}/members/${encodeURIComponent(m.id)}`, { method: "PATCH", json: { role: r } }),
      [tag, `project:${project.slug}`],
      `${m.username ?? m.subject} is now ${r}.`,
    );
  const remove = (m: Member) =>
    action.mutate(
      () => api(`${base}/members/${encodeURIComponent(m.id)}`, { method: "DELETE" }),
      [tag, `project:${project.slug}`],
      `Removed ${m.username ?? m.subject}.`,
    );
  return (
    <div class="card">
      <h2>Members</h2>
      <ProblemAlert problem={members.problem ?? action.problem} labels={{ username: "User name" }} />
      <Done text={action.done} />
      <TableScroll label={`Members of ${project.name}`}>
      <table>
        <caption class="sr-only">Members of {project.name}</caption>
        <thead>
          <tr>
            <th scope="col">User</th>
            <th scope="col">Role</th>
            <th scope="col">Since</th>
            {canManage ? <th scope="col">Actions</th> : null}
          </tr>
        </thead>
        <tbody>
          {members.data?.items.map((m) => (
            <tr key={m.id}>
              <td>{m.username ?? m.subject}</td>
              <td>
                {canManage ? (
                  <RoleSelect
                    id={`role-${m.id}`}
                    label={`Role of ${m.username ?? m.subject}`}
                    value={m.role}
                    onChange={(r) => void change(m, r)}
                  />
                ) : (
                  m.role
                )}
              </td>
              <td>{when(m.added_at)}</td>
              {canManage ? (
                <td>
                  <button type="button" class="secondary" onClick={() => void remove(m)} disabled={action.busy}>
                    Remove<span class="sr-only"> {m.username ?? m.subject}</span>
                  </button>
                </td>
              ) : null}
            </tr>
          ))}
        </tbody>
      </table>
      </TableScroll>
      {canManage ? (
        <form onSubmit={add} class="row">
          <div class="field">
            <label for="member-username">Add a user (username)</label>
            <input id="member-username" required value={username} onInput={(e) => setUsername(e.currentTarget.value)} />
          </div>
          <div class="field">
            <label for="member-role">Role</label>
            <RoleSelect id="member-role" label="Role" value={role} onChange={setRole} />
          </div>
          <button type="submit" disabled={action.busy}>
            Add member
          </button>
        </form>
      ) : null}
    </div>
  );
}

function Groups({ project, canManage }: { project: Project; canManage: boolean }) {
  const base = `/projects/${encodeURIComponent(project.slug)}/groups`;
  const tag = `groups:${project.slug}`;
  const groups = useLoad((signal) => api<Items<GroupBinding>>(base, { signal }), [project.slug], [tag]);
  const action = useAction();
  const [group, setGroup] = useState("");
  const [role, setRole] = useState<Role>("member");
  const add = async (event: Event) => {
    event.preventDefault();
    if (await action.mutate(() => api(base, { method: "POST", json: { group, role } }), [tag], `Bound ${group} as ${role}.`)) setGroup("");
  };
  const remove = (g: string) => action.mutate(() => api(base, { method: "DELETE", query: { group: g } }), [tag], `Unbound ${g}.`);
  return (
    <div class="card">
      <h2>Groups</h2>
      <p class="help">Everyone in a bound IAM group gets its role in the project.</p>
      <ProblemAlert problem={groups.problem ?? action.problem} />
      <Done text={action.done} />
      <ul class="plain">
        {groups.data?.items.map((g) => (
          <li key={g.group}>
            <code>{g.group}</code> as {g.role}{" "}
            {canManage ? (
              <button type="button" class="secondary" onClick={() => void remove(g.group)} disabled={action.busy}>
                Unbind<span class="sr-only"> {g.group}</span>
              </button>
            ) : null}
          </li>
        ))}
        {groups.data && !groups.data.items.length ? <li>No group bound.</li> : null}
      </ul>
      {canManage ? (
        <form onSubmit={add} class="row">
          <div class="field">
            <label for="group-name">Group</label>
            <input id="group-name" placeholder="/vre/beta" required value={group} onInput={(e) => setGroup(e.currentTarget.value)} />
          </div>
          <div class="field">
            <label for="group-role">Role</label>
            <RoleSelect id="group-role" label="Role" value={role} onChange={setRole} />
          </div>
          <button type="submit" disabled={action.busy}>
            Bind group
          </button>
        </form>
      ) : null}
    </div>
  );
}

function Invitations({ project }: { project: Project }) {
  const base = `/projects/${encodeURIComponent(project.slug)}/invitations`;
  const tag = `invitations:${project.slug}`;
  const invitations = useLoad((signal) => api<Items<Invitation>>(base, { signal }), [project.slug], [tag]);
  const action = useAction();
  const [username, setUsername] = useState("");
  const [role, setRole] = useState<Role>("member");
  const [message, setMessage] = useState("");
  const [unknown, setUnknown] = useState<string | null>(null);
  const invite = async (event: Event) => {
    event.preventDefault();
    setUnknown(null);
    const sent = await action.run(() => api<Invitation>(base, { method: "POST", json: { username, role, message: message || undefined } }));
    if (sent) {
      // A user name nobody has signed in with yet may be misspelt: say so instead of a silent success.
      if (sent.invitee_known === false) setUnknown(username);
      else action.setDone(`Invited ${username} as ${role}: they see the invitation on their Projects page.`);
      setUsername("");
      setMessage("");
      invalidate(tag);
    }
  };
  const revoke = (i: Invitation) =>
    action.mutate(() => api(`${base}/${encodeURIComponent(i.id)}`, { method: "DELETE" }), [tag], `Revoked the invitation of ${i.username ?? i.subject}.`);
  return (
    <div class="card">
      <h2>Invitations</h2>
      <ProblemAlert problem={invitations.problem ?? action.problem} labels={{ username: "User name" }} />
      <Done text={action.done} />
      {unknown ? (
        <div class="warning" role="alert" data-testid="invitee-unknown">
          <p>
            <strong>Nobody called “{unknown}” has signed in to this VRE yet.</strong> The invitation waits for a user of that
            name for its lifetime; check the spelling, and revoke it below if it is wrong.
          </p>
        </div>
      ) : null}
      <ul class="plain">
        {invitations.data?.items.map((i) => (
          <li key={i.id}>
            {i.username ?? i.subject} as {i.role}: {i.state}
            {i.state === "pending" && i.invitee_known === false ? <span class="muted"> (not signed in yet)</span> : null}
            <span class="muted"> (expires {when(i.expires_at)})</span>{" "}
            {i.state === "pending" ? (
              <button type="button" class="secondary" onClick={() => void revoke(i)} disabled={action.busy}>
                Revoke<span class="sr-only"> the invitation of {i.username ?? i.subject}</span>
              </button>
            ) : null}
          </li>
        ))}
        {invitations.data && !invitations.data.items.length ? <li>No invitation.</li> : null}
      </ul>
      <form onSubmit={invite}>
        <div class="row">
          <div class="field">
            <label for="invite-username">Invite a user (username)</label>
            <input id="invite-username" required value={username} onInput={(e) => setUsername(e.currentTarget.value)} />
          </div>
          <div class="field">
            <label for="invite-role">Role</label>
            <RoleSelect id="invite-role" label="Role" value={role} onChange={setRole} />
          </div>
        </div>
        <div class="field">
          <label for="invite-message">Message (optional)</label>
          <input id="invite-message" value={message} onInput={(e) => setMessage(e.currentTarget.value)} />
        </div>
        <button type="submit" disabled={action.busy}>
          Send invitation
        </button>
      </form>
    </div>
  );
}

export function ProjectView({ slug }: { slug: string }) {
  const project = useLoad((signal) => api<Project>(`/projects/${encodeURIComponent(slug)}`, { signal }), [slug], [`project:${slug}`, "projects"]);
  const p = project.data;
  if (project.problem) {
    const missing = project.problem.status === 404 || project.problem.status === 403;
    return (
      <section>
        <h1>Project “{slug}”</h1>
        {missing ? (
          <p class="refused" data-testid="refused">
            You cannot open this project: it does not exist, or it is private and you are not one of its members. Ask
            its owner for an invitation.
          </p>
        ) : null}
        <ProblemAlert problem={project.problem} />
        <p>
          <Link href={paths.projects()}>Back to your projects</Link>
        </p>
      </section>
    );
  }
  if (!p) return <p aria-live="polite">Loading…</p>;
  const canManage = p.role === "owner" || p.role === "maintainer";
  return (
    <section>
      <h1>{p.name}</h1>
      <div class="card">
        {p.description ? <p>{p.description}</p> : null}
        <dl class="facts">
          <dt>Short name</dt>
          <dd>{p.slug}</dd>
          <dt>Your role</dt>
          <dd>{p.role ?? "none (public project)"}</dd>
          <dt>Visibility</dt>
          <dd>{p.visibility}</dd>
          <dt>Data Lake scope</dt>
          <dd>
            <Link href={paths.scope(p.scope)}>{p.scope}</Link> (upload and browse the project's files)
          </dd>
          <dt>Created</dt>
          <dd>{when(p.created_at)}</dd>
        </dl>
        {p.links.length ? (
          <ul>
            {p.links.map((l) => (
              <li key={l.url}>
                <a href={l.url} rel="noopener noreferrer">
                  {l.title}
                </a>
              </li>
            ))}
          </ul>
        ) : null}
        <p>
          <Link class="button" href={paths.scope(p.scope)}>
            Open the Data Lake scope
          </Link>{" "}
          <Link class="button secondary" href={`${paths.workflows()}?project=${encodeURIComponent(p.slug)}`}>
            Run a workflow in this project
          </Link>
        </p>
      </div>
      <div class="columns">
        <Members project={p} canManage={canManage} />
        <Groups project={p} canManage={canManage} />
      </div>
      {canManage ? <Invitations project={p} /> : null}
    </section>
  );
}
