// The scale-out models (scaleout-model.ts, scaleout-tree.ts) fed with what `dptrain bench scaling`
// measured: compute, thread efficiency, frame, reduce and update costs; and the predictions it makes from them.

import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { decodeNodeFrame, encodeFrame, wireBytes, type WireFloat } from '../../core/protocol/wire.js';
import { predictStep, ringAllreduceSec, treeAllreduceSec, type ScaleoutInputs } from './scaleout-model.js';
import { layerParams, type TreeInputs } from './scaleout-tree.js';
import type { NetProfile } from './net/netem.js';
import type { Scaling } from './rows.js';
import { leastSquares, median } from './stats.js';

/** What one measured row contributes to the model (medians over its measured steps). */
export interface RowTimes {
  readonly kind: 'local' | 'nodes';
  readonly scaling: Scaling;
  /** The --batch value of the row's sweep. */
  readonly sweepBatch: number;
  /** Samples per step, all workers together. */
  readonly batch: number;
  readonly threads: number;
  readonly nodes: number;
  readonly stepMs: number;
  readonly updateMs: number;
  /** Median of (step − update): the pool's whole turn, dispatch included. */
  readonly poolMs: number;
}

export interface FrameCosts {
  /** Bytes of a weights or gradient frame on the wire: (4 or 2 for bf16)·paramCount + frame and WebSocket headers. */
  readonly frameBytes: number;
  readonly perMessageSec: number;
  readonly perByteSec: number;
}

export interface BatchInputs {
  /** Absent: strong. */
  readonly scaling?: Scaling;
  /** The sweep's batch: the global batch (strong) or each worker's (weak). */
  readonly batch: number;
  readonly computeSecPerSample: number;
  /** By threads per node; absent thread counts had no local row and are assumed perfect (1). */
  readonly threadEfficiency: Readonly<Record<string, number>>;
  readonly reduceSecPerNode: number;
  readonly updateSec: number;
}

export interface CurvePoint {
  readonly scaling: Scaling;
  /** The sweep's batch: the global batch (strong) or each worker's (weak). */
  readonly batch: number;
  readonly threadsPerNode: number;
  readonly nodes: number;
  readonly workers: number;
  readonly stepMs: number;
  readonly samplesPerSec: number;
  readonly speedup: number;
  /** The star as the benchmark sets it up: a link of its own per node. */
  readonly efficiency: number;
  /** The star behind one coordinator link that every node's frames share (a real cluster's NIC). */
  readonly sharedLinkEfficiency: number;
  readonly ringAllreduceMs: number;
  readonly ringEfficiency: number;
  readonly treeAllreduceMs: number;
  readonly treeEfficiency: number;
}

// A WebSocket frame header for payloads over 64 KiB: 10 bytes, plus the 4-byte mask from a client.
const WS_HEADER_BYTES = 12;

/**
 * Encode + decode of a result frame, timed at the model's size and at one float: the difference is
 * the per-byte cost, the small frame the per-message cost. One end of a frame pays one of the two
 * (the sender encodes, the receiver decodes), so each is half the round's time.
 */
export function measureFrameCosts(paramCount: number, wire: WireFloat = 'f32', reps = 7): FrameCosts {
  const header = { t: 'result', req: 1, step: 1, count: 1, lossSum: 0.5, computeMs: 1.5, leaving: false };
  const round = (P: number): number => {
    const gradient = new Float32Array(P).fill(1e-3);
    const once = (): unknown => decodeNodeFrame(encodeFrame(header, gradient), 'bench', { paramCount: P });
    // Enough rounds per sample that the timer's resolution is noise; finding k also warms the JIT.
    let k = 1;
    for (;;) {
      const t0 = performance.now();
      for (let i = 0; i < k; i++) once();
      if (performance.now() - t0 >= 2 || k >= 1 << 16) break;
      k *= 2;
    }
    const samples: number[] = [];
    for (let r = 0; r < reps; r++) {
      const t0 = performance.now();
      for (let i = 0; i < k; i++) once();
      samples.push((performance.now() - t0) / k / 1000);
    }
    return median(samples);
  };
  const small = round(1);
  const full = round(paramCount);
  const stepHeader = encodeFrame({ t: 'step', req: 1, step: 1, parts: 1, rows: 1 }).length;
  const resultHeader = encodeFrame(header).length;
  // The per-byte cost is the f32 codec's (bf16's conversion costs a little more per byte, on half the bytes).
  const payload = wireBytes(wire) * paramCount;
  return {
    frameBytes: payload + (stepHeader + resultHeader) / 2 + WS_HEADER_BYTES,
    perMessageSec: small / 2,
    perByteSec: Math.max(0, (full - small) / (2 * payload)),
  };
}

/**
 * The transport's own cost (ws framing, socket syscalls and copies, both ends, loopback): a frame of
 * the model's size and a one-float frame echoed over a real WebSocket in this process, set up as
 * the node and coordinator set theirs up (no compression, unmasked client frames). Half the
 * difference of the round trips, per byte, is added to the codec's per-byte cost; half the small
 * round trip to the per-message cost.
 */
export async function measureTransportCosts(paramCount: number, reps = 9): Promise<{ perMessageSec: number; perByteSec: number }> {
  const maxPayload = 4 * paramCount + 1024 * 1024;
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload });
  server.on('connection', (ws) => ws.on('message', (d: Buffer) => ws.send(d)));
  await new Promise<void>((r) => server.once('listening', () => r()));
  const { port } = server.address() as AddressInfo;
  const client = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false, maxPayload, generateMask: (m) => void m.fill(0) });
  try {
    await new Promise<void>((resolve, reject) => {
      client.once('open', () => resolve());
      client.once('error', reject);
    });
    const rtt = async (bytes: number): Promise<number> => {
      const frame = Buffer.alloc(bytes, 1);
      const samples: number[] = [];
      for (let i = 0; i < reps + 2; i++) {
        const t0 = performance.now();
        await new Promise<void>((r) => {
          client.once('message', () => r());
          client.send(frame);
        });
        if (i >= 2) samples.push((performance.now() - t0) / 1000);
      }
      return median(samples);
    };
    const small = await rtt(4);
    const full = await rtt(4 * paramCount);
    return { perMessageSec: small / 2, perByteSec: Math.max(0, (full - small) / (2 * 4 * paramCount)) };
  } finally {
    client.terminate();
    await new Promise<void>((r) => server.close(() => r()));
  }
}

/**
 * A local row's compute per sample per thread, ms: its pool's turn (step − update) ÷ its batch, not
 * the kernel time alone: a node reports its whole pool turn as compute, dispatch included, so the
 * model must predict that (and an emulated node waits that).
 */
export function perSampleMs(r: { readonly poolMs: number; readonly batch: number }): number {
  return r.poolMs / r.batch;
}

/** Samples per step of `nodes` × `threadsPerNode` workers in the sweep `b`: a weak sweep's grow with them. */
export function sweepGlobalBatch(b: Pick<BatchInputs, 'scaling' | 'batch'>, threadsPerNode: number, nodes?: number): number {
  if (b.scaling !== 'weak') return b.batch;
  if (nodes === undefined) throw new RangeError('scaleout: a weak sweep\'s batch grows with the nodes: say how many');
  return b.batch * threadsPerNode * nodes;
}

/**
 * Compute per sample is the 1-thread local row's (perSampleMs). Thread efficiency at t threads is
 * the 1-thread row's compute per sample over t × the t-thread row's. Reduce and update: updateMs =
 * slots · reduce + update, fitted over every row of the sweep (a local row reduces one slot per
 * thread, a node row one per node).
 */
export function fitBatchInputs(rows: readonly RowTimes[], scaling: Scaling, batch: number): BatchInputs | null {
  const mine = rows.filter((r) => r.scaling === scaling && r.sweepBatch === batch);
  const single = mine.find((r) => r.kind === 'local' && r.threads === 1);
  if (!single || !(single.poolMs > 0)) return null;
  const threadEfficiency: Record<string, number> = {};
  for (const r of mine.filter((x) => x.kind === 'local')) {
    threadEfficiency[r.threads] = Math.min(1, Math.max(1e-3, perSampleMs(single) / (r.threads * perSampleMs(r))));
  }
  const points = mine.map((r) => ({ slots: r.kind === 'local' ? r.threads : r.nodes, ms: r.updateMs }));
  const { slope, intercept } = leastSquares(points.map((p) => p.slots), points.map((p) => p.ms));
  const reduceMs = Number.isFinite(slope) ? Math.max(0, slope) : 0;
  const updateMs = Number.isFinite(slope) && slope >= 0 ? Math.max(0, intercept) : Math.max(0, median(points.map((p) => p.ms - reduceMs * p.slots)));
  return { scaling, batch, computeSecPerSample: perSampleMs(single) / 1000, threadEfficiency, reduceSecPerNode: reduceMs / 1000, updateSec: updateMs / 1000 };
}

/** Loopback has no link to model: no latency, no rate limit (its costs are the frames' CPU). */
export function linkOf(net: NetProfile | null): { latencySec: number; bandwidthBytesPerSec: number } {
  return net ? { latencySec: net.latencyMs / 1000, bandwidthBytesPerSec: (net.bandwidthMbit * 1e6) / 8 } : { latencySec: 0, bandwidthBytesPerSec: Infinity };
}

/** The model's inputs for `nodes` × `threadsPerNode` in the sweep `b` (`nodes` needed if weak: its batch grows with them). */
export function scaleoutInputs(frame: FrameCosts, b: BatchInputs, threadsPerNode: number, net: NetProfile | null, coordinatorLinkShared = false, nodes?: number): ScaleoutInputs {
  return {
    ...frame,
    ...linkOf(net),
    computeSecPerSample: b.computeSecPerSample,
    threadsPerNode,
    threadEfficiency: b.threadEfficiency[threadsPerNode] ?? 1,
    batch: sweepGlobalBatch(b, threadsPerNode, nodes),
    reduceSecPerNode: b.reduceSecPerNode,
    updateSec: b.updateSec,
    coordinatorLinkShared,
  };
}

/**
 * The tree model's inputs for the same measured costs: the run's layers and wire, and the tree's
 * settings. The frame's headers are what the measured frame holds beyond the floats; with fanout
 * >= nodes and no overlap, predictTree gives predictStep's step for these costs.
 */
export function treeScaleoutInputs(
  frame: FrameCosts, b: BatchInputs, threadsPerNode: number, net: NetProfile | null, layers: readonly number[], wire: WireFloat,
  tree: Pick<TreeInputs, 'fanout' | 'chunkBytes' | 'overlap'>, coordinatorLinkShared = false, nodes?: number,
): TreeInputs {
  const { frameBytes, ...costs } = scaleoutInputs(frame, b, threadsPerNode, net, coordinatorLinkShared, nodes);
  const payload = wireBytes(wire) * layerParams(layers).reduce((a, c) => a + c, 0);
  return { ...costs, layers, wire, headerBytes: Math.max(0, frameBytes - payload), ...tree };
}

/**
 * Predicted efficiency for N nodes of t threads: the star as built (own link per node, as measured,
 * and one shared coordinator link), and a ring or tree all-reduce in its place. For ring and tree
 * only the link time is modelled: every node computes its shard, the all-reduce moves the sums, and
 * every node adds its share and updates its own copy in parallel; frame CPU costs are left out.
 * Speedup is samples/s over one thread's at the sweep's batch, so weak and strong sweeps read alike.
 */
export function predictionCurve(frame: FrameCosts, b: BatchInputs, threadsPerNode: number, net: NetProfile | null, ns: readonly number[]): CurvePoint[] {
  const { latencySec, bandwidthBytesPerSec } = linkOf(net);
  const oneThreadSamplesPerSec = b.batch / (b.batch * b.computeSecPerSample + b.updateSec);
  return ns.map((n) => {
    const star = predictStep(scaleoutInputs(frame, b, threadsPerNode, net, false, n), n);
    const shared = predictStep(scaleoutInputs(frame, b, threadsPerNode, net, true, n), n);
    const workers = n * threadsPerNode;
    const batch = sweepGlobalBatch(b, threadsPerNode, n);
    const efficiencyAt = (stepSec: number): number => batch / stepSec / oneThreadSamplesPerSec / workers;
    const ring = ringAllreduceSec(n, frame.frameBytes, latencySec, bandwidthBytesPerSec);
    const tree = treeAllreduceSec(n, frame.frameBytes, latencySec, bandwidthBytesPerSec);
    const allreduceStep = (sec: number): number => star.computeSec + sec + b.reduceSecPerNode + b.updateSec;
    return {
      scaling: b.scaling ?? 'strong',
      batch: b.batch,
      threadsPerNode,
      nodes: n,
      workers,
      stepMs: 1000 * star.stepSec,
      samplesPerSec: star.samplesPerSec,
      speedup: star.samplesPerSec / oneThreadSamplesPerSec,
      efficiency: efficiencyAt(star.stepSec),
      sharedLinkEfficiency: efficiencyAt(shared.stepSec),
      ringAllreduceMs: 1000 * ring,
      ringEfficiency: efficiencyAt(allreduceStep(ring)),
      treeAllreduceMs: 1000 * tree,
      treeEfficiency: efficiencyAt(allreduceStep(tree)),
    };
  });
}
