// The step board: a small SharedArrayBuffer beside the arena through which the coordinator and its
// threads run fused steps without a message per step. Int32 words (Atomics): per slot the last
// step whose shard sum is complete (`done`, the barrier of the fused update), the last step the
// slot's loop task finished (`finished`), the slot's rows and update slice for the posted step;
// the posted step's slot list, weights copy and slice count; `go` (the step posted), `generation`
// (a loop whose generation is stale exits) and `abort` (a step given up). Float64: per slot its
// loss sum and timings, and the step's scale (1 / rows).

export interface StepBoard {
  readonly buffer: SharedArrayBuffer;
  readonly slots: number;
}

export interface BoardViews {
  readonly slots: number;
  readonly i32: Int32Array;
  readonly f64: Float64Array;
  /** Int32 indices. */
  readonly done: (slot: number) => number;
  readonly finished: (slot: number) => number;
  readonly lo: (slot: number) => number;
  readonly hi: (slot: number) => number;
  readonly slice: (slot: number) => number;
  /** The posted step's participating slots, in shard order (`slices` of them). */
  readonly member: (i: number) => number;
  readonly go: number;
  readonly generation: number;
  readonly abort: number;
  readonly copy: number;
  readonly slices: number;
  /** Float64 indices. */
  readonly lossSum: (slot: number) => number;
  readonly computeMs: (slot: number) => number;
  readonly waitMs: (slot: number) => number;
  readonly updateMs: (slot: number) => number;
  readonly scale: number;
}

function layout(slots: number): { i32Words: number; f64Offset: number; bytes: number } {
  const i32Words = 6 * slots + 5;
  const f64Offset = Math.ceil((i32Words * 4) / 8) * 8;
  return { i32Words, f64Offset, bytes: f64Offset + (4 * slots + 1) * 8 };
}

export function createStepBoard(slots: number): StepBoard {
  return { buffer: new SharedArrayBuffer(layout(slots).bytes), slots };
}

export function boardViews(board: StepBoard): BoardViews {
  const n = board.slots;
  const { i32Words, f64Offset } = layout(n);
  return {
    slots: n,
    i32: new Int32Array(board.buffer, 0, i32Words),
    f64: new Float64Array(board.buffer, f64Offset, 4 * n + 1),
    done: (s) => s,
    finished: (s) => n + s,
    lo: (s) => 2 * n + s,
    hi: (s) => 3 * n + s,
    slice: (s) => 4 * n + s,
    member: (i) => 5 * n + i,
    go: 6 * n,
    generation: 6 * n + 1,
    abort: 6 * n + 2,
    copy: 6 * n + 3,
    slices: 6 * n + 4,
    lossSum: (s) => s,
    computeMs: (s) => n + s,
    waitMs: (s) => 2 * n + s,
    updateMs: (s) => 3 * n + s,
    scale: 4 * n,
  };
}
