// What `dptrain bench scaling` shows and keeps: stdout tables, results.json, results.md and the two charts.
// Formatting only; every number comes from the ScalingReport.

import { cpus } from 'node:os';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../core/io/atomic-file.js';
import { computeLabel } from './dilation.js';
import { fmt, markdownTable, table } from './stats.js';
import { speedupSvg, stepSplitSvg, writeSvgAtomic, type SpeedupRow, type StepSplitRow } from '../output/charts.js';
import type { ScalingReport, ScalingRow } from './scaling.js';

// The issue's bar for the model on the emulated networks.
const MODEL_TOLERANCE_PCT = 15;

const pct = (x: number, digits = 1): string => (Number.isFinite(x) ? `${fmt(100 * x, digits)}%` : '-');
const kb = (x: number | null): string => (x === null ? '' : fmt(x / 1024, 1));

function netText(r: ScalingReport): string {
  if (r.net.bandwidthMbit === null) return 'loopback (no emulation)';
  const how = r.linkMode === 'namespace' ? 'network namespaces + tc tbf, latency in the proxy' : r.sharedLinks ? 'one user-space proxy per listener, its link shared by all its peers like one NIC' : 'user-space proxy per node';
  return `${r.net.name} (${r.net.latencyMs} ms one way, ${r.net.bandwidthMbit} Mbit/s each way; ${how})`;
}

/** "b128 2n×1t", with " weak" and " emulated" where they apply. */
function rowLabel(r: ScalingRow): string {
  const what = r.nodes === 0 ? `b${r.batch} ${r.threads}t` : `b${r.batch} ${r.nodes}n×${r.threads}t${r.fanout ? ` tree k=${r.fanout}` : ''}`;
  return `${what}${r.scaling === 'weak' ? ' weak' : ''}${r.compute === 'emulated' ? ' emulated' : ''}`;
}

/** The lines that say what was emulated and what a row stands for; none for a plain run. */
function conditions(r: ScalingReport): string[] {
  const out: string[] = [];
  if (r.scaling.includes('weak')) out.push('weak scaling: --batch is each worker\'s batch, the global batch is that × the workers; efficiency = samples/s ÷ (workers × one worker\'s samples/s at its batch)');
  if (r.nodeCompute === 'emulated') {
    out.push('EMULATED COMPUTE on node rows (benchmark only): each node waits the 1-thread local row\'s compute time per sample and answers a made-up gradient of the real size; processes, sockets, frames, validation, sums and the optimizer are real');
  }
  if (r.dilated) out.push(`${r.dilated.text} (the CPU time of frames, sums and the update is not dilated: it counts ÷ ${r.dilation})`);
  return out;
}

/** The measured rows: header and cells, for the console and Markdown alike. */
function rowsTable(r: ScalingReport): { header: string[]; cells: string[][] } {
  return {
    header: ['scaling', 'compute', 'batch', 'threads', 'nodes', 'workers', 'samples/s', 'speedup', 'efficiency', 'step ms', 'compute ms', 'comm ms', 'hidden ms', 'update ms', 'KB out', 'KB in', 'max link KB', 'predicted ms', 'error'],
    cells: r.rows.map((x) => [
      x.scaling, computeLabel(x),
      x.scaling === 'weak' ? `${x.batch} (${x.sweepBatch}/worker)` : String(x.batch), String(x.threads), x.nodes === 0 ? '-' : `${x.nodes}${x.fanout ? ` tree k=${x.fanout}` : ''}`, String(x.workers),
      fmt(x.samplesPerSec), fmt(x.speedup, 2), pct(x.efficiency),
      fmt(x.stepMs, 2), fmt(x.computeMs, 2), fmt(x.commMs, 2), x.nodes === 0 ? '' : fmt(x.hiddenMs, 2), fmt(x.updateMs, 2), kb(x.bytesSentPerNodeStep), kb(x.bytesReceivedPerNodeStep), kb(x.maxLinkBytesPerStep),
      x.predictedStepMs === null ? '' : fmt(x.predictedStepMs, 2), x.predictionErrorPct === null ? '' : `${x.predictionErrorPct >= 0 ? '+' : ''}${fmt(x.predictionErrorPct, 1)}%`,
    ]),
  };
}

function titleLine(r: ScalingReport): string {
  return `dptrain bench scaling: ${r.config} (${r.layers.join('-')}, ${fmt(r.params)} parameters), kernels ${r.kernels}, wire ${r.wire ?? 'f32'}, net ${netText(r)}`;
}

/** results.md: the measured rows as a Markdown table, with what was emulated and what a row stands for. */
export function formatMarkdown(r: ScalingReport): string {
  const { header, cells } = rowsTable(r);
  return [`${titleLine(r)}, ${r.date}`, '', ...conditions(r).map((l) => `- ${l}`), '', markdownTable(header, cells), ''].join('\n');
}

export function formatReport(r: ScalingReport): string {
  const out: string[] = [];
  out.push(titleLine(r));
  out.push(...conditions(r));
  out.push(`medians of ${r.steps} steps after ${r.warmup} warm-up; comm = step − slowest compute − update (dispatch + waiting on thread rows), the transfers not hidden; hidden = transfers during a node's compute (weights landing after its forward began, sums leaving before its backward ended); KB out/in per node per step on the coordinator's links; max link KB = the most one emulated link carried one way in a step (between nodes too); predicted = scale-out model`);
  const { header, cells } = rowsTable(r);
  out.push(table(header, cells));
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
    out.push(`  ${b.scaling ?? 'strong'} batch ${b.batch}${b.scaling === 'weak' ? ' per worker' : ''}: compute ${fmt(1e6 * b.computeSecPerSample, 1)} µs/sample on 1 thread, thread efficiency {${eff}}, reduce ${fmt(1000 * b.reduceSecPerNode, 3)} ms/node, update ${fmt(1000 * b.updateSec, 3)} ms`);
  }
  out.push('');
  out.push(`PREDICTED by the scale-out model, not measured: ${r.net.name}, N nodes, real compute; star = coordinator as built (own link per node), shared = every node through one coordinator link; ring/tree = link time of that all-reduce instead`);
  out.push(table(
    ['scaling', 'batch', 'threads/node', 'nodes', 'workers', 'step ms', 'samples/s', 'speedup', 'eff star', 'eff shared', 'ring ms', 'eff ring', 'tree ms', 'eff tree'],
    s.curve.map((p) => [
      p.scaling, p.scaling === 'weak' ? `${p.batch}/worker` : String(p.batch), String(p.threadsPerNode), String(p.nodes), String(p.workers), fmt(p.stepMs, 2), fmt(p.samplesPerSec), fmt(p.speedup, 2),
      pct(p.efficiency), pct(p.sharedLinkEfficiency), fmt(p.ringAllreduceMs, 2), pct(p.ringEfficiency), fmt(p.treeAllreduceMs, 2), pct(p.treeEfficiency),
    ]),
  ));
  return out.join('\n');
}

/** Measured speedup per batch (threads, and nodes × t), with the model's curve for the node series. */
export function speedupRows(r: ScalingReport): SpeedupRow[] {
  // A sweep's series: "batch 128 threads", "weak 128/worker nodes×1t", with " (emulated)" for emulated node rows.
  const seriesOf = (scaling: string, batch: number, nodes: number, threads: number, emulated: boolean): string => {
    const sweep = scaling === 'weak' ? `weak ${batch}/worker` : `batch ${batch}`;
    return nodes === 0 ? `${sweep} threads` : `${sweep} nodes×${threads}t${emulated ? ' (emulated)' : ''}`;
  };
  const rows: SpeedupRow[] = r.rows.map((x) => ({ workers: x.workers, measured: x.speedup, predicted: null, series: seriesOf(x.scaling, x.sweepBatch, x.nodes, x.threads, x.compute === 'emulated') }));
  for (const p of r.scaleout.curve) rows.push({ workers: p.workers, measured: null, predicted: p.speedup, series: seriesOf(p.scaling, p.batch, p.nodes, p.threadsPerNode, r.nodeCompute === 'emulated') });
  return rows;
}

export function stepSplitRows(r: ScalingReport): StepSplitRow[] {
  // Transfers during a node's compute are cut out of its compute bar: the bar still adds up to the step.
  return r.rows.flatMap((x) => [
    { label: rowLabel(x), part: 'compute', ms: x.computeMs - Math.min(x.hiddenMs, x.computeMs) },
    { label: rowLabel(x), part: 'hidden transfers', ms: Math.min(x.hiddenMs, x.computeMs) },
    { label: rowLabel(x), part: 'dispatch + wait', ms: x.nodes === 0 ? Math.max(0, x.commMs) : 0 },
    { label: rowLabel(x), part: 'communication', ms: x.nodes === 0 ? 0 : Math.max(0, x.commMs) },
    { label: rowLabel(x), part: 'reduce + update', ms: x.updateMs },
  ]);
}

/** results.json, speedup.svg, step-split.svg and results.md in `dir` (created), each written atomically. */
export async function writeReport(r: ScalingReport, dir: string): Promise<string[]> {
  mkdirSync(dir, { recursive: true });
  const files = [join(dir, 'results.json'), join(dir, 'speedup.svg'), join(dir, 'step-split.svg'), join(dir, 'results.md')];
  writeFileAtomic(files[0], [Buffer.from(`${JSON.stringify(r, null, 2)}\n`, 'utf8')]);
  writeFileAtomic(files[3], [Buffer.from(formatMarkdown(r), 'utf8')]);
  writeSvgAtomic(files[1], await speedupSvg(speedupRows(r)));
  writeSvgAtomic(files[2], await stepSplitSvg(stepSplitRows(r)));
  return files;
}
