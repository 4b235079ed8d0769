// Long identifiers (DIDs, run ids, checksums, URLs) shortened in the middle, with the whole
// value on hover (title), for screen readers, and one click away on the clipboard.
import type { ComponentChildren } from "preact";
import { useState } from "preact/hooks";
import { Link } from "../router";

/** The text with its middle replaced by "…" when it is longer than `max` characters. */
export function middle(text: string, max: number): string {
  if (text.length <= max) return text;
  const keep = max - 1;
  const head = Math.ceil(keep / 2);
  return `${text.slice(0, head)}…${text.slice(text.length - (keep - head))}`;
}

/** A copy button for a value (the clipboard needs a secure context or localhost). */
export function CopyButton({ value, label }: { value: string; label: string }) {
  const [copied, setCopied] = useState(false);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(value);
      setCopied(true);
      window.setTimeout(() => setCopied(false), 1500);
    } catch {
      setCopied(false);
    }
  };
  return (
    <button type="button" class="copy" onClick={() => void copy()} title={`Copy ${value}`}>
      {copied ? "Copied" : "Copy"}
      <span class="sr-only"> {label}</span>
    </button>
  );
}

interface IdentProps {
  value: string;
  /** Shown instead of the value (still shortened); the value stays the tooltip and copy. */
  text?: string;
  max?: number;
  href?: string;
  copy?: boolean;
  code?: boolean;
  testid?: string;
}

/** An identifier: shortened, whole on hover, optionally a link and a copy button. */
export function Ident({ value, text, max = 32, href, copy = false, code = false, testid }: IdentProps) {
  const shown = middle(text ?? value, max);
  const cut = shown !== (text ?? value);
  let body: ComponentChildren = cut ? (
    <>
      <span aria-hidden="true">{shown}</span>
      <span class="sr-only">{text ?? value}</span>
    </>
  ) : (
    shown
  );
  if (code) body = <code>{body}</code>;
  return (
    <span class="ident" title={value} data-full={value}>
      {href ? (
        <Link href={href} data-testid={testid}>
          {body}
        </Link>
      ) : (
        <span data-testid={testid}>{body}</span>
      )}
      {copy ? <CopyButton value={value} label={text ?? value} /> : null}
    </span>
  );
}
