// The scale-out model of the reduction/broadcast tree among nodes (`--fanout k`): its shape over
// the pairwise tree of shard ids, and one step's time, with or without layer-streamed overlap, f32
// or bf16 on the wire. Pure arithmetic; the star's closed form stays in scaleout-model.ts.

import { leftLeaves } from '../../core/pairwise.js';
import { wireBytes, type WireFloat } from '../../core/protocol/wire.js';
import { lane, OpSchedule, type Lane } from './op-schedule.js';
import { checkInputs, shardComputeSec, stepPrediction, type ScaleoutInputs, type StepPrediction } from './scaleout-model.js';

export interface TreeInputs extends Omit<ScaleoutInputs, 'frameBytes'> {
  /** Layer widths of the MLP (with biases): the bytes of each layer and the split of compute. */
  readonly layers: readonly number[];
  /** Float encoding of weights and gradient sums on every link. */
  readonly wire: WireFloat;
  /** Bytes of a frame's headers (frame header + WebSocket header). */
  readonly headerBytes: number;
  /** Heads the coordinator sends to; >= nodes is the star. */
  readonly fanout: number;
  /** Forwarded weights move in pieces of this many bytes; Infinity is store-and-forward. */
  readonly chunkBytes: number;
  /** Weights down and gradients up layer by layer, compute starting on the first layer. */
  readonly overlap: boolean;
  /**
   * Which child an inner node sends the weights first: the one heading the largest sub-block (the
   * deepest subtree starts first; the default), or the smallest (the pairwise addition order).
   */
  readonly childOrder?: 'largest-first' | 'smallest-first';
}

/** Node i (0-based shard id) in the tree; the coordinator is parent -1. */
export interface TreeShape {
  /** Blocks of contiguous shard ids, one per head, in order. */
  readonly blocks: readonly { readonly first: number; readonly size: number }[];
  readonly parent: readonly number[];
  /** Children in the order a node sends them the weights: the largest sub-block first. */
  readonly children: readonly (readonly number[])[];
  /** Nodes in the sub-block each node heads (itself included). */
  readonly blockSize: readonly number[];
}

export interface TreeBytes {
  /** Weights frame + gradient frame on one parent–child connection per step (every connection alike). */
  readonly perConnection: number;
  /** What the coordinator's NIC carries per step, both directions. */
  readonly coordinator: number;
  /** The busiest node's NIC per step, both directions: a head sends one weights frame per child. */
  readonly busiestNode: number;
}

export interface TreePrediction extends StepPrediction {
  readonly fanout: number;
  /** Longest chain of nodes below the coordinator (1 for the star). */
  readonly depth: number;
  readonly bytes: TreeBytes;
}

/**
 * k heads over the pairwise tree of shard ids T(n) = T(m) + T(n − m), m the largest power of two
 * below n: the largest block is split at its pairwise root until there are k (first one on ties),
 * so blocks are aligned subtrees and powers of two when n is. Inside a block the first node heads
 * a binomial tree along the same pairwise splits: the head of 2^j nodes has j children, heading
 * sub-blocks of 2^(j−1), …, 2, 1 nodes; every subtree's sum is a subtree of the shard ids' sum.
 */
export function treeShape(nodes: number, fanout: number): TreeShape {
  if (!(Number.isInteger(nodes) && nodes >= 1)) throw new RangeError(`scaleout: nodes must be a positive integer, got ${nodes}`);
  if (!(Number.isInteger(fanout) && fanout >= 1)) throw new RangeError(`scaleout: fanout must be a positive integer, got ${fanout}`);
  const blocks = [{ first: 0, size: nodes }];
  while (blocks.length < Math.min(fanout, nodes)) {
    const i = blocks.reduce((best, b, j) => (b.size > blocks[best].size ? j : best), 0);
    const b = blocks[i];
    const m = leftLeaves(b.size);
    blocks.splice(i, 1, { first: b.first, size: m }, { first: b.first + m, size: b.size - m });
  }
  const parent = new Array<number>(nodes).fill(-1);
  const children: number[][] = Array.from({ length: nodes }, () => []);
  const blockSize = new Array<number>(nodes).fill(1);
  const head = (first: number, size: number): void => {
    blockSize[first] = size;
    for (let n = size; n > 1; n = leftLeaves(n)) {
      const m = leftLeaves(n);
      parent[first + m] = first;
      children[first].push(first + m);
      head(first + m, n - m);
    }
  };
  for (const b of blocks) head(b.first, b.size);
  return { blocks, parent, children, blockSize };
}

function depthOf(shape: TreeShape): number {
  const depth = (i: number): number => 1 + Math.max(0, ...shape.children[i].map(depth));
  return Math.max(...shape.blocks.map((b) => depth(b.first)));
}

/** Parameters per dense layer (weights + bias). */
export function layerParams(layers: readonly number[]): number[] {
  return layers.slice(1).map((nOut, i) => layers[i] * nOut + nOut);
}

/**
 * Shares of one sample's compute, forward then backward per layer, proportional to multiply-adds:
 * forward nIn·nOut, backward nIn·nOut for dW plus nIn·nOut for dX except on the first layer.
 */
function computeShares(layers: readonly number[]): { forward: number[]; backward: number[] } {
  const macs = layers.slice(1).map((nOut, i) => layers[i] * nOut);
  const backward = macs.map((m, i) => (i === 0 ? m : 2 * m));
  const total = macs.reduce((a, b) => a + b, 0) + backward.reduce((a, b) => a + b, 0);
  return { forward: macs.map((m) => m / total), backward: backward.map((m) => m / total) };
}

export function treeBytes(x: TreeInputs, nodes: number): TreeBytes {
  const frame = wireBytes(x.wire) * layerParams(x.layers).reduce((a, b) => a + b, 0) + x.headerBytes;
  const shape = treeShape(nodes, x.fanout);
  const busiest = Math.max(...shape.children.map((c) => c.length + 1));
  return { perConnection: 2 * frame, coordinator: 2 * shape.blocks.length * frame, busiestNode: 2 * busiest * frame };
}

/** The star's inputs for the same model and wire (one frame of all layers). */
export function starInputs(x: TreeInputs): ScaleoutInputs {
  return {
    computeSecPerSample: x.computeSecPerSample,
    threadsPerNode: x.threadsPerNode,
    threadEfficiency: x.threadEfficiency,
    batch: x.batch,
    frameBytes: wireBytes(x.wire) * layerParams(x.layers).reduce((a, b) => a + b, 0) + x.headerBytes,
    latencySec: x.latencySec,
    bandwidthBytesPerSec: x.bandwidthBytesPerSec,
    perMessageSec: x.perMessageSec,
    perByteSec: x.perByteSec,
    reduceSecPerNode: x.reduceSecPerNode,
    updateSec: x.updateSec,
    coordinatorLinkShared: x.coordinatorLinkShared,
  };
}

interface Machine {
  readonly cpu: Lane;
  /** null: not a shared resource (the coordinator with a link per node). */
  readonly out: Lane | null;
  readonly in: Lane | null;
}

/*
 * One step as operations on lanes (op-schedule.ts), B = bandwidth, L = latency, a = perMessageSec,
 * b = perByteSec:
 *
 * - Every machine has one CPU for frames (its event loop: encode, decode, validate, add a child's
 *   sum), apart from the node's compute threads. Each node has a NIC of its own, B each way, full
 *   duplex; the coordinator's frames share one NIC only when coordinatorLinkShared, else each of
 *   its connections is limited by the node's NIC alone (one emulating proxy per node).
 * - A frame (the weights, or a sum) costs each end a + bytes·b of CPU, a once per frame however it is
 *   cut: its pieces share the frame's header and go back to back on a socket already being written.
 *   A hop is bytes/B on the sender's out-link and the receiver's in-link at once, then L.
 * - Down: the coordinator, then every inner node, sends one weights frame per child, one after
 *   another, by default the child heading the largest sub-block first (the deepest subtree to feed).
 *   A frame into or out of an inner node moves in chunks of chunkBytes and an inner node forwards a
 *   chunk as soon as it has it (pipelining); frames to the coordinator's leaves go whole, as today.
 * - Compute: ⌈batch/N⌉ samples, as the star. With overlap the weights travel layer by layer (first
 *   layer first), the forward of a layer starts when it has arrived and the layer before is done,
 *   and backward yields each layer's gradient (last first); without, compute starts once the whole
 *   frame is in and the sum leaves when all of it is done.
 * - Up: each node sends one sum of its sub-block (its own gradient plus its children's sums, added on
 *   its CPU as they arrive), layer by layer last layer first with overlap, else whole. The
 *   coordinator adds the heads' sums the same way, then updates (updateSec) on the same CPU.
 * - Uncharged: the update's own layer-by-layer overlap with the last sums, and a piece's cost beyond
 *   its bytes (so smaller chunks are never slower here).
 * With fanout >= N every node is a leaf of the coordinator and this is the star of predictStep,
 * whose flow-shop formula is this schedule's result.
 */
export function predictTree(x: TreeInputs, nodes: number): TreePrediction {
  checkTreeInputs(x);
  checkInputs(starInputs(x), nodes);
  const shape = treeShape(nodes, x.fanout);
  const floatBytes = wireBytes(x.wire);
  const params = layerParams(x.layers);
  const totalParams = params.reduce((a, b) => a + b, 0);
  // Sections of a frame: the layers with overlap, else the whole frame (headers in the first).
  const sections = x.overlap ? params.map((p, l) => floatBytes * p + (l === 0 ? x.headerBytes : 0)) : [floatBytes * totalParams + x.headerBytes];
  const sectionParams = x.overlap ? params : [totalParams];
  const computeSec = shardComputeSec(x, nodes);
  const shares = computeShares(x.layers);

  const s = new OpSchedule();
  const coordinator: Machine = x.coordinatorLinkShared ? { cpu: lane(), out: lane(), in: lane() } : { cpu: lane(), out: null, in: null };
  const machines: Machine[] = Array.from({ length: nodes }, () => ({ cpu: lane(), out: lane(), in: lane() }));
  const at = (i: number): Machine => (i < 0 ? coordinator : machines[i]);
  const isInner = (i: number): boolean => i >= 0 && shape.children[i].length > 0;
  const cpuSec = (first: boolean, bytes: number): number => (first ? x.perMessageSec : 0) + bytes * x.perByteSec;
  const hop = (from: number, to: number, bytes: number, deps: readonly number[]): number => {
    const wire = s.add(bytes / x.bandwidthBytesPerSec, [at(from).out, at(to).in], deps);
    return s.add(x.latencySec, [], [wire]);
  };

  // Down. have[i][l]: the op after which node i holds section l (its last piece decoded).
  const have: number[][] = new Array(nodes);
  // A section's pieces on one hop: whole, or chunks when the hop touches an inner node.
  const cut = (bytes: number, chunked: boolean): number[] => {
    if (!chunked || !(bytes > x.chunkBytes)) return [bytes];
    const n = Math.ceil(bytes / x.chunkBytes);
    return Array.from({ length: n }, (_, i) => (i < n - 1 ? x.chunkBytes : bytes - (n - 1) * x.chunkBytes));
  };
  // Per section, the ops after which the sender holds each piece of the frame (none: it has them).
  const pieceOps = new Map<number, number[][]>();
  const childrenOf = (from: number): readonly number[] => {
    if (from < 0) return shape.blocks.map((b) => b.first);
    return x.childOrder === 'smallest-first' ? [...shape.children[from]].reverse() : shape.children[from];
  };
  const sendDown = (from: number): void => {
    let previousSend: number | null = null;
    for (const child of childrenOf(from)) {
      const chunked = isInner(from) || isInner(child);
      const received: number[][] = [];
      let first = true;
      sections.forEach((bytes, l) => {
        const held = pieceOps.get(from)?.[l];
        const pieces = cut(bytes, chunked);
        received.push([]);
        pieces.forEach((p, k) => {
          // A piece leaves when the sender holds it (an inner node's pieces in and out are the same
          // chunks) and after the piece before it: of this frame, or of the frame to the child before.
          const holding = held ? [held[k]] : [];
          // The coordinator writes every head's frame in one loop, before it handles anything else.
          const deps = [...holding, ...(previousSend === null || from < 0 ? [] : [previousSend])];
          const send = s.add(cpuSec(first, p), [at(from).cpu], deps);
          previousSend = send;
          const arrived = hop(from, child, p, [send]);
          const decoded = s.add(cpuSec(first, p), [at(child).cpu], [arrived, ...(received[l].length ? [received[l][received[l].length - 1]] : [])]);
          received[l].push(decoded);
          first = false;
        });
      });
      pieceOps.set(child, received);
      have[child] = received.map((r) => r[r.length - 1]);
    }
    for (const child of childrenOf(from)) if (isInner(child)) sendDown(child);
  };
  sendDown(-1);

  // Compute on each node's own threads: one lane per node, forward in order, backward in reverse.
  const gradientOf: number[][] = machines.map((_, i) => {
    const pool = lane();
    if (!x.overlap) return [s.add(computeSec, [pool], [have[i][0]])];
    const ready: number[] = new Array(params.length);
    let last = -1;
    params.forEach((_, l) => {
      last = s.add(computeSec * shares.forward[l], [pool], [have[i][l], ...(last >= 0 ? [last] : [])]);
    });
    for (let l = params.length - 1; l >= 0; l--) {
      last = s.add(computeSec * shares.backward[l], [pool], [last]);
      ready[l] = last;
    }
    return ready;
  });

  // Up, children before parents: each section's sum leaves when its own gradient and every child's
  // sum of it are in, last section first; the parent decodes and adds it on its CPU.
  // landed[i + 1][l]: the ops that add the children's sums of section l at node i (0: the coordinator).
  const landed: number[][][] = Array.from({ length: nodes + 1 }, () => sections.map(() => []));
  const receivedAt = (i: number): number[][] => landed[i + 1];
  const sendUp = (i: number): void => {
    for (const c of shape.children[i]) sendUp(c);
    const to = shape.parent[i];
    let previous: number | null = null;
    for (let l = sections.length - 1; l >= 0; l--) {
      const first = l === sections.length - 1;
      const send = s.add(cpuSec(first, sections[l]), [at(i).cpu], [gradientOf[i][l], ...receivedAt(i)[l], ...(previous === null ? [] : [previous])]);
      previous = send;
      const arrived = hop(i, to, sections[l], [send]);
      const reduce = x.reduceSecPerNode * (sectionParams[l] / totalParams);
      receivedAt(to)[l].push(s.add(cpuSec(first, sections[l]) + reduce, [at(to).cpu], [arrived]));
    }
  };
  for (const b of shape.blocks) sendUp(b.first);
  const update = s.add(x.updateSec, [coordinator.cpu], receivedAt(-1).flat());

  const stepSec = s.run()[update];
  // On the coordinator: the heads' sums and the optimizer (the other additions are the nodes').
  const reduceUpdateSec = shape.blocks.length * x.reduceSecPerNode + x.updateSec;
  return { ...stepPrediction(x, nodes, stepSec, computeSec, reduceUpdateSec), fanout: x.fanout, depth: depthOf(shape), bytes: treeBytes(x, nodes) };
}

function checkTreeInputs(x: TreeInputs): void {
  if (!(x.layers.length >= 2 && x.layers.every((w) => Number.isInteger(w) && w >= 1))) throw new RangeError(`scaleout: layers must be two or more positive integers, got [${x.layers.join(', ')}]`);
  if (!(x.chunkBytes > 0)) throw new RangeError(`scaleout: chunkBytes must be > 0, got ${x.chunkBytes}`);
  if (!(Number.isFinite(x.headerBytes) && x.headerBytes >= 0)) throw new RangeError(`scaleout: headerBytes must be a finite number >= 0, got ${x.headerBytes}`);
}
