// Tables that wrap at word boundaries and scroll sideways inside their own box on small
// screens (the page itself never scrolls sideways), and a pager for long lists.
import type { ComponentChildren } from "preact";

export function TableScroll({ label, children }: { label: string; children: ComponentChildren }) {
  // Focusable, so keyboard users can scroll it (axe: scrollable-region-focusable).
  return (
    <div class="table-scroll" tabIndex={0} role="region" aria-label={label}>
      {children}
    </div>
  );
}

/** Previous / next for a list in pages; nothing when one page holds everything. */
export function Pager({
  index,
  pages,
  setIndex,
  label,
  total,
}: {
  index: number;
  pages: number;
  setIndex: (i: number) => void;
  label: string;
  total?: number;
}) {
  if (pages <= 1) return null;
  return (
    <nav class="pager row" aria-label={`Pages of ${label}`}>
      <button type="button" class="secondary" disabled={index === 0} onClick={() => setIndex(index - 1)}>
        Previous page
      </button>
      <span data-testid="pager-state">
        Page {index + 1} of {pages}
        {total !== undefined ? ` (${total} in all)` : ""}
      </span>
      <button type="button" class="secondary" disabled={index >= pages - 1} onClick={() => setIndex(index + 1)}>
        Next page
      </button>
    </nav>
  );
}
