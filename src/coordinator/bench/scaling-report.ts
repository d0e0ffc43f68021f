// The ScalingReport of `dptrain bench scaling` (results.json): the measured rows with the
// scale-out model's predictions beside them, and its curve for larger clusters.

import { cpus } from 'node:os';
import { CHUNK_FLOATS, wireBytes, type WireFloat } from '../../core/protocol/wire.js';
import { dilatedNet, dilationText } from './dilation.js';
import { fitBatchInputs, linkOf, measureFrameCosts, predictionCurve, scaleoutInputs, treeScaleoutInputs, type BatchInputs, type CurvePoint, type FrameCosts, type RowTimes } from './measured-model.js';
import type { LinkMode } from './net/fleet.js';
import type { NetProfile } from './net/netem.js';
import { predictStep } from './scaleout-model.js';
import { predictTree } from './scaleout-tree.js';
import { scalingRow, type Measured, type Prediction, type Scaling, type ScalingRow } from './rows.js';
import { configFor, type RunState } from './row-runs.js';

export const PREDICTED_NODE_COUNTS: readonly number[] = [1, 2, 4, 8, 16, 32, 64];

export interface ScalingReport {
  readonly version: 1;
  readonly date: string;
  readonly machine: { readonly cpus: number; readonly cpuModel: string; readonly node: string; readonly platform: string };
  readonly config: string;
  readonly layers: readonly number[];
  readonly params: number;
  readonly kernels: string;
  /** The float encoding on node links. */
  readonly wire: WireFloat;
  /** The link node rows stand for (with dilation, not the one emulated: see `dilation`). */
  readonly net: { readonly name: string; readonly latencyMs: number; readonly bandwidthMbit: number | null };
  readonly linkMode: LinkMode;
  /** One emulated link per listener (the coordinator's, a parent's) shared by its peers (`--shared-links`). */
  readonly sharedLinks: boolean;
  readonly scaling: readonly Scaling[];
  /** 'emulated': every node row's compute was emulated (benchmark only; local rows are real). */
  readonly nodeCompute: 'real' | 'emulated';
  /** Time dilation of the emulated node rows: 1 for none. */
  readonly dilation: number;
  /** With dilation: the link actually emulated, and what the rows stand for, in words. */
  readonly dilated: { readonly latencyMs: number; readonly bandwidthMbit: number; readonly text: string } | null;
  /** The one-line reason --net-namespaces fell back, if it did. */
  readonly notice: string | null;
  readonly steps: number;
  readonly warmup: number;
  readonly rows: readonly ScalingRow[];
  readonly scaleout: {
    readonly frame: FrameCosts;
    readonly latencySec: number;
    /** null on loopback: no link limit is modelled. */
    readonly bandwidthBytesPerSec: number | null;
    readonly batches: readonly BatchInputs[];
    readonly nodeCounts: readonly number[];
    /** PREDICTIONS for N nodes, not measurements. */
    readonly curve: readonly CurvePoint[];
  };
}

export function buildReport(state: RunState, measured: readonly Measured[], notice: string | null, transport: { perMessageSec: number; perByteSec: number }): ScalingReport {
  const { o } = state;
  const info = state.info!;
  const times: RowTimes[] = measured.map((m) => ({
    kind: m.combo.nodes === 0 ? 'local' : 'nodes', scaling: m.combo.scaling, sweepBatch: m.combo.sweepBatch, batch: m.combo.batch,
    threads: m.combo.threads, nodes: m.combo.nodes, stepMs: m.stepMs, updateMs: m.updateMs, poolMs: m.poolMs,
  }));
  // Timed after the rows, with no pool or node running beside it: the codec, plus the transport.
  const codec = measureFrameCosts(info.params, o.wire ?? 'f32');
  const frame: FrameCosts = { ...codec, perMessageSec: codec.perMessageSec + transport.perMessageSec, perByteSec: codec.perByteSec + transport.perByteSec };
  const scalings = o.scaling ?? ['strong'];
  const sweep = (scaling: Scaling, batch: number): string => `${scaling}:${batch}`;
  const inputs = new Map<string, BatchInputs>();
  for (const scaling of scalings) {
    for (const b of o.batches) {
      const fit = fitBatchInputs(times, scaling, b);
      if (fit) inputs.set(sweep(scaling, b), fit);
    }
  }
  const config = configFor(o, o.batches[0]);
  const model = { layers: config.model.layers, wire: o.wire ?? 'f32' };
  const rows: ScalingRow[] = measured.map((m) => {
    const c = m.combo;
    const base = measured.find((x) => x.combo.scaling === c.scaling && x.combo.sweepBatch === c.sweepBatch && x.combo.nodes === 0 && x.combo.threads === 1)!;
    const b = inputs.get(sweep(c.scaling, c.sweepBatch));
    return scalingRow(m, (1000 * base.combo.batch) / base.stepMs, state.linkMode, b ? predictRow(frame, b, m, o.net, model, o.sharedLinks ?? false) : null);
  });
  const curve = [...inputs.values()].flatMap((b) => o.threads.flatMap((t) => predictionCurve(frame, b, t, o.net, PREDICTED_NODE_COUNTS)));
  const link = linkOf(o.net);
  const cpu = cpus();
  const dilation = o.emulateCompute ? (o.dilate ?? 1) : 1;
  const pick = (n: NetProfile): { latencyMs: number; bandwidthMbit: number } => ({ latencyMs: n.latencyMs, bandwidthMbit: n.bandwidthMbit });
  return {
    version: 1,
    date: new Date().toISOString(),
    machine: { cpus: cpu.length, cpuModel: cpu[0]?.model ?? 'unknown', node: process.version, platform: `${process.platform} ${process.arch}` },
    config: o.config,
    layers: config.model.layers,
    params: info.params,
    kernels: info.backend,
    wire: o.wire ?? 'f32',
    net: { name: o.net?.name ?? 'loopback', latencyMs: o.net?.latencyMs ?? 0, bandwidthMbit: o.net?.bandwidthMbit ?? null },
    linkMode: state.linkMode,
    sharedLinks: o.sharedLinks ?? false,
    scaling: scalings,
    nodeCompute: o.emulateCompute ? 'emulated' : 'real',
    dilation,
    dilated: o.net && dilation !== 1 ? { ...pick(dilatedNet(o.net, dilation)), text: dilationText(o.net, dilation) } : null,
    notice,
    steps: o.steps,
    warmup: o.warmup,
    rows,
    scaleout: {
      frame,
      latencySec: link.latencySec,
      bandwidthBytesPerSec: Number.isFinite(link.bandwidthBytesPerSec) ? link.bandwidthBytesPerSec : null,
      batches: [...inputs.values()],
      nodeCounts: PREDICTED_NODE_COUNTS,
      curve,
    },
  };
}

/**
 * The model's step for a node row, in the row's time. An emulated row is predicted as it ran: its
 * nodes' wait as compute (perfect threads), its link and compute dilated; then divided by the dilation.
 */
export function predictRow(frame: FrameCosts, b: BatchInputs, m: Measured, net: NetProfile | null, model?: { layers: readonly number[]; wire: WireFloat }, sharedLinks = false): Prediction | null {
  const c = m.combo;
  if (c.nodes === 0) return null;
  const e = m.emulation;
  const d = e?.dilation ?? 1;
  const link = net && e ? dilatedNet(net, d) : net;
  const emulated = e ? { computeSecPerSample: (d * e.msPerSample) / 1000, threadEfficiency: 1 } : {};
  // As built: weights down in chunks (pipelined through a tree), forward layer by layer as they
  // land, sums up layer by layer as backward makes them final; the star is the tree of fan-out N.
  const p = model
    ? predictTree({ ...treeScaleoutInputs(frame, b, c.threads, link, model.layers, model.wire, { fanout: c.fanout ?? c.nodes, chunkBytes: CHUNK_FLOATS * wireBytes(model.wire), overlap: true }, sharedLinks, c.nodes), ...emulated }, c.nodes)
    : predictStep({ ...scaleoutInputs(frame, b, c.threads, link, sharedLinks, c.nodes), ...emulated }, c.nodes);
  return { stepMs: (1000 * p.stepSec) / d, computeMs: (1000 * p.computeSec) / d, commMs: (1000 * p.commSec) / d };
}
