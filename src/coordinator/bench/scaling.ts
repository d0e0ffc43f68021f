// `dptrain bench scaling`: every (scaling, batch, threads, nodes) row in turn, and whatever it starts
// stopped again, also on failure and on SIGINT/SIGTERM. rows.ts measures, row-runs.ts runs a row.

import type { KernelChoice } from '../../core/kernels/index.js';
import type { WireFloat } from '../../core/protocol/wire.js';
import { computeLabel } from './dilation.js';
import { measureTransportCosts, perSampleMs } from './measured-model.js';
import type { LinkMode } from './net/fleet.js';
import type { NetProfile } from './net/netem.js';
import { netnsUnavailable } from './net/netns.js';
import { localRow, nodeRow, tripwire, type RunState } from './row-runs.js';
import { combo, type Combo, type Emulation, type Measured, type Scaling } from './rows.js';
import { buildReport, type ScalingReport } from './scaling-report.js';

export type { ScalingRow } from './rows.js';
export { PREDICTED_NODE_COUNTS, type ScalingReport } from './scaling-report.js';

export interface ScalingBenchOptions {
  readonly config: string;
  readonly threads: readonly number[];
  readonly nodes: readonly number[];
  readonly batches: readonly number[];
  /** null: loopback, nodes connect straight to the coordinator. */
  readonly net: NetProfile | null;
  readonly steps: number;
  /** Steps left out of the medians; at least 1 (the first step waits for nodes and starts pools). */
  readonly warmup: number;
  readonly kernels: KernelChoice;
  readonly netNamespaces: boolean;
  /** The float encoding on node links (`--wire`); absent: f32. */
  readonly wire?: WireFloat;
  /** The sweeps to run (`--scaling`); absent: strong only. */
  readonly scaling?: readonly Scaling[];
  /**
   * Node rows with emulated compute (benchmark only): the nodes wait the 1-thread local row's
   * compute time per sample and answer made-up gradients.
   */
  readonly emulateCompute?: boolean;
  /** Time dilation of emulated node rows (dilation.ts); absent: 1. */
  readonly dilate?: number;
  /** Emulated links as one NIC per listener (the coordinator's, a parent's), not one per node (`--shared-links`). */
  readonly sharedLinks?: boolean;
  /** Node rows again for each fan-out below their node count, as a reduction tree (`--fanout`). */
  readonly fanouts?: readonly number[];
  /** Progress and notices (stderr in the CLI). */
  readonly log: (line: string) => void;
}

/** Thrown when SIGINT or SIGTERM stopped the run (after everything it started was stopped). */
export class BenchInterrupted extends Error {
  constructor(readonly signal: NodeJS.Signals) {
    super(`interrupted by ${signal}`);
    this.name = 'BenchInterrupted';
  }
}

/**
 * Every row to run, per sweep (scaling, batch): local rows, then node rows; the 1-thread local row
 * always (the sweep's baseline, and the compute emulated nodes wait).
 */
function combos(o: ScalingBenchOptions): Combo[] {
  const out: Combo[] = [];
  for (const scaling of o.scaling ?? ['strong']) {
    for (const batch of o.batches) {
      const local = o.nodes.includes(0) ? [...o.threads] : [];
      if (!local.includes(1)) out.push(combo(scaling, batch, 1, 0, true));
      for (const threads of local) out.push(combo(scaling, batch, threads, 0));
      for (const nodes of o.nodes.filter((n) => n > 0))
        for (const threads of o.threads) {
          out.push(combo(scaling, batch, threads, nodes));
          for (const fanout of o.fanouts ?? []) if (fanout < nodes) out.push({ ...combo(scaling, batch, threads, nodes), fanout });
        }
    }
  }
  return out;
}

function rowText(c: Combo, e: Emulation | null): string {
  const what = c.nodes === 0 ? `${c.threads} thread${c.threads > 1 ? 's' : ''}` : `${c.nodes} node${c.nodes > 1 ? 's' : ''} × ${c.threads} thread${c.threads > 1 ? 's' : ''}`;
  const batch = c.scaling === 'weak' ? `batch ${c.batch} (${c.sweepBatch} per worker)` : `batch ${c.batch}`;
  return `${c.scaling}, ${batch}, ${what}, ${computeLabel({ compute: e ? 'emulated' : 'real', dilation: e?.dilation ?? 1 })} compute`;
}

export async function runScalingBench(o: ScalingBenchOptions): Promise<ScalingReport> {
  let linkMode: LinkMode = o.net ? 'proxy' : 'loopback';
  let notice: string | null = null;
  if (o.netNamespaces && o.nodes.some((n) => n > 0)) {
    const why = netnsUnavailable();
    if (why) {
      notice = `dptrain bench: --net-namespaces needs root and iproute2 (ip, tc): ${why}; ${o.net ? 'using the user-space proxy instead' : 'connecting the nodes over plain loopback instead'}`;
      o.log(notice);
    } else {
      linkMode = 'namespace';
      const rate = o.net ? `tc tbf at ${o.net.bandwidthMbit} Mbit/s each way` : 'no rate limit';
      o.log(`dptrain bench: --net-namespaces: each node in its own network namespace on a veth pair (${rate}); latency ${o.net?.latencyMs ?? 0} ms from the user-space proxy (no netem here)`);
    }
  }

  const interrupt = tripwire();
  const state: RunState = { o, linkMode, stop: { requested: false }, interrupted: interrupt.promise, fleets: new Set(), info: null };
  const stopAllNow = (): void => {
    for (const f of state.fleets) f.stopNow();
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    if (state.stop.requested) {
      stopAllNow();
      process.exit(signal === 'SIGINT' ? 130 : 143);
    }
    state.stop.requested = true;
    o.log(`dptrain bench: ${signal}: stopping the node processes, proxies and namespaces (again to quit at once)`);
    interrupt.trip(new BenchInterrupted(signal));
  };
  // The last resort: whatever way this process ends, no node process or namespace outlives it.
  const onExit = (): void => stopAllNow();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', onExit);

  const measured: Measured[] = [];
  // Per sweep, the 1-thread local row's compute per sample: what emulated nodes wait.
  const emulations = new Map<string, Emulation>();
  const sweep = (c: Combo): string => `${c.scaling}:${c.sweepBatch}`;
  try {
    for (const c of combos(o)) {
      const e = c.nodes > 0 && o.emulateCompute ? emulations.get(sweep(c))! : null;
      const m = c.nodes === 0 ? await localRow(state, c) : await nodeRow(state, c, e);
      if (c.nodes === 0 && c.threads === 1 && o.emulateCompute) {
        const emulation = { msPerSample: perSampleMs({ poolMs: m.poolMs, batch: c.batch }), dilation: o.dilate ?? 1 };
        emulations.set(sweep(c), emulation);
        o.log(`bench: emulated compute for the ${c.scaling} sweep at batch ${c.sweepBatch}: ${emulation.msPerSample.toPrecision(4)} ms per sample, measured on this 1-thread row${emulation.dilation > 1 ? `; nodes wait ×${emulation.dilation} that` : ''}`);
      }
      const stepMs = m.stepMs / (e?.dilation ?? 1);
      o.log(`bench: ${rowText(c, e)}: ${Math.round((1000 * c.batch) / stepMs)} samples/s (step ${stepMs.toFixed(2)} ms${e && e.dilation > 1 ? `, ${m.stepMs.toFixed(2)} ms on the clock` : ''})`);
      measured.push(m);
    }
  } finally {
    await Promise.all([...state.fleets].map((f) => f.stop(0)));
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('exit', onExit);
  }
  // Timed after the rows, with no pool or node running beside it.
  const transport = await measureTransportCosts(state.info!.params);
  return buildReport(state, measured, notice, transport);
}

