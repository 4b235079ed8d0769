// Data loading, and the one pattern for changing things: a mutation names the kinds of data
// it changed ("tags"); every loader showing such data loads again, so the page shows the new
// state after every action without a reload (a 204 answer counts as success like any other).
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { toProblem } from "./api";
import type { Problem } from "./types";

export interface Loaded<T> {
  data: T | null;
  problem: Problem | null;
  loading: boolean;
  reload: () => void;
}

// ---- the invalidation bus: tags are strings such as "projects", "scope:proj.x", "rules"
const subscribers = new Set<{ tags: string[]; reload: () => void }>();

/** Tell every loader that shows data under one of these tags to load again. */
export function invalidate(...tags: string[]): void {
  for (const s of [...subscribers]) {
    if (s.tags.some((t) => tags.includes(t))) s.reload();
  }
}

/** Tags of a Data Lake DID and of the listings that show it. */
export function didTags(scope: string, name?: string): string[] {
  return name ? [`scope:${scope}`, `did:${scope}:${name}`, "usage"] : [`scope:${scope}`, "usage"];
}

/**
 * Load data for a view. `tags` name what it shows: an action that changes such data
 * (`useAction().mutate`, or `invalidate`) makes it load again.
 */
export function useLoad<T>(load: (signal: AbortSignal) => Promise<T>, deps: unknown[], tags: string[] = []): Loaded<T> {
  const [data, setData] = useState<T | null>(null);
  const [problem, setProblem] = useState<Problem | null>(null);
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  const tagKey = tags.join("\n");
  useEffect(() => {
    if (!tagKey) return undefined;
    const entry = { tags: tagKey.split("\n"), reload };
    subscribers.add(entry);
    return () => void subscribers.delete(entry);
  }, [tagKey, reload]);
  useEffect(() => {
    const controller = new AbortController();
    setLoading(true);
    load(controller.signal)
      .then((value) => {
        if (controller.signal.aborted) return;
        setData(value);
        setProblem(null);
      })
      .catch((err: unknown) => {
        if (controller.signal.aborted) return;
        setProblem(toProblem(err));
      })
      .finally(() => {
        if (!controller.signal.aborted) setLoading(false);
      });
    return () => controller.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick]);
  return { data, problem, loading, reload };
}

export interface Action {
  busy: boolean;
  problem: Problem | null;
  /** What the last successful mutation did, in words (announced politely). */
  done: string | null;
  setProblem: (p: Problem | null) => void;
  setDone: (text: string | null) => void;
  /** Run something and keep its problem; answers its value, or undefined when it failed. */
  run: <T>(action: () => Promise<T>) => Promise<T | undefined>;
  /**
   * Change something: answers true when it succeeded (whatever the body, 204 included), then
   * reloads every view showing one of `tags` and remembers `done` to show.
   */
  mutate: (action: () => Promise<unknown>, tags: string[], done?: string) => Promise<boolean>;
}

/** An action (a form submission, a button) with its busy state, problem and outcome. */
export function useAction(): Action {
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<Problem | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const mounted = useRef(true);
  useEffect(() => () => void (mounted.current = false), []);
  const run = useCallback(async <T,>(action: () => Promise<T>): Promise<T | undefined> => {
    setBusy(true);
    setProblem(null);
    setDone(null);
    try {
      return await action();
    } catch (err) {
      if (mounted.current) setProblem(toProblem(err));
      return undefined;
    } finally {
      if (mounted.current) setBusy(false);
    }
  }, []);
  const mutate = useCallback(
    async (action: () => Promise<unknown>, tags: string[], doneText?: string): Promise<boolean> => {
      setBusy(true);
      setProblem(null);
      setDone(null);
      try {
        await action();
      } catch (err) {
        if (mounted.current) setProblem(toProblem(err));
        return false;
      } finally {
        if (mounted.current) setBusy(false);
      }
      if (mounted.current && doneText) setDone(doneText);
      invalidate(...tags);
      return true;
    },
    [],
  );
  return { busy, problem, done, setProblem, setDone, run, mutate };
}

/** Call `callback` whenever one of `tags` is invalidated. */
export function useInvalidated(tags: string[], callback: () => void): void {
  const saved = useRef(callback);
  saved.current = callback;
  const tagKey = tags.join("\n");
  useEffect(() => {
    const entry = { tags: tagKey.split("\n"), reload: () => saved.current() };
    subscribers.add(entry);
    return () => void subscribers.delete(entry);
  }, [tagKey]);
}

/** Call `tick` every `ms` while `active`. */
export function useInterval(tick: () => void, ms: number, active: boolean): void {
  const saved = useRef(tick);
  saved.current = tick;
  useEffect(() => {
    if (!active) return undefined;
    const id = window.setInterval(() => saved.current(), ms);
    return () => window.clearInterval(id);
  }, [ms, active]);
}

/** One page of a list held in memory (lists page: no table grows without end). */
export function usePage<T>(items: T[], size = 20): { page: T[]; index: number; pages: number; setIndex: (i: number) => void } {
  const [index, setIndex] = useState(0);
  const pages = Math.max(1, Math.ceil(items.length / size));
  const current = Math.min(index, pages - 1);
  return { page: items.slice(current * size, current * size + size), index: current, pages, setIndex };
}
