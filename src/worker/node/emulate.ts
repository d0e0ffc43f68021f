// Emulated compute for `dptrain worker --emulate-compute MS` (benchmarks only): a step's forward and
// backward are replaced by a timer of the time they would take and a made-up gradient of the real
// size. Everything around it stays real: the frames, their validation, the sums and the optimizer.
// It lets `dptrain bench scaling` run 16 nodes on 2 cores; such a node does not train anything.

export interface EmulatedCompute {
  /** One sample's forward + backward on one thread, ms (the bench measures it on the real model). */
  readonly msPerSample: number;
  /** The node's threads: a shard's parts run this many at a time. */
  readonly threads: number;
}

/** A one-line notice for the node's log: its results are not a model's. */
export function emulationNotice(e: EmulatedCompute): string {
  return `compute is EMULATED (benchmark only): each step waits ${e.msPerSample} ms per sample on each of ${e.threads} thread${e.threads > 1 ? 's' : ''} and answers with a made-up gradient; this node trains nothing`;
}

/**
 * How long a shard of `rows` cut into `parts` sub-shards takes: the parts run `threads` at a time,
 * each as long as the largest part. Threads are taken as perfect (no thread efficiency below 1).
 */
export function emulatedMs(e: EmulatedCompute, rows: number, parts: number): number {
  const p = Math.max(1, parts);
  return Math.ceil(p / e.threads) * Math.ceil(rows / p) * e.msPerSample;
}

// A per-sample gradient is g_i = a_i·A + b_i·B over two fixed per-parameter patterns, so a shard's
// sum is (Σa_i)·A + (Σb_i)·B: O(rows + parameters) per step, the same bits for the same step and
// samples whoever computes them. |a_i| ∈ [1, 2) keeps every shard's per-row norm within a small
// factor of any other's (the coordinator's gradient guard compares them); a_i's sign alternates
// with the step, so the weights oscillate instead of drifting off.
const PATTERN_SCALE = 1e-3;
const SALT_A = 0x68e31da4;
const SALT_B = 0xb5297a4d;
const SALT_LOSS = 0x1b56c4e9;
let patterns: { readonly a: Float32Array; readonly b: Float32Array } | null = null;

/** murmur3's 32-bit finalizer: a well-mixed uint32 of a uint32. */
function mix(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/** Uniform in [0, 1) from a salt and two integers. */
function unit(salt: number, i: number, j: number): number {
  return mix(mix(salt ^ i) + Math.imul(j, 0x9e3779b1)) / 4294967296;
}

function patternsFor(paramCount: number): { readonly a: Float32Array; readonly b: Float32Array } {
  if (patterns?.a.length !== paramCount) {
    const a = new Float32Array(paramCount);
    const b = new Float32Array(paramCount);
    for (let j = 0; j < paramCount; j++) {
      a[j] = PATTERN_SCALE * (unit(SALT_A, 0, j) - 0.5);
      b[j] = PATTERN_SCALE * (unit(SALT_B, 0, j) - 0.5);
    }
    patterns = { a, b };
  }
  return patterns;
}

/** A layer of the model as emulation sees it: its floats [start, end) and its share of the compute (nIn·nOut). */
export interface LayerCost {
  readonly start: number;
  readonly end: number;
  readonly cost: number;
}

/** How an emulated shard meets the stream: it waits for a layer's weights, it posts a layer's gradient. */
export interface EmulatedStream {
  weightsFor(end: number): Promise<void>;
  gradientReady(from: number): void;
}

/**
 * The shard of `rows` samples (`order[0..rows)`, sample indices) of `step`: its made-up gradient sum
 * written into `gradSum` (every parameter) and its loss sum returned, once the emulated compute time
 * has passed. The time is spent layer by layer as the real passes spend it (forward: a product per
 * layer; backward: the weight gradient per layer, then the input gradient except for the first),
 * forward waiting for each layer's weights and backward posting each layer's gradient as final, so
 * that overlap with the links is emulated too. The waits are sleeps: a node costs no CPU meanwhile.
 */
export async function emulateShard(e: EmulatedCompute, step: number, rows: number, parts: number, order: Int32Array, gradSum: Float32Array, layers: readonly LayerCost[], stream: EmulatedStream): Promise<{ count: number; lossSum: number }> {
  const sign = step % 2 === 0 ? 1 : -1;
  let alpha = 0;
  let beta = 0;
  let lossSum = 0;
  for (let i = 0; i < rows; i++) {
    alpha += sign * (1 + unit(SALT_A, step, order[i]));
    beta += 2 * unit(SALT_B, step, order[i]) - 1;
    lossSum += 0.5 + unit(SALT_LOSS, step, order[i]);
  }
  const { a, b } = patternsFor(gradSum.length);
  for (let j = 0; j < gradSum.length; j++) gradSum[j] = alpha * a[j] + beta * b[j];
  // Forward one product per layer, backward two (one for the first layer): the compute in units.
  const units = layers.reduce((acc, l, i) => acc + l.cost * (i > 0 ? 3 : 2), 0);
  const msPerUnit = emulatedMs(e, rows, parts) / Math.max(1, units);
  let due = performance.now();
  for (const l of layers) {
    await stream.weightsFor(l.end);
    due = Math.max(due, performance.now()) + l.cost * msPerUnit;
    await sleepUntil(due);
  }
  for (let i = layers.length - 1; i >= 0; i--) {
    due += layers[i].cost * msPerUnit;
    await sleepUntil(due);
    stream.gradientReady(layers[i].start);
    if (i > 0) {
      due += layers[i].cost * msPerUnit;
      await sleepUntil(due);
    }
  }
  return { count: rows, lossSum };
}

const SLEEPER = new Int32Array(new SharedArrayBuffer(4));

/**
 * Until performance.now() reaches `due`, without spinning. setTimeout counts whole milliseconds and
 * fires up to one early or late, so it covers all but the last one or two; a futex wait with a
 * fractional timeout (Atomics.wait, blocking this idle thread for under 2 ms) sleeps the rest.
 */
async function sleepUntil(due: number): Promise<void> {
  for (let left = due - performance.now(); left >= 2; left = due - performance.now()) {
    await new Promise((r) => setTimeout(r, Math.floor(left - 1)));
  }
  for (let left = due - performance.now(); left > 0; left = due - performance.now()) Atomics.wait(SLEEPER, 0, 0, left);
}
