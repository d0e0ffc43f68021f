// Inference on one thread: a small arena holding a copy of the weights, the network run over the
// caller's rows in chunks, and what its outputs mean: probabilities (softmax over a cross-entropy
// model's logits; a sigmoid output as it is), raw values for regression, and classes decided
// exactly as evaluation decides them, so predictions and `eval`'s accuracy agree.

import { createArena, type ArenaViews } from './arena.js';
import { softmaxRows } from './activations.js';
import type { Dataset } from './data/types.js';
import { DptrainError } from './errors.js';
import { evaluate, type EvalResult } from './eval.js';
import { createKernels, type KernelChoice } from './kernels/index.js';
import { paramLayout, type ParamLayout } from './layout.js';
import { checkDataFits, denseViews, forward, type DenseViews, type Model } from './model.js';
import { isClassIndexLoss, type ModelSpec } from './spec.js';

const CHUNK_ROWS = 256;

export class Predictor {
  readonly spec: ModelSpec;
  readonly layout: ParamLayout;
  private readonly arena: ArenaViews;
  private readonly model: Model;
  private readonly views: DenseViews[];

  /** `params` is copied: later changes to it do not reach the predictor. */
  constructor(spec: ModelSpec, params: Float32Array, kernels: KernelChoice) {
    this.spec = spec;
    this.layout = paramLayout(spec);
    this.arena = createArena(spec, { shards: 1, maxRows: CHUNK_ROWS, stateVectors: 0 });
    this.arena.params.set(params.subarray(0, this.layout.size));
    this.model = { spec, layout: this.layout, kernels: createKernels(kernels, this.arena.memory, this.arena.workspaces[0].scratch) };
    this.views = denseViews(this.layout, this.arena.params);
  }

  get nIn(): number {
    return this.spec.layers[0];
  }

  get nOut(): number {
    return this.spec.layers[this.spec.layers.length - 1];
  }

  /** The weights (a copy). */
  params(): Float32Array {
    return Float32Array.from(this.arena.params.subarray(0, this.layout.size));
  }

  /** The network's last-layer activations [rows × nOut] (logits for cross-entropy). */
  outputs(x: Float32Array, rows: number, what = 'x'): Float32Array {
    checkInputs(x, rows, this.nIn, what);
    const ws = this.arena.workspaces[0];
    const out = new Float32Array(rows * this.nOut);
    for (let start = 0; start < rows; start += CHUNK_ROWS) {
      const n = Math.min(CHUNK_ROWS, rows - start);
      ws.x.set(x.subarray(start * this.nIn, (start + n) * this.nIn));
      const h = forward(this.model, this.views, ws, n);
      out.set(h.subarray(0, n * this.nOut), start * this.nOut);
    }
    return out;
  }

  /** Probabilities for cross-entropy (softmax of the logits), else the outputs as they are. */
  predict(x: Float32Array, rows: number, what = 'x'): Float32Array {
    const out = this.outputs(x, rows, what);
    if (isClassIndexLoss(this.spec.loss)) softmaxRows(out, out, rows, this.nOut);
    return out;
  }

  /** Classes as evaluation counts them: one output thresholded at 0.5, else the largest output. */
  classify(x: Float32Array, rows: number, what = 'x'): Int32Array {
    return classesOf(this.outputs(x, rows, what), rows, this.nOut);
  }

  evaluate(data: Dataset): EvalResult {
    checkDataFits(this.spec, data);
    return evaluate(this.model, this.views, this.arena.workspaces[0], CHUNK_ROWS, data);
  }
}

export function classesOf(outputs: Float32Array, rows: number, nOut: number): Int32Array {
  const classes = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    if (nOut === 1) {
      classes[r] = outputs[r] >= 0.5 ? 1 : 0;
      continue;
    }
    let best = 0;
    for (let j = 1; j < nOut; j++) if (outputs[r * nOut + j] > outputs[r * nOut + best]) best = j;
    classes[r] = best;
  }
  return classes;
}

/** Inputs as the model reads them: rows × nIn finite values; a bad one is named by row and column. */
export function checkInputs(x: Float32Array, rows: number, nIn: number, what: string): void {
  if (!(x instanceof Float32Array)) throw new DptrainError('SHAPE_MISMATCH', `${what}: expected a Float32Array`);
  if (!(Number.isInteger(rows) && rows >= 0)) throw new DptrainError('SHAPE_MISMATCH', `${what}: rows must be a whole number ≥ 0, got ${rows}`);
  if (x.length !== rows * nIn)
    throw new DptrainError('SHAPE_MISMATCH', `${what}: ${x.length} values, ${rows} rows × ${nIn} inputs needs ${rows * nIn}`);
  for (let i = 0; i < x.length; i++)
    if (!Number.isFinite(x[i])) throw new DptrainError('DATA_MALFORMED', `${what}: row ${Math.floor(i / nIn)}, column ${i % nIn}: value ${x[i]} is NaN or infinite`);
}
