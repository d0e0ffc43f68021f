// `dptrain bench scaling`: flags → validated options → the benchmark → table on stdout and
// results.json + charts in --out (or, with --model-only, the scale-out model's table alone).
// Exit 0, 2 for bad flags, 130/143 when interrupted.

import { resolve } from 'node:path';
import { configError } from '../../core/errors.js';
import type { KernelChoice } from '../../core/kernels/index.js';
import { BenchInterrupted, runScalingBench, type ScalingBenchOptions } from '../bench/scaling.js';
import { formatReport, writeReport } from '../bench/report.js';
import { loadConfig } from '../../core/config.js';
import { parseNet, type NetProfile } from '../bench/net/netem.js';
import { formatScaleoutTable, REFERENCE_COSTS, scaleoutTable } from '../bench/scaleout-table.js';

export interface BenchScalingFlags {
  config: string;
  threads: string;
  nodes: string;
  batch: string;
  net: string;
  steps: number;
  warmup: number;
  out?: string;
  kernels: KernelChoice;
  netNamespaces: boolean;
  wire?: 'f32' | 'bf16';
  scaling?: 'strong' | 'weak' | 'both';
  emulateCompute?: boolean;
  dilate?: number;
  modelOnly?: boolean;
  fanout?: string;
  sharedLinks?: boolean;
}

/** "1,2,4" → [1, 2, 4]: whole numbers in [min, max], duplicates dropped, order kept. */
function parseList(flag: string, text: string, min: number, max: number): number[] {
  const parts = String(text).split(',').map((s) => s.trim());
  const xs = parts.map(Number);
  if (parts.some((p) => p === '') || !xs.every((x) => Number.isInteger(x) && x >= min && x <= max))
    throw configError(flag, `expected a comma-separated list of whole numbers from ${min} to ${max}, got "${text}"`);
  return [...new Set(xs)];
}

function wholeAtLeast(flag: string, v: number, min: number, why = ''): number {
  if (!(Number.isInteger(v) && v >= min)) throw configError(flag, `expected a whole number ≥ ${min}${why}, got ${v}`);
  return v;
}

/** `--dilate`: 1 (none) unless emulated compute runs behind an emulated link. */
function dilation(f: BenchScalingFlags, net: NetProfile | null): number {
  if (f.dilate === undefined) return 1;
  if (!(Number.isFinite(f.dilate) && f.dilate >= 1)) throw configError('--dilate', `expected a factor ≥ 1, got ${f.dilate}`);
  if (!f.emulateCompute) throw configError('--dilate', 'needs --emulate-compute (real compute cannot be slowed down)');
  if (!net) throw configError('--dilate', 'needs an emulated link (--net lan, wan or LATENCYms:BANDWIDTHmbit): on loopback there is no link to dilate');
  return f.dilate;
}

/** `--shared-links`: only where links are emulated by the proxies. */
function sharedLinks(f: BenchScalingFlags, net: NetProfile | null): boolean {
  if (!f.sharedLinks) return false;
  if (!net) throw configError('--shared-links', 'needs an emulated link (--net lan, wan or LATENCYms:BANDWIDTHmbit)');
  if (f.netNamespaces) throw configError('--shared-links', 'the links are shared in the proxies, not in --net-namespaces');
  return true;
}

export function benchOptionsFromFlags(f: BenchScalingFlags, log: (line: string) => void): { options: ScalingBenchOptions; out: string } {
  const net = parseNet(f.net);
  const dilate = dilation(f, net);
  // Fails fast, before anything starts, on a config that cannot be read.
  loadConfig(f.config);
  const options: ScalingBenchOptions = {
    config: resolve(f.config),
    threads: parseList('--threads', f.threads, 1, 1024),
    nodes: parseList('--nodes', f.nodes, 0, 64),
    batches: parseList('--batch', f.batch, 1, 1 << 20),
    net,
    steps: wholeAtLeast('--steps', f.steps, 1),
    warmup: wholeAtLeast('--warmup', f.warmup, 1, ' (the first step waits for nodes and starts the pools)'),
    kernels: f.kernels,
    netNamespaces: f.netNamespaces,
    wire: f.wire ?? 'f32',
    scaling: f.scaling === 'both' ? ['strong', 'weak'] : [f.scaling ?? 'strong'],
    emulateCompute: f.emulateCompute ?? false,
    dilate,
    fanouts: f.fanout === undefined ? [] : parseList('--fanout', f.fanout, 1, 64),
    sharedLinks: sharedLinks(f, net),
    log,
  };
  const variant = `${f.wire === 'bf16' ? '-bf16' : ''}${f.scaling === 'weak' || f.scaling === 'both' ? `-${f.scaling}` : ''}${f.emulateCompute ? '-emulated' : ''}${dilate !== 1 ? `-x${dilate}` : ''}${f.fanout !== undefined ? '-tree' : ''}${f.sharedLinks ? '-shared' : ''}`;
  const name = `${(net?.name ?? 'loopback').replace(/[^a-z0-9.]+/gi, '-')}${variant}`;
  return { options, out: resolve(f.out ?? `bench/results/scaling-${name}`) };
}

export async function runBenchScaling(f: BenchScalingFlags): Promise<number> {
  if (f.modelOnly) {
    process.stdout.write(`${formatScaleoutTable(scaleoutTable(REFERENCE_COSTS), REFERENCE_COSTS)}\n`);
    return 0;
  }
  const { options, out } = benchOptionsFromFlags(f, (l) => process.stderr.write(`${l}\n`));
  try {
    const report = await runScalingBench(options);
    process.stdout.write(`${formatReport(report)}\n`);
    const files = await writeReport(report, out);
    process.stdout.write(`\nwritten: ${files.join(', ')}\n`);
    return 0;
  } catch (e) {
    if (e instanceof BenchInterrupted) {
      process.stderr.write(`dptrain bench: ${e.message}; every node process, proxy and namespace it started is stopped\n`);
      return e.signal === 'SIGINT' ? 130 : 143;
    }
    throw e;
  }
}
