// What this deployment offers, from /readyz (read once a minute at most): pages for a
// capability that is down or not configured say so, with the reason, before the user tries.
import { useEffect, useState } from "preact/hooks";
import { authorization } from "./api";

export interface Dependency {
  name: string;
  up: boolean;
  reason?: string | null;
  optional?: boolean;
}

export interface Capability {
  available: boolean;
  /** Why not, in words for a person. */
  reason: string | null;
}

let cached: { at: number; value: Promise<Dependency[]> } | null = null;

function readiness(): Promise<Dependency[]> {
  if (!cached || Date.now() - cached.at > 60_000) {
    // Signed in, because deployments may give the reasons to signed-in callers only.
    const value = authorization()
      .then((headers) => fetch("/readyz", { cache: "no-store", credentials: "omit", headers }))
      .then((r) => r.json() as Promise<{ dependencies?: Dependency[] }>)
      .then((body) => body.dependencies ?? [])
      .catch(() => [] as Dependency[]);
    cached = { at: Date.now(), value };
  }
  return cached.value;
}

const NAMES: Record<string, string> = {
  zenodo: "Zenodo",
  rucio: "the Data Lake (Rucio)",
  reana: "REANA",
  "reana-validator": "the reana.yaml validator",
  database: "its database",
  datalake: "the Data Lake",
  registry: "the IVOA registry",
};

/** A dependency's reason in plain words ("Zenodo unreachable: ConnectError" → "… cannot reach Zenodo"). */
export function plainReason(dep: Dependency): string {
  const part = dep.name.split(".").pop() ?? dep.name;
  const what = NAMES[part] ?? part;
  const reason = dep.reason ?? "";
  if (/not configured|disabled|no .* configured/i.test(reason)) return `${what} is not configured on this VRE.`;
  if (/unreachable|connect|timeout|refused|resolve/i.test(reason)) return `This VRE cannot reach ${what} at the moment.`;
  return `${what} is not working on this VRE at the moment.`;
}

/** The state of one service's dependencies: `prefix` is the service ("zenodo"). */
export function useCapability(prefix: string, needs?: string[]): Capability | null {
  const [state, setState] = useState<Capability | null>(null);
  const key = (needs ?? []).join(",");
  useEffect(() => {
    let live = true;
    void readiness().then((deps) => {
      if (!live) return;
      const mine = deps.filter((d) => d.name === prefix || d.name.startsWith(`${prefix}.`));
      const relevant = needs ? mine.filter((d) => needs.includes(d.name)) : mine;
      const down = relevant.filter((d) => !d.up);
      setState(down.length ? { available: false, reason: down.map(plainReason).join(" ") } : { available: true, reason: null });
    });
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [prefix, key]);
  return state;
}
