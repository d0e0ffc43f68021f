// What `dptrain bench scaling` shows and keeps: stdout tables, results.json and the two charts.
// Formatting only; every number comes from the ScalingReport.

import { cpus } from 'node:os';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../core/io/atomic-file.js';
import { fmt, table } from './stats.js';
import { speedupSvg, stepSplitSvg, writeSvgAtomic, type SpeedupRow, type StepSplitRow } from '../output/charts.js';
import type { ScalingReport, ScalingRow } from './scaling.js';

// The bar for the model on the emulated networks.
const MODEL_TOLERANCE_PCT = 15;

const pct = (x: number, digits = 1): string => (Number.isFinite(x) ? `${fmt(100 * x, digits)}%` : '-');
const kb = (x: number | null): string => (x === null ? '' : fmt(x / 1024, 1));

function netText(r: ScalingReport): string {
  if (r.net.bandwidthMbit === null) return 'loopback (no emulation)';
  const how = r.linkMode === 'namespace' ? 'network namespaces + tc tbf, latency in the proxy' : 'user-space proxy per node';
  return `${r.net.name} (${r.net.latencyMs} ms one way, ${r.net.bandwidthMbit} Mbit/s each way; ${how})`;
}

function rowLabel(r: ScalingRow): string {
  return r.nodes === 0 ? `b${r.batch} ${r.threads}t` : `b${r.batch} ${r.nodes}n×${r.threads}t`;
}

export function formatReport(r: ScalingReport): string {
  const out: string[] = [];
  out.push(`dptrain bench scaling: ${r.config} (${r.layers.join('-')}, ${fmt(r.params)} parameters), kernels ${r.kernels}, net ${netText(r)}`);
  out.push(`medians of ${r.steps} steps after ${r.warmup} warm-up; comm = step − slowest compute − update (dispatch + waiting on thread rows); KB per node per step; predicted = scale-out model`);
  out.push(table(
    ['batch', 'threads', 'nodes', 'workers', 'samples/s', 'speedup', 'efficiency', 'step ms', 'compute ms', 'comm ms', 'update ms', 'KB out', 'KB in', 'predicted ms', 'error'],
    r.rows.map((x) => [
      String(x.batch), String(x.threads), x.nodes === 0 ? '-' : String(x.nodes), String(x.workers), fmt(x.samplesPerSec), fmt(x.speedup, 2), pct(x.efficiency),
      fmt(x.stepMs, 2), fmt(x.computeMs, 2), fmt(x.commMs, 2), fmt(x.updateMs, 2), kb(x.bytesSentPerNodeStep), kb(x.bytesReceivedPerNodeStep),
      x.predictedStepMs === null ? '' : fmt(x.predictedStepMs, 2), x.predictionErrorPct === null ? '' : `${x.predictionErrorPct >= 0 ? '+' : ''}${fmt(x.predictionErrorPct, 1)}%`,
    ]),
  ));
  const misses = r.rows.filter((x) => x.predictionErrorPct !== null && Math.abs(x.predictionErrorPct) > MODEL_TOLERANCE_PCT);
  if (misses.length > 0) {
    out.push(`the model misses by more than ${MODEL_TOLERANCE_PCT}% on ${misses.length} row${misses.length > 1 ? 's' : ''}; where (measured vs predicted):`);
    for (const x of misses) {
      out.push(`  ${rowLabel(x)}: compute ${fmt(x.computeMs, 2)} vs ${fmt(x.predictedComputeMs ?? NaN, 2)} ms, communication ${fmt(x.commMs, 2)} vs ${fmt(x.predictedCommMs ?? NaN, 2)} ms`);
    }
    out.push(`  (the model gives every node cores of its own; here the coordinator and all nodes share this machine's ${cpus().length} cores, so rows with more worker threads than cores compute slower than it predicts. Frame costs are encode + decode plus a WebSocket loopback echo; the proxy's own CPU is not in them)`);
  }
  const s = r.scaleout;
  const bw = s.bandwidthBytesPerSec === null ? 'no limit' : `${fmt(s.bandwidthBytesPerSec / 1e6, 1)} MB/s`;
  out.push('');
  out.push(`scale-out model inputs (measured in this run): frame ${fmt(s.frame.frameBytes)} B, per message ${fmt(1e6 * s.frame.perMessageSec, 1)} µs, per byte ${fmt(1e9 * s.frame.perByteSec, 2)} ns, latency ${fmt(1000 * s.latencySec, 1)} ms, bandwidth ${bw}`);
  for (const b of s.batches) {
    const eff = Object.entries(b.threadEfficiency).map(([t, e]) => `${t}: ${fmt(e, 2)}`).join(', ');
    out.push(`  batch ${b.batch}: compute ${fmt(1e6 * b.computeSecPerSample, 1)} µs/sample on 1 thread, thread efficiency {${eff}}, reduce ${fmt(1000 * b.reduceSecPerNode, 3)} ms/node, update ${fmt(1000 * b.updateSec, 3)} ms`);
  }
  out.push('');
  out.push(`PREDICTED by the scale-out model, not measured: ${r.net.name}, N nodes; star = coordinator as built (own link per node), shared = every node through one coordinator link; ring/tree = link time of that all-reduce instead`);
  out.push(table(
    ['batch', 'threads/node', 'nodes', 'workers', 'step ms', 'samples/s', 'speedup', 'eff star', 'eff shared', 'ring ms', 'eff ring', 'tree ms', 'eff tree'],
    s.curve.map((p) => [
      String(p.batch), String(p.threadsPerNode), String(p.nodes), String(p.workers), fmt(p.stepMs, 2), fmt(p.samplesPerSec), fmt(p.speedup, 2),
      pct(p.efficiency), pct(p.sharedLinkEfficiency), fmt(p.ringAllreduceMs, 2), pct(p.ringEfficiency), fmt(p.treeAllreduceMs, 2), pct(p.treeEfficiency),
    ]),
  ));
  return out.join('\n');
}

/** Measured speedup per batch (threads, and nodes × t), with the model's curve for the node series. */
export function speedupRows(r: ScalingReport): SpeedupRow[] {
  const seriesOf = (batch: number, nodes: number, threads: number): string => (nodes === 0 ? `batch ${batch} threads` : `batch ${batch} nodes×${threads}t`);
  const rows: SpeedupRow[] = r.rows.map((x) => ({ workers: x.workers, measured: x.speedup, predicted: null, series: seriesOf(x.batch, x.nodes, x.threads) }));
  for (const p of r.scaleout.curve) rows.push({ workers: p.workers, measured: null, predicted: p.speedup, series: seriesOf(p.batch, p.nodes, p.threadsPerNode) });
  return rows;
}

export function stepSplitRows(r: ScalingReport): StepSplitRow[] {
  return r.rows.flatMap((x) => [
    { label: rowLabel(x), part: 'compute', ms: x.computeMs },
    { label: rowLabel(x), part: 'dispatch + wait', ms: x.nodes === 0 ? Math.max(0, x.commMs) : 0 },
    { label: rowLabel(x), part: 'communication', ms: x.nodes === 0 ? 0 : Math.max(0, x.commMs) },
    { label: rowLabel(x), part: 'reduce + update', ms: x.updateMs },
  ]);
}

/** results.json, speedup.svg and step-split.svg in `dir` (created), each written atomically. */
export async function writeReport(r: ScalingReport, dir: string): Promise<string[]> {
  mkdirSync(dir, { recursive: true });
  const files = [join(dir, 'results.json'), join(dir, 'speedup.svg'), join(dir, 'step-split.svg')];
  writeFileAtomic(files[0], [Buffer.from(`${JSON.stringify(r, null, 2)}\n`, 'utf8')]);
  writeSvgAtomic(files[1], await speedupSvg(speedupRows(r)));
  writeSvgAtomic(files[2], await stepSplitSvg(stepSplitRows(r)));
  return files;
}
