// Running one row of `dptrain bench scaling`: on the local pool, or on real `dptrain worker`
// processes behind their links, with whatever the row started stopped again, also on failure.

import { availableParallelism } from 'node:os';
import { configError, DptrainError } from '../../core/errors.js';
import { loadConfig, type Config } from '../../core/config.js';
import { startRemoteServer, type RemoteServer } from '../remote/server.js';
import { train, type NodeStatus, type Reporter, type StepRecord } from '../train/trainer.js';
import { dilatedNet } from './dilation.js';
import { Fleet, type LinkMode } from './net/fleet.js';
import { fullBatches, runLocalSteps, stepCollector, stepTimes, type Combo, type Emulation, type Measured } from './rows.js';
import { median } from './stats.js';
import type { ScalingBenchOptions } from './scaling.js';

const JOIN_TIMEOUT_MS = 60_000;
const STEP_DEADLINE_MS = 120_000;
const HEARTBEAT_MS = 2_000;
const EXIT_GRACE_MS = 3_000;
// A node killed mid-row is seen twice: its socket closes (the step fails) and its process exits.
// The socket often comes first; the exit names the cause, so the step's failure waits this long for it.
const EXIT_NOTICE_MS = 1_000;

export interface RunState {
  readonly o: ScalingBenchOptions;
  readonly linkMode: LinkMode;
  readonly stop: { requested: boolean };
  readonly interrupted: Promise<never>;
  readonly fleets: Set<Fleet>;
  info: { backend: string; params: number; train: number } | null;
}

/** A promise that only ever rejects, when tripped; safe to leave unawaited. */
export function tripwire(): { readonly promise: Promise<never>; trip(e: Error): void } {
  let trip: (e: Error) => void = () => {};
  const promise = new Promise<never>((_, reject) => (trip = reject));
  promise.catch(() => {});
  return { promise, trip };
}

export function configFor(o: ScalingBenchOptions, batch: number): Config {
  // Epochs out of the way: maxSteps ends every row.
  return loadConfig(o.config, [
    { path: 'training.batchSize', value: batch, flag: '--batch' },
    { path: 'training.epochs', value: 1_000_000, flag: '--steps' },
  ]);
}

function onStart(state: RunState, batch: number): Reporter['start'] {
  return (info) => {
    if (info.train < batch) throw configError('--batch', `${batch} is more than the ${info.train} training samples of ${state.o.config}`);
    state.info ??= { backend: info.backend, params: info.params, train: info.train };
  };
}

export async function localRow(state: RunState, c: Combo): Promise<Measured> {
  const { o } = state;
  const training = runLocalSteps({ config: configFor(o, c.batch), threads: c.threads, kernels: o.kernels, maxSteps: o.warmup + o.steps, stop: state.stop, start: onStart(state, c.batch) });
  training.catch(() => {});
  const steps = await Promise.race([training, state.interrupted]);
  return summarize(o, c, null, steps, null, []);
}

/** A row of `c.nodes` worker processes; with `emulation`, they emulate compute behind dilated links. */
export async function nodeRow(state: RunState, c: Combo, emulation: Emulation | null = null): Promise<Measured> {
  const { o } = state;
  const failure = tripwire();
  const net = o.net && emulation ? dilatedNet(o.net, emulation.dilation) : o.net;
  const fleet = new Fleet(state.linkMode, net, (e) => failure.trip(e), o.sharedLinks ?? false);
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
  // Per emulated link (the proxies see every link, between nodes too): the most one carried one way in a step.
  const linkMax: number[] = [];
  const linkSeen = new Map<string, { up: number; down: number }>();
  const countLinks = (): void => {
    let most = 0;
    for (const [key, now] of fleet.linkBytes()) {
      const before = linkSeen.get(key) ?? { up: 0, down: 0 };
      most = Math.max(most, now.up - before.up, now.down - before.down);
      linkSeen.set(key, now);
    }
    linkMax.push(most);
  };
  const steps: StepRecord[] = [];
  // Node processes starting together on few cores block their event loops for seconds (data, arena,
  // threads) and answer no ping meanwhile: the heartbeat's tolerance grows with the nodes per core.
  const heartbeatMs = HEARTBEAT_MS * Math.max(1, Math.ceil(c.nodes / availableParallelism()));
  const joinTimer = setTimeout(() => failure.trip(new DptrainError('NO_EXECUTORS', `${c.nodes} worker node(s) did not join within ${JOIN_TIMEOUT_MS / 1000} s`)), JOIN_TIMEOUT_MS);
  try {
    const training = train({
      config: configFor(o, c.batch), workers: 0, kernels: o.kernels, maxSteps: o.warmup + o.steps, skipEval: true,
      balance: 'static', maxNodes: c.nodes, minExecutors: c.nodes, maxNodeFailures: 0, stop: state.stop, fanout: c.fanout,
      reporter: stepCollector(steps, {
        start: onStart(state, c.batch),
        step: (r) => {
          clearTimeout(joinTimer);
          countBytes(r.nodes);
          countLinks();
        },
      }),
      attachRemote: async (run) => {
        const server = await startRemoteServer(run, { host: '127.0.0.1', port: 0, deadlineMs: STEP_DEADLINE_MS, heartbeatMs, wire: o.wire, log: () => {} });
        // The row may have been abandoned (Ctrl-C) while the server was starting.
        if (remote.closing) {
          await server.close();
          throw new Error('abandoned');
        }
        remote.server = server;
        const port = Number(new URL(server.url).port);
        const emulateMs = emulation ? emulation.msPerSample * emulation.dilation : undefined;
        for (let i = 0; i < c.nodes; i++) await fleet.add(i, port, c.threads, emulateMs, c.fanout !== undefined);
        return { close: closeServer, status: () => server.status(), kernelsChanged: (b) => server.kernelsChanged(b) };
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
  return summarize(o, c, emulation, steps, bytes, fleet.nodes.map((n) => n.pid), linkSeen.size > 0 ? linkMax : null);
}

function summarize(o: ScalingBenchOptions, c: Combo, emulation: Emulation | null, steps: readonly StepRecord[], bytes: readonly { sent: number; received: number }[] | null, pids: readonly number[], linkMax: readonly number[] | null = null): Measured {
  const idx = fullBatches(steps, o.warmup, c.batch);
  if (idx.length === 0) throw configError('--steps', `no full batch of ${c.batch} among the ${steps.length - o.warmup} measured steps`);
  return {
    combo: c,
    emulation,
    ...stepTimes(idx.map((i) => steps[i])),
    bytesSent: bytes ? median(idx.map((i) => bytes[i].sent)) : null,
    bytesReceived: bytes ? median(idx.map((i) => bytes[i].received)) : null,
    maxLinkBytes: linkMax ? median(idx.map((i) => linkMax[i])) : null,
    pids,
  };
}
