// A small History-API router: every dashboard page has its own address under /app.
import type { AnchorHTMLAttributes, ComponentChildren } from "preact";
import { useEffect, useState } from "preact/hooks";

export const BASE = "/app";

function currentLocation(): string {
  return window.location.pathname + window.location.search;
}

const listeners = new Set<() => void>();
window.addEventListener("popstate", () => listeners.forEach((l) => l()));

export function navigate(to: string, replace = false): void {
  if (to === currentLocation()) return;
  if (replace) window.history.replaceState(null, "", to);
  else window.history.pushState(null, "", to);
  listeners.forEach((l) => l());
}

/** The current path (without /app) and query parameters; re-renders on navigation. */
export function useLocation(): { path: string; query: URLSearchParams } {
  const [location, setLocation] = useState(currentLocation());
  useEffect(() => {
    const listener = () => setLocation(currentLocation());
    listeners.add(listener);
    return () => listeners.delete(listener);
  }, []);
  const url = new URL(location, window.location.origin);
  let path = url.pathname.startsWith(BASE) ? url.pathname.slice(BASE.length) : url.pathname;
  if (path.length > 1 && path.endsWith("/")) path = path.slice(0, -1);
  return { path: path || "/", query: url.searchParams };
}

type LinkProps = AnchorHTMLAttributes<HTMLAnchorElement> & { href: string; children?: ComponentChildren };

/** An ordinary link that navigates inside the app (modifier-clicks open new tabs as usual). */
export function Link({ href, children, ...rest }: LinkProps) {
  const onClick = (event: MouseEvent) => {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    navigate(href);
  };
  return (
    <a href={href} onClick={onClick} {...rest}>
      {children}
    </a>
  );
}

/** App paths, one place. */
export const paths = {
  home: () => `${BASE}`,
  projects: () => `${BASE}/projects`,
  project: (slug: string) => `${BASE}/projects/${encodeURIComponent(slug)}`,
  datalake: () => `${BASE}/datalake`,
  scope: (scope: string, query?: Record<string, string>) =>
    `${BASE}/datalake/${encodeURIComponent(scope)}${query ? "?" + new URLSearchParams(query).toString() : ""}`,
  did: (scope: string, name: string) =>
    `${BASE}/datalake/${encodeURIComponent(scope)}/${name.split("/").map(encodeURIComponent).join("/")}`,
  didRef: (did: string) => {
    const at = did.indexOf(":");
    return paths.did(did.slice(0, at), did.slice(at + 1));
  },
  workflows: () => `${BASE}/workflows`,
  run: (id: string) => `${BASE}/runs/${encodeURIComponent(id)}`,
  catalogue: () => `${BASE}/catalogue`,
  software: (id: number | string) => `${BASE}/catalogue/${encodeURIComponent(String(id))}`,
  zenodo: () => `${BASE}/zenodo`,
  /** The reproductions page; with a DOI, its form is filled in ("Reproduce" on a DOI). */
  reproductions: (doi?: string) => `${BASE}/reproductions${doi ? "?" + new URLSearchParams({ doi }).toString() : ""}`,
  reproduction: (id: string) => `${BASE}/reproductions/${encodeURIComponent(id)}`,
  search: (q: string) => `${BASE}/search?${new URLSearchParams({ q }).toString()}`,
  ivoa: (query?: Record<string, string>) => `${BASE}/ivoa${query ? "?" + new URLSearchParams(query).toString() : ""}`,
  provenance: (entity: string, direction: "up" | "down" = "up", depth = 5) =>
    `${BASE}/provenance?${new URLSearchParams({ entity, direction, depth: String(depth) }).toString()}`,
};
