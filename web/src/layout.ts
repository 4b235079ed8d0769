// A small layered (Sugiyama-style) layout for provenance graphs: nodes in columns by the
// longest path from the sources, ordered inside each column by the barycentre of their
// neighbours, a few sweeps each way. Enough for the tens of nodes a provenance walk answers.

export interface LayoutEdge {
  from: string;
  to: string;
}

export interface Placed {
  id: string;
  layer: number;
  order: number;
  x: number;
  y: number;
}

export interface Layout {
  nodes: Map<string, Placed>;
  width: number;
  height: number;
}

export interface LayoutOptions {
  nodeWidth: number;
  nodeHeight: number;
  gapX: number;
  gapY: number;
  margin: number;
}

/** Layer index per node: the longest path from a source (edges closing a cycle are ignored). */
function layers(ids: string[], edges: LayoutEdge[]): Map<string, number> {
  const outgoing = new Map<string, string[]>(ids.map((id) => [id, []]));
  for (const e of edges) outgoing.get(e.from)?.push(e.to);
  // Depth-first order; back edges (to a node on the stack) are dropped, which breaks cycles.
  const state = new Map<string, 1 | 2>();
  const order: string[] = [];
  const acyclic: LayoutEdge[] = [];
  const visit = (root: string) => {
    const stack: [string, number][] = [[root, 0]];
    state.set(root, 1);
    while (stack.length) {
      const top = stack[stack.length - 1];
      const next = outgoing.get(top[0]) ?? [];
      if (top[1] < next.length) {
        const child = next[top[1]++];
        if (state.get(child) === 1) continue;
        acyclic.push({ from: top[0], to: child });
        if (!state.has(child)) {
          state.set(child, 1);
          stack.push([child, 0]);
        }
      } else {
        state.set(top[0], 2);
        order.push(top[0]);
        stack.pop();
      }
    }
  };
  for (const id of ids) if (!state.has(id)) visit(id);
  order.reverse(); // topological order
  const layer = new Map<string, number>(ids.map((id) => [id, 0]));
  const incoming = new Map<string, string[]>(ids.map((id) => [id, []]));
  for (const e of acyclic) incoming.get(e.to)?.push(e.from);
  for (const id of order) {
    for (const parent of incoming.get(id) ?? []) layer.set(id, Math.max(layer.get(id) ?? 0, (layer.get(parent) ?? 0) + 1));
  }
  return layer;
}

export function layeredLayout(ids: string[], edges: LayoutEdge[], options: LayoutOptions): Layout {
  const known = new Set(ids);
  const valid = edges.filter((e) => known.has(e.from) && known.has(e.to) && e.from !== e.to);
  const layerOf = layers(ids, valid);
  const columns: string[][] = [];
  for (const id of ids) {
    const l = layerOf.get(id) ?? 0;
    (columns[l] ??= []).push(id);
  }
  const neighbours = new Map<string, string[]>(ids.map((id) => [id, []]));
  for (const e of valid) {
    neighbours.get(e.from)?.push(e.to);
    neighbours.get(e.to)?.push(e.from);
  }
  const position = new Map<string, number>();
  const renumber = () => columns.forEach((col) => col.forEach((id, i) => position.set(id, i)));
  renumber();
  const sweep = (from: number, to: number, step: number) => {
    for (let l = from; l !== to; l += step) {
      const col = columns[l];
      if (!col) continue;
      const adjacent = l - step;
      const score = new Map<string, number>();
      col.forEach((id, i) => {
        const near = (neighbours.get(id) ?? []).filter((n) => layerOf.get(n) === adjacent);
        score.set(id, near.length ? near.reduce((s, n) => s + (position.get(n) ?? 0), 0) / near.length : i);
      });
      col.sort((a, b) => (score.get(a) ?? 0) - (score.get(b) ?? 0));
      col.forEach((id, i) => position.set(id, i));
    }
  };
  for (let round = 0; round < 4; round++) {
    sweep(1, columns.length, 1);
    sweep(columns.length - 2, -1, -1);
  }
  renumber();
  const tallest = Math.max(1, ...columns.map((c) => c?.length ?? 0));
  const { nodeWidth, nodeHeight, gapX, gapY, margin } = options;
  const height = margin * 2 + tallest * nodeHeight + (tallest - 1) * gapY;
  const nodes = new Map<string, Placed>();
  columns.forEach((col, layer) => {
    if (!col) return;
    const columnHeight = col.length * nodeHeight + (col.length - 1) * gapY;
    const top = (height - columnHeight) / 2;
    col.forEach((id, order) => {
      nodes.set(id, { id, layer, order, x: margin + layer * (nodeWidth + gapX), y: top + order * (nodeHeight + gapY) });
    });
  });
  const width = margin * 2 + columns.length * nodeWidth + Math.max(0, columns.length - 1) * gapX;
  return { nodes, width, height };
}
