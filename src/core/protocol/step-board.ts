// The step board: the byte layout of a small SharedArrayBuffer beside the arena through which the
// coordinator and its threads run fused steps without a message per step.

// Int32 words (Atomics): per slot the last
// step whose shard sum is complete (`done`, the first barrier of a fused step) and the last step the
// slot's loop task finished (`finished`, the second: no thread starts a step's forward before every
// slice of the one before is written); `go` (the last step posted), `generation` (a loop whose
// generation is stale exits) and `abort` (steps up to it are given up).
//
// A remote node's streamed step: `weightsTicket` names the step whose weights are arriving (a
// thread working for another ticket gives up), `landed` how many floats of them are in, and per
// slot `gradFrom`, where the slot's final gradient starts (backward finishes the last layer first).
//
// A step's description (per slot its rows and update slice; the slot list, weights copy and slice
// count; its scale, 1 / rows) and its results (per slot the loss sum and timings) exist twice, by
// the step's parity: the coordinator may post step s + 1 while the threads run step s, and reads
// step s's results while they run s + 1. It posts s + 2 (the parity of s) only after it has read s.

export interface StepBoard {
  readonly buffer: SharedArrayBuffer;
  readonly slots: number;
}

/** `p`: the step's parity (step & 1). */
export interface BoardViews {
  readonly slots: number;
  readonly i32: Int32Array;
  readonly f64: Float64Array;
  /** Int32 indices. */
  readonly done: (slot: number) => number;
  readonly finished: (slot: number) => number;
  readonly go: number;
  readonly generation: number;
  readonly abort: number;
  readonly weightsTicket: number;
  readonly landed: number;
  readonly gradFrom: (slot: number) => number;
  readonly lo: (p: number, slot: number) => number;
  readonly hi: (p: number, slot: number) => number;
  readonly slice: (p: number, slot: number) => number;
  /** The step's participating slots, in shard order (`slices` of them). */
  readonly member: (p: number, i: number) => number;
  readonly copy: (p: number) => number;
  readonly sliceCount: (p: number) => number;
  /** Float64 indices. */
  readonly scale: (p: number) => number;
  readonly lossSum: (p: number, slot: number) => number;
  readonly computeMs: (p: number, slot: number) => number;
  readonly waitMs: (p: number, slot: number) => number;
  readonly updateMs: (p: number, slot: number) => number;
}

// Int32: done, finished, gradFrom (n each), go, generation, abort, weightsTicket, landed; then per
// parity lo, hi, slice, member (n each), copy, slice count. Float64: per parity the scale, then lossSum, computeMs, waitMs,
// updateMs (n each).
function layout(slots: number): { i32Words: number; perParityI32: number; f64Offset: number; perParityF64: number; bytes: number } {
  const perParityI32 = 4 * slots + 2;
  const i32Words = 3 * slots + 5 + 2 * perParityI32;
  const f64Offset = Math.ceil((i32Words * 4) / 8) * 8;
  const perParityF64 = 1 + 4 * slots;
  return { i32Words, perParityI32, f64Offset, perParityF64, bytes: f64Offset + 2 * perParityF64 * 8 };
}

export function createStepBoard(slots: number): StepBoard {
  return { buffer: new SharedArrayBuffer(layout(slots).bytes), slots };
}

export function boardViews(board: StepBoard): BoardViews {
  const n = board.slots;
  const { i32Words, perParityI32, f64Offset, perParityF64 } = layout(n);
  const step0 = 3 * n + 5;
  const at = (p: number): number => step0 + p * perParityI32;
  const f = (p: number): number => p * perParityF64;
  return {
    slots: n,
    i32: new Int32Array(board.buffer, 0, i32Words),
    f64: new Float64Array(board.buffer, f64Offset, 2 * perParityF64),
    done: (s) => s,
    finished: (s) => n + s,
    gradFrom: (s) => 2 * n + s,
    go: 3 * n,
    generation: 3 * n + 1,
    abort: 3 * n + 2,
    weightsTicket: 3 * n + 3,
    landed: 3 * n + 4,
    lo: (p, s) => at(p) + s,
    hi: (p, s) => at(p) + n + s,
    slice: (p, s) => at(p) + 2 * n + s,
    member: (p, i) => at(p) + 3 * n + i,
    copy: (p) => at(p) + 4 * n,
    sliceCount: (p) => at(p) + 4 * n + 1,
    scale: (p) => f(p),
    lossSum: (p, s) => f(p) + 1 + s,
    computeMs: (p, s) => f(p) + 1 + n + s,
    waitMs: (p, s) => f(p) + 1 + 2 * n + s,
    updateMs: (p, s) => f(p) + 1 + 3 * n + s,
  };
}
