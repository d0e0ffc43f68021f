// The scale-out model: step time over N remote nodes for the coordinator star dptrain is built on,
// and for ring and tree all-reduce. Pure arithmetic from costs measured elsewhere; the tree among
// nodes (`--fanout`) and layer-streamed overlap are in scaleout-tree.ts.

export interface ScaleoutInputs {
  /** Forward + backward of one sample on one thread, seconds (measured). */
  readonly computeSecPerSample: number;
  /** Compute threads on each node. */
  readonly threadsPerNode: number;
  /** Speedup of threadsPerNode threads over one, divided by threadsPerNode (measured; 1 is perfect). */
  readonly threadEfficiency: number;
  /** Samples per step, split evenly over the nodes. */
  readonly batch: number;
  /** Bytes of one frame on the wire; the weights frame and a gradient frame are both about this. */
  readonly frameBytes: number;
  /** One-way latency of a link, seconds. */
  readonly latencySec: number;
  /** Rate of a link in each direction, bytes per second. */
  readonly bandwidthBytesPerSec: number;
  /** Fixed CPU cost of handling one frame at one end (encode or decode, syscalls), seconds (measured). */
  readonly perMessageSec: number;
  /** CPU cost per byte of handling one frame at one end (encode or decode + validate + copy), seconds. */
  readonly perByteSec: number;
  /** Coordinator's cost to add one node's gradient into the sum, seconds. */
  readonly reduceSecPerNode: number;
  /** Coordinator's optimizer step (divide by the batch, update the weights), seconds. */
  readonly updateSec: number;
  /**
   * True when every node's traffic crosses one coordinator link of the given bandwidth, so the N
   * frames of a step serialize on it (a real cluster behind one NIC); false when each node has a
   * link of its own (one emulating proxy per node, as `dptrain bench scaling --net` sets up).
   */
  readonly coordinatorLinkShared: boolean;
}

export interface StepPrediction {
  readonly nodes: number;
  readonly stepSec: number;
  /** Forward + backward of the largest shard on its node. */
  readonly computeSec: number;
  /** Frame handling and network time on the critical path: stepSec − computeSec − reduceUpdateSec. */
  readonly commSec: number;
  /** N reductions plus the optimizer step, all on the coordinator. */
  readonly reduceUpdateSec: number;
  readonly samplesPerSec: number;
  /** Over one thread with no network: (batch · computeSecPerSample + updateSec) / stepSec. */
  readonly speedup: number;
  /** speedup / (N · threadsPerNode). */
  readonly efficiency: number;
}

/*
 * One step of the star, N nodes, W = frameBytes, B = bandwidth, L = latency:
 *
 *   coordinator CPU ─ send weights to node 1, 2, … N ─────────────── receive + reduce 1 … N ─ update
 *   each node        ─ (L + W/B) → decode → compute its shard → encode → (L + W/B) ─┘
 *
 * Every frame goes through the same stages, in order:
 *   send   s = perMessage + W·perByte       coordinator CPU, one at a time
 *   out    W/B                              the node's own link, or the shared coordinator link
 *   wire   L
 *   node   2(perMessage + W·perByte) + compute,   compute = ⌈batch/N⌉ · c / (threads · threadEff)
 *   wire   L
 *   in     W/B                              own link, or the shared link (full duplex: not `out`'s)
 *   recv   r = perMessage + W·perByte + reduceSecPerNode    coordinator CPU, one at a time
 * N identical frames through a line of stages finish after the sum of the stage times plus N − 1
 * times the slowest one-at-a-time stage (a flow shop): nodes overlap with one another, sends overlap
 * with earlier nodes' computing, and only the bottleneck stage repeats. On a link of its own a node's
 * W/B is not one-at-a-time; on a shared link it is, and then the N frames serialize:
 *
 *   flow = s + 2W/B + 2L + node + r + (N − 1) · max(s, r, shared ? W/B : 0)
 *
 * The send and receive stages run on the same coordinator CPU, which the flow bound lets overlap;
 * the CPU bound puts them back in sequence. The step is the larger, plus the update after the last
 * reduction:
 *
 *   step = max(flow, N · (s + r)) + updateSec
 */
export function predictStep(x: ScaleoutInputs, nodes: number): StepPrediction {
  checkInputs(x, nodes);
  const W = x.frameBytes;
  const frameCpu = x.perMessageSec + W * x.perByteSec;
  const computeSec = shardComputeSec(x, nodes);
  const send = frameCpu;
  const recv = frameCpu + x.reduceSecPerNode;
  const transfer = W / x.bandwidthBytesPerSec;
  const node = 2 * frameCpu + computeSec;
  const bottleneck = Math.max(send, recv, x.coordinatorLinkShared ? transfer : 0);
  const flow = send + 2 * transfer + 2 * x.latencySec + node + recv + (nodes - 1) * bottleneck;
  const stepSec = Math.max(flow, nodes * (send + recv)) + x.updateSec;
  return stepPrediction(x, nodes, stepSec, computeSec, nodes * x.reduceSecPerNode + x.updateSec);
}

/** Forward + backward of the largest shard, ⌈batch/N⌉ samples, on one node's threads. */
export function shardComputeSec(x: Omit<ScaleoutInputs, 'frameBytes'>, nodes: number): number {
  return (Math.ceil(x.batch / nodes) * x.computeSecPerSample) / (x.threadsPerNode * x.threadEfficiency);
}

/** A step's prediction from its time and parts; speedup and efficiency against one thread with no network. */
export function stepPrediction(x: Omit<ScaleoutInputs, 'frameBytes'>, nodes: number, stepSec: number, computeSec: number, reduceUpdateSec: number): StepPrediction {
  const speedup = (x.batch * x.computeSecPerSample + x.updateSec) / stepSec;
  return {
    nodes,
    stepSec,
    computeSec,
    commSec: stepSec - computeSec - reduceUpdateSec,
    reduceUpdateSec,
    samplesPerSec: x.batch / stepSec,
    speedup,
    efficiency: speedup / (nodes * x.threadsPerNode),
  };
}

export function predictCurve(x: ScaleoutInputs, ns: readonly number[]): StepPrediction[] {
  return ns.map((n) => predictStep(x, n));
}

/*
 * What a peer-to-peer reduction would change. Both replace the coordinator's 2N frames per step by
 * O(1) or O(log N) frames per node, so neither the coordinator's CPU nor its link grows with N; the
 * star's (N − 1)·max(s, r, W/B) term disappears. The price is latency: the ring pays 2(N − 1) hops,
 * the tree 2⌈log₂ N⌉, against the star's 2. And both change who adds what in which order, so keeping
 * invariant 2 (bit-identical to one thread) needs a fixed summation order per chunk.
 */

/** Ring all-reduce (reduce-scatter then all-gather) of W bytes over N nodes: 2(N−1)/N · W/B + 2(N−1) · L. */
export function ringAllreduceSec(nodes: number, frameBytes: number, latencySec: number, bandwidthBytesPerSec: number): number {
  if (nodes <= 1) return 0;
  return ((2 * (nodes - 1)) / nodes) * (frameBytes / bandwidthBytesPerSec) + 2 * (nodes - 1) * latencySec;
}

/**
 * Binary-tree reduce to a root, then broadcast back down, whole frames, not pipelined:
 * 2⌈log₂ N⌉ · (L + W/B). Fewer hops than the ring, but each carries the whole frame.
 */
export function treeAllreduceSec(nodes: number, frameBytes: number, latencySec: number, bandwidthBytesPerSec: number): number {
  if (nodes <= 1) return 0;
  return 2 * Math.ceil(Math.log2(nodes)) * (latencySec + frameBytes / bandwidthBytesPerSec);
}

export function checkInputs(x: ScaleoutInputs, nodes: number): void {
  if (!(Number.isInteger(nodes) && nodes >= 1)) throw new RangeError(`scaleout: nodes must be a positive integer, got ${nodes}`);
  if (!(Number.isInteger(x.batch) && x.batch >= 1)) throw new RangeError(`scaleout: batch must be a positive integer, got ${x.batch}`);
  if (!(Number.isInteger(x.threadsPerNode) && x.threadsPerNode >= 1)) throw new RangeError(`scaleout: threadsPerNode must be a positive integer, got ${x.threadsPerNode}`);
  if (!(x.threadEfficiency > 0 && x.threadEfficiency <= 1)) throw new RangeError(`scaleout: threadEfficiency must be in (0, 1], got ${x.threadEfficiency}`);
  if (!(x.bandwidthBytesPerSec > 0)) throw new RangeError(`scaleout: bandwidthBytesPerSec must be > 0, got ${x.bandwidthBytesPerSec}`);
  const costs = ['computeSecPerSample', 'frameBytes', 'latencySec', 'perMessageSec', 'perByteSec', 'reduceSecPerNode', 'updateSec'] as const;
  for (const k of costs) {
    if (!(Number.isFinite(x[k]) && x[k] >= 0)) throw new RangeError(`scaleout: ${k} must be a finite number >= 0, got ${x[k]}`);
  }
}
