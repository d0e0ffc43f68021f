// The ScalingReport of `dptrain bench scaling` (results.json): the measured rows with the
// scale-out model's predictions beside them, and its curve for larger clusters.

import { cpus } from 'node:os';
import { fitBatchInputs, linkOf, measureFrameCosts, predictionCurve, scaleoutInputs, type BatchInputs, type CurvePoint, type FrameCosts, type RowTimes } from './measured-model.js';
import type { LinkMode } from './net/fleet.js';
import { predictStep } from './scaleout-model.js';
import { scalingRow, type Measured, type ScalingRow } from './rows.js';
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
  readonly net: { readonly name: string; readonly latencyMs: number; readonly bandwidthMbit: number | null };
  readonly linkMode: LinkMode;
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
    kind: m.combo.nodes === 0 ? 'local' : 'nodes', batch: m.combo.batch, threads: m.combo.threads, nodes: m.combo.nodes,
    stepMs: m.stepMs, updateMs: m.updateMs, poolMs: m.poolMs,
  }));
  // Timed after the rows, with no pool or node running beside it: the codec, plus the transport.
  const codec = measureFrameCosts(info.params);
  const frame: FrameCosts = { ...codec, perMessageSec: codec.perMessageSec + transport.perMessageSec, perByteSec: codec.perByteSec + transport.perByteSec };
  const inputs = new Map<number, BatchInputs>();
  for (const b of o.batches) {
    const fit = fitBatchInputs(times, b);
    if (fit) inputs.set(b, fit);
  }
  const rows: ScalingRow[] = measured.map((m) => {
    const c = m.combo;
    const base = measured.find((x) => x.combo.batch === c.batch && x.combo.nodes === 0 && x.combo.threads === 1)!;
    const b = inputs.get(c.batch);
    const p = c.nodes > 0 && b ? predictStep(scaleoutInputs(frame, b, c.threads, o.net), c.nodes) : null;
    return scalingRow(m, base.stepMs, state.linkMode, p ? { stepMs: 1000 * p.stepSec, computeMs: 1000 * p.computeSec, commMs: 1000 * p.commSec } : null);
  });
  const curve = [...inputs.values()].flatMap((b) => o.threads.flatMap((t) => predictionCurve(frame, b, t, o.net, PREDICTED_NODE_COUNTS)));
  const link = linkOf(o.net);
  const cpu = cpus();
  const config = configFor(o, o.batches[0]);
  return {
    version: 1,
    date: new Date().toISOString(),
    machine: { cpus: cpu.length, cpuModel: cpu[0]?.model ?? 'unknown', node: process.version, platform: `${process.platform} ${process.arch}` },
    config: o.config,
    layers: config.model.layers,
    params: info.params,
    kernels: info.backend,
    net: { name: o.net?.name ?? 'loopback', latencyMs: o.net?.latencyMs ?? 0, bandwidthMbit: o.net?.bandwidthMbit ?? null },
    linkMode: state.linkMode,
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
