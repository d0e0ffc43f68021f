// The scale-out model's table for 1–64 nodes: the star against the tree at a few fan-outs, with and
// without overlap, f32 and bf16, on two reference links, weak and strong scaling. Predictions only.

import { fmt, table } from './stats.js';
import { predictTree, type TreeInputs, type TreePrediction } from './scaleout-tree.js';
import type { WireFloat } from '../../core/protocol/wire.js';

/** What the table is computed from: one machine's costs, per node of one thread. */
export interface TableCosts {
  readonly layers: readonly number[];
  /** Forward + backward of one sample on one thread (the pool's whole turn), seconds. */
  readonly computeSecPerSample: number;
  readonly perMessageSec: number;
  readonly perByteSec: number;
  readonly headerBytes: number;
  /** Adding one node's gradient into a sum, seconds. */
  readonly reduceSecPerNode: number;
  readonly updateSec: number;
  /** Where the numbers come from, printed with the table. */
  readonly source: string;
}

/**
 * Stated defaults, for a table anyone can reprint: the reference MLP; compute from the native
 * AVX-512 kernels' 1-thread row at batch 128 in bench/RESULTS.md (3.06 ms step − 0.30 ms update
 * over 128 samples); the coordinator's per-frame cost from issue #13 (104 µs + 1.12 ns a byte,
 * loopback); a reduce as one bandwidth-bound pass over 2.7 MB, the update as measured.
 */
export const REFERENCE_COSTS: TableCosts = {
  layers: [784, 512, 512, 10],
  computeSecPerSample: (3.06e-3 - 0.3e-3) / 128,
  perMessageSec: 104e-6,
  perByteSec: 1.12e-9,
  headerBytes: 100,
  reduceSecPerNode: 0.15e-3,
  updateSec: 0.3e-3,
  source: 'stated defaults: compute 21.6 µs/sample (native-avx512, 1 thread, bench/RESULTS.md), frame 104 µs + 1.12 ns/byte per end (issue #13), reduce 0.15 ms/gradient, update 0.30 ms',
};

export interface Link {
  readonly name: string;
  readonly latencySec: number;
  readonly bandwidthBytesPerSec: number;
}

export const REFERENCE_LINKS: readonly Link[] = [
  { name: '10 Gbit/s, 0.05 ms', latencySec: 0.05e-3, bandwidthBytesPerSec: 10e9 / 8 },
  { name: '1 Gbit/s, 0.2 ms', latencySec: 0.2e-3, bandwidthBytesPerSec: 1e9 / 8 },
];

export type Scaling = { readonly kind: 'weak'; readonly perNode: number } | { readonly kind: 'strong'; readonly global: number };

export const REFERENCE_SCALINGS: readonly Scaling[] = [
  { kind: 'weak', perNode: 128 },
  { kind: 'strong', global: 512 },
];

export interface Layout {
  readonly name: string;
  /** null: the star (every node a child of the coordinator). */
  readonly fanout: number | null;
  readonly wire: WireFloat;
  readonly overlap: boolean;
  /** The coordinator's connections share one NIC (a cluster), or each has its own (the bench's proxies). */
  readonly coordinatorNicShared: boolean;
}

const STAR = Number.MAX_SAFE_INTEGER;

const layout = (name: string, fanout: number | null, wire: WireFloat, overlap: boolean, coordinatorNicShared = true): Layout => ({ name, fanout, wire, overlap, coordinatorNicShared });

/** A cluster: one NIC per machine, the coordinator's too; and today's star as the bench emulates it. */
export const REFERENCE_LAYOUTS: readonly Layout[] = [
  layout('star f32 (today), link per node', null, 'f32', false, false),
  layout('star f32 (today)', null, 'f32', false),
  layout('star bf16 overlap', null, 'bf16', true),
  layout('tree k=1 f32', 1, 'f32', false),
  layout('tree k=1 f32 overlap', 1, 'f32', true),
  layout('tree k=1 bf16', 1, 'bf16', false),
  layout('tree k=1 bf16 overlap', 1, 'bf16', true),
  layout('tree k=2 bf16 overlap', 2, 'bf16', true),
  layout('tree k=4 f32 overlap', 4, 'f32', true),
  layout('tree k=4 bf16 overlap', 4, 'bf16', true),
];

export const TABLE_NODE_COUNTS: readonly number[] = [1, 2, 4, 8, 16, 32, 64];

/** Forwarded weights move in pieces of this size (`--chunk` default of the tree). */
export const DEFAULT_CHUNK_BYTES = 256 * 1024;

export interface TableBlock {
  readonly link: Link;
  readonly scaling: Scaling;
  readonly rows: readonly { readonly layout: Layout; readonly predictions: readonly TreePrediction[] }[];
}

export const batchOf = (s: Scaling, nodes: number): number => (s.kind === 'weak' ? s.perNode * nodes : s.global);

export function treeInputs(c: TableCosts, link: Link, layout: Layout, batch: number): TreeInputs {
  return {
    computeSecPerSample: c.computeSecPerSample,
    threadsPerNode: 1,
    threadEfficiency: 1,
    batch,
    layers: c.layers,
    wire: layout.wire,
    headerBytes: c.headerBytes,
    latencySec: link.latencySec,
    bandwidthBytesPerSec: link.bandwidthBytesPerSec,
    perMessageSec: c.perMessageSec,
    perByteSec: c.perByteSec,
    reduceSecPerNode: c.reduceSecPerNode,
    updateSec: c.updateSec,
    coordinatorLinkShared: layout.coordinatorNicShared,
    fanout: layout.fanout ?? STAR,
    chunkBytes: DEFAULT_CHUNK_BYTES,
    overlap: layout.overlap,
  };
}

export function scaleoutTable(
  c: TableCosts,
  links: readonly Link[] = REFERENCE_LINKS,
  scalings: readonly Scaling[] = REFERENCE_SCALINGS,
  layouts: readonly Layout[] = REFERENCE_LAYOUTS,
  ns: readonly number[] = TABLE_NODE_COUNTS,
): TableBlock[] {
  return links.flatMap((link) =>
    scalings.map((scaling) => ({
      link,
      scaling,
      rows: layouts.map((layout) => ({ layout, predictions: ns.map((n) => predictTree(treeInputs(c, link, layout, batchOf(scaling, n)), n)) })),
    })),
  );
}

const scalingText = (s: Scaling): string => (s.kind === 'weak' ? `weak scaling, ${s.perNode} samples per node` : `strong scaling, global batch ${s.global}`);
const mb = (bytes: number): string => fmt(bytes / 1e6, 1);

export function formatScaleoutTable(blocks: readonly TableBlock[], c: TableCosts): string {
  const out: string[] = [];
  out.push(`PREDICTED by the scale-out model (scaleout-tree.ts), not measured: ${c.layers.join('-')}, 1 thread per node, one NIC per machine (the coordinator's too, unless 'link per node'); ${c.source}`);
  out.push('efficiency = speedup over one thread without network ÷ nodes; k = the coordinator\'s fan-out (binomial trees below it), overlap = layer-streamed, tree chunks 256 KiB');
  for (const b of blocks) {
    const ns = b.rows[0]?.predictions.map((p) => p.nodes) ?? [];
    const last = ns.length - 1;
    out.push('');
    out.push(`${b.link.name}, ${scalingText(b.scaling)}`);
    out.push(table(
      ['layout', ...ns.map((n) => `N=${n}`), `step ms N=${ns[last]}`, 'samples/s', 'coord. MB/step', 'busiest node NIC MB/step'],
      b.rows.map(({ layout, predictions: p }) => [
        layout.name,
        ...p.map((x) => `${fmt(100 * x.efficiency, x.efficiency < 0.1 ? 1 : 0)}%`),
        fmt(1000 * p[last].stepSec, 2),
        fmt(p[last].samplesPerSec),
        mb(p[last].bytes.coordinator),
        mb(p[last].bytes.busiestNode),
      ]),
    ));
  }
  return out.join('\n');
}
