// `dptrain bench scaling`: real training steps for every (batch, threads, nodes) combination, on a
// local thread pool or on real `dptrain worker` processes behind emulated links; medians of the
// step's parts and bytes per node, and the scale-out model fed with them. Whatever it starts it
// stops, also on failure and on Ctrl-C (SIGINT and SIGTERM are handled for the run's duration).

import { cpus } from 'node:os';
import { configError, DptrainError } from '../../core/errors.js';
import type { KernelChoice } from '../../core/kernels/index.js';
import { median } from './stats.js';
import { fitBatchInputs, linkOf, measureFrameCosts, measureTransportCosts, predictionCurve, scaleoutInputs, type BatchInputs, type CurvePoint, type FrameCosts, type RowTimes } from './measured-model.js';
import { Fleet, type LinkMode } from './net/fleet.js';
import { netnsUnavailable } from './net/netns.js';
import { loadConfig, type Config } from '../../core/config.js';
import type { NetProfile } from './net/netem.js';
import { startRemoteServer, type RemoteServer } from '../remote/server.js';
import { predictStep } from './scaleout-model.js';
import { train, type NodeStatus, type Reporter, type StepRecord } from '../train/trainer.js';

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
  /** Progress and notices (stderr in the CLI). */
  readonly log: (line: string) => void;
}

export interface ScalingRow {
  readonly kind: 'local' | 'nodes';
  readonly batch: number;
  /** Threads of the local pool, or of each node. */
  readonly threads: number;
  readonly nodes: number;
  /** Compute threads in all: threads, or nodes × threads. */
  readonly workers: number;
  readonly link: 'threads' | LinkMode;
  /** True for the 1-thread local row run only because speedups and the model need it. */
  readonly baselineOnly: boolean;
  readonly measuredSteps: number;
  readonly stepMs: number;
  /** The slowest shard's forward + backward (a node's: its whole reported compute). */
  readonly computeMs: number;
  /** step − slowest compute − update: communication on node rows, dispatch + waiting on local rows. */
  readonly commMs: number;
  /** Reduce of the gradient slots + optimizer update. */
  readonly updateMs: number;
  readonly samplesPerSec: number;
  /** Over the 1-thread local row of the same batch. */
  readonly speedup: number;
  /** speedup / workers. */
  readonly efficiency: number;
  /** Per node per step: coordinator → node and node → coordinator (WebSocket payload bytes). */
  readonly bytesSentPerNodeStep: number | null;
  readonly bytesReceivedPerNodeStep: number | null;
  readonly predictedStepMs: number | null;
  /** The prediction's parts, to compare with computeMs and commMs where it misses. */
  readonly predictedComputeMs: number | null;
  readonly predictedCommMs: number | null;
  /** (predicted − measured) / measured, percent. */
  readonly predictionErrorPct: number | null;
  readonly nodePids: readonly number[];
}

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

/** Thrown when SIGINT or SIGTERM stopped the run (after everything it started was stopped). */
export class BenchInterrupted extends Error {
  constructor(readonly signal: NodeJS.Signals) {
    super(`interrupted by ${signal}`);
    this.name = 'BenchInterrupted';
  }
}

export const PREDICTED_NODE_COUNTS: readonly number[] = [1, 2, 4, 8, 16, 32, 64];
const JOIN_TIMEOUT_MS = 60_000;
const STEP_DEADLINE_MS = 120_000;
const HEARTBEAT_MS = 2_000;
const EXIT_GRACE_MS = 3_000;
// A node killed mid-row is seen twice: its socket closes (the step fails) and its process exits.
// The socket often comes first; the exit names the cause, so the step's failure waits this long for it.
const EXIT_NOTICE_MS = 1_000;

interface Combo {
  readonly batch: number;
  readonly threads: number;
  readonly nodes: number;
  readonly baselineOnly: boolean;
}

interface Measured {
  readonly combo: Combo;
  readonly steps: number;
  readonly stepMs: number;
  readonly computeMs: number;
  readonly commMs: number;
  readonly updateMs: number;
  readonly poolMs: number;
  readonly bytesSent: number | null;
  readonly bytesReceived: number | null;
  readonly pids: readonly number[];
}

/** A promise that only ever rejects, when tripped; safe to leave unawaited. */
function tripwire(): { readonly promise: Promise<never>; trip(e: Error): void } {
  let trip: (e: Error) => void = () => {};
  const promise = new Promise<never>((_, reject) => (trip = reject));
  promise.catch(() => {});
  return { promise, trip };
}

/** Every row to run, per batch: local rows, then node rows; the 1-thread local row always. */
function combos(o: ScalingBenchOptions): Combo[] {
  const out: Combo[] = [];
  for (const batch of o.batches) {
    const local = o.nodes.includes(0) ? [...o.threads] : [];
    const baselineOnly = !local.includes(1);
    if (baselineOnly) out.push({ batch, threads: 1, nodes: 0, baselineOnly });
    for (const threads of local) out.push({ batch, threads, nodes: 0, baselineOnly: false });
    for (const nodes of o.nodes.filter((n) => n > 0)) for (const threads of o.threads) out.push({ batch, threads, nodes, baselineOnly: false });
  }
  return out;
}

interface RunState {
  readonly o: ScalingBenchOptions;
  readonly linkMode: LinkMode;
  readonly stop: { requested: boolean };
  readonly interrupted: Promise<never>;
  readonly fleets: Set<Fleet>;
  info: { backend: string; params: number; train: number } | null;
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
  try {
    for (const c of combos(o)) {
      const what = c.nodes === 0 ? `${c.threads} thread${c.threads > 1 ? 's' : ''}` : `${c.nodes} node${c.nodes > 1 ? 's' : ''} × ${c.threads} thread${c.threads > 1 ? 's' : ''}`;
      const m = c.nodes === 0 ? await localRow(state, c) : await nodeRow(state, c);
      o.log(`bench: batch ${c.batch}, ${what}: ${Math.round((1000 * c.batch) / m.stepMs)} samples/s (step ${m.stepMs.toFixed(2)} ms)`);
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
  return report(state, measured, notice, transport);
}

function configFor(o: ScalingBenchOptions, batch: number): Config {
  // Epochs out of the way: maxSteps ends every row.
  return loadConfig(o.config, [
    { path: 'training.batchSize', value: batch, flag: '--batch' },
    { path: 'training.epochs', value: 1_000_000, flag: '--steps' },
  ]);
}

function reporterFor(state: RunState, batch: number, steps: StepRecord[], onStep?: (r: StepRecord) => void): Reporter {
  return {
    start(info) {
      if (info.train < batch) throw configError('--batch', `${batch} is more than the ${info.train} training samples of ${state.o.config}`);
      state.info ??= { backend: info.backend, params: info.params, train: info.train };
    },
    step(r) {
      steps.push(r);
      onStep?.(r);
    },
    epoch() {},
    log() {},
  };
}

async function localRow(state: RunState, c: Combo): Promise<Measured> {
  const { o } = state;
  const steps: StepRecord[] = [];
  const training = train({
    config: configFor(o, c.batch), workers: c.threads, kernels: o.kernels, maxSteps: o.warmup + o.steps, skipEval: true,
    balance: 'static', stop: state.stop, reporter: reporterFor(state, c.batch, steps),
  });
  training.catch(() => {});
  await Promise.race([training, state.interrupted]);
  return summarize(o, c, steps, null, []);
}

async function nodeRow(state: RunState, c: Combo): Promise<Measured> {
  const { o } = state;
  const failure = tripwire();
  const fleet = new Fleet(state.linkMode, o.net, (e) => failure.trip(e));
  state.fleets.add(fleet);
  const remote: { server: RemoteServer | null; closing: Promise<void> | null } = { server: null, closing: null };
  const closeServer = (): Promise<void> => (remote.closing ??= remote.server?.close() ?? Promise.resolve());
  // Bytes per node of each step: deltas of the server's per-node totals between step ends.
  const bytes: { sent: number; received: number }[] = [];
  const seen = new Map<string, { sent: number; received: number }>();
  const countBytes = (nodes: readonly NodeStatus[]): void => {
    let sent = 0;
    let received = 0;
    for (const n of nodes) {
      const before = seen.get(n.id) ?? { sent: 0, received: 0 };
      sent += n.bytesSent - before.sent;
      received += n.bytesReceived - before.received;
      seen.set(n.id, { sent: n.bytesSent, received: n.bytesReceived });
    }
    bytes.push({ sent: sent / Math.max(1, nodes.length), received: received / Math.max(1, nodes.length) });
  };
  const steps: StepRecord[] = [];
  const joinTimer = setTimeout(() => failure.trip(new DptrainError('NO_EXECUTORS', `${c.nodes} worker node(s) did not join within ${JOIN_TIMEOUT_MS / 1000} s`)), JOIN_TIMEOUT_MS);
  try {
    const training = train({
      config: configFor(o, c.batch), workers: 0, kernels: o.kernels, maxSteps: o.warmup + o.steps, skipEval: true,
      balance: 'static', maxNodes: c.nodes, minExecutors: c.nodes, maxNodeFailures: 0, stop: state.stop,
      reporter: reporterFor(state, c.batch, steps, (r) => {
        clearTimeout(joinTimer);
        countBytes(r.nodes);
      }),
      attachRemote: async (run) => {
        const server = await startRemoteServer(run, { host: '127.0.0.1', port: 0, deadlineMs: STEP_DEADLINE_MS, heartbeatMs: HEARTBEAT_MS, log: () => {} });
        // The row may have been abandoned (Ctrl-C) while the server was starting.
        if (remote.closing) {
          await server.close();
          throw new Error('abandoned');
        }
        remote.server = server;
        const port = Number(new URL(server.url).port);
        for (let i = 0; i < c.nodes; i++) await fleet.add(i, port, c.threads);
        return { close: closeServer, status: () => server.status() };
      },
    });
    const trained = training.then(
      () => null,
      (error: unknown) => ({ error }),
    );
    const lost = await Promise.race([trained, failure.promise, state.interrupted]);
    if (lost) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([failure.promise, state.interrupted, new Promise<void>((r) => (timer = setTimeout(r, EXIT_NOTICE_MS)))]).finally(() => clearTimeout(timer));
      throw lost.error;
    }
  } finally {
    clearTimeout(joinTimer);
    // Only reached with the run over (or abandoned): the server says bye, the nodes leave or are killed.
    await closeServer();
    await fleet.stop(EXIT_GRACE_MS);
    state.fleets.delete(fleet);
  }
  return summarize(o, c, steps, bytes, fleet.nodes.map((n) => n.pid));
}

function summarize(o: ScalingBenchOptions, c: Combo, steps: readonly StepRecord[], bytes: readonly { sent: number; received: number }[] | null, pids: readonly number[]): Measured {
  // Full batches only: an epoch's short last batch would skew the medians.
  const idx = steps.map((_, i) => i).filter((i) => i >= o.warmup && steps[i].rows === c.batch);
  if (idx.length === 0) throw configError('--steps', `no full batch of ${c.batch} among the ${steps.length - o.warmup} measured steps`);
  const slowest = (s: StepRecord): number => Math.max(...s.shards.map((x) => x.computeMs));
  const med = (f: (s: StepRecord) => number): number => median(idx.map((i) => f(steps[i])));
  return {
    combo: c,
    steps: idx.length,
    stepMs: med((s) => s.stepMs),
    computeMs: med(slowest),
    commMs: med((s) => s.stepMs - slowest(s) - s.updateMs),
    updateMs: med((s) => s.updateMs),
    poolMs: med((s) => s.stepMs - s.updateMs),
    bytesSent: bytes ? median(idx.map((i) => bytes[i].sent)) : null,
    bytesReceived: bytes ? median(idx.map((i) => bytes[i].received)) : null,
    pids,
  };
}

function report(state: RunState, measured: readonly Measured[], notice: string | null, transport: { perMessageSec: number; perByteSec: number }): ScalingReport {
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
    const workers = c.threads * Math.max(1, c.nodes);
    const speedup = base.stepMs / m.stepMs;
    const b = inputs.get(c.batch);
    const predicted = c.nodes > 0 && b ? predictStep(scaleoutInputs(frame, b, c.threads, o.net), c.nodes) : null;
    const predictedStepMs = predicted ? 1000 * predicted.stepSec : null;
    return {
      kind: c.nodes === 0 ? 'local' : 'nodes',
      batch: c.batch, threads: c.threads, nodes: c.nodes, workers,
      link: c.nodes === 0 ? 'threads' : state.linkMode,
      baselineOnly: c.baselineOnly,
      measuredSteps: m.steps,
      stepMs: m.stepMs, computeMs: m.computeMs, commMs: m.commMs, updateMs: m.updateMs,
      samplesPerSec: (1000 * c.batch) / m.stepMs,
      speedup, efficiency: speedup / workers,
      bytesSentPerNodeStep: m.bytesSent, bytesReceivedPerNodeStep: m.bytesReceived,
      predictedStepMs,
      predictedComputeMs: predicted ? 1000 * predicted.computeSec : null,
      predictedCommMs: predicted ? 1000 * predicted.commSec : null,
      predictionErrorPct: predictedStepMs === null ? null : (100 * (predictedStepMs - m.stepMs)) / m.stepMs,
      nodePids: m.pids,
    };
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
