// The MLP's forward and backward passes over one workspace. The order of layers lives here and only
// here: forward runs them in order, backward runs them in reverse from the loss gradient. Gradients
// are sums over the rows (never means), so shard results add up. backward either accumulates into
// the gradient buffer or overwrites it: a shard's first chunk overwrites, which is the step's one
// zeroing without a separate pass over the gradient buffer.

import type { Workspace } from './arena.js';
import { rowName, type Dataset } from './data/types.js';
import type { F32, Kernels } from './kernels/types.js';
import type { ParamLayout } from './layout.js';
import { bceSigmoidGrad } from './losses.js';
import type { Activation, ModelSpec } from './spec.js';
import { activationOf, isClassIndexLoss } from './spec.js';
import { DptrainError } from './errors.js';

export interface Model {
  readonly spec: ModelSpec;
  readonly layout: ParamLayout;
  readonly kernels: Kernels;
}

/** Views of one flat buffer (weights, or a gradient of the same layout) per dense layer. */
export interface DenseViews {
  readonly w: F32;
  readonly b: F32 | null;
}

export function denseViews(layout: ParamLayout, flat: F32): DenseViews[] {
  if (flat.length < layout.size) throw new RangeError(`flat buffer holds ${flat.length} floats, the model needs ${layout.size}`);
  return layout.dense.map((d) => ({
    w: flat.subarray(d.weight.offset, d.weight.offset + d.weight.length),
    b: d.bias ? flat.subarray(d.bias.offset, d.bias.offset + d.bias.length) : null,
  }));
}

/** h[B×nOut] = act(inp[B×nIn] · wᵀ + b); z [B×nOut] is the backend's scratch (fused backends skip it). */
export function denseForward(
  k: Kernels, h: F32, z: F32, inp: F32, w: F32, b: F32 | null, act: Activation, rows: number, nIn: number, nOut: number,
): void {
  k.linear(h, z, inp, w, b, act, rows, nIn, nOut);
}

/**
 * dW[nOut×nIn] (+)= dzᵀ·inp, db (+)= Σ_rows dz, then `ready()` (the layer's gradient is final),
 * and (if dInp) dInp[B×nIn] = dz·w.
 */
export function denseBackward(
  k: Kernels, dInp: F32 | null, dW: F32, dB: F32 | null, dz: F32, inp: F32, w: F32, rows: number, nIn: number, nOut: number,
  accumulate: boolean, ready?: () => void,
): void {
  k.gemmTN(dW, dz, inp, nOut, nIn, rows, accumulate);
  if (dB) {
    if (!accumulate) dB.fill(0, 0, nOut);
    k.colSum(dB, dz, rows, nOut);
  }
  ready?.();
  if (dInp) k.gemmNN(dInp, dz, w, rows, nIn, nOut, false);
}

/**
 * Where a shard's computation meets a stream (a remote node's step, layer-streamed both ways):
 * forward asks for each layer's weights before it reads them (they may still be arriving), and
 * backward tells when a layer's gradient is final (it may go out while the layers below are computed).
 */
export interface LayerStream {
  weightsFor(layer: number): void;
  gradientReady(layer: number): void;
}

/** Floats [start, end) of layer `l`'s weight and bias in the parameter vector (they are adjacent). */
export function layerSpan(layout: ParamLayout, l: number): { readonly start: number; readonly end: number } {
  const d = layout.dense[l];
  const last = d.bias ?? d.weight;
  return { start: d.weight.offset, end: last.offset + last.length };
}

/** Runs the network on ws.x[rows × nIn]; returns the output activations (a view of ws.h[last]). */
export function forward(m: Model, p: readonly DenseViews[], ws: Workspace, rows: number, stream?: LayerStream): F32 {
  const { spec, layout, kernels } = m;
  let inp = ws.x;
  for (let l = 0; l < layout.dense.length; l++) {
    const { nIn, nOut } = layout.dense[l];
    stream?.weightsFor(l);
    denseForward(kernels, ws.h[l], ws.z[l], inp, p[l].w, p[l].b, activationOf(spec, l), rows, nIn, nOut);
    inp = ws.h[l];
  }
  return ws.h[layout.dense.length - 1];
}

/**
 * Loss of the rows in ws (after forward) and backprop of its gradient, added into g (accumulate)
 * or written over it. Returns the loss sum over the rows.
 */
export function backward(
  m: Model, p: readonly DenseViews[], g: readonly DenseViews[], ws: Workspace, rows: number, accumulate: boolean, stream?: LayerStream,
): number {
  const { spec, layout, kernels } = m;
  const last = layout.dense.length - 1;
  const nOut = layout.dense[last].nOut;
  const outAct = spec.output;
  let dz = ws.d0;
  let spare = ws.d1;
  let lossSum: number;
  if (spec.loss === 'bce' && outAct === 'sigmoid') {
    lossSum = bceSigmoidGrad(dz, ws.h[last], ws.y, rows, nOut);
  } else {
    lossSum = kernels.lossGrad(spec.loss, dz, ws.h[last], ws.y, rows, nOut);
    kernels.activateBackward(outAct, dz, ws.h[last], rows * nOut);
  }
  for (let l = last; l >= 0; l--) {
    const { nIn, nOut: width } = layout.dense[l];
    const inp = l === 0 ? ws.x : ws.h[l - 1];
    denseBackward(kernels, l > 0 ? spare : null, g[l].w, g[l].b, dz, inp, p[l].w, rows, nIn, width, accumulate, stream && (() => stream.gradientReady(l)));
    if (l > 0) {
      kernels.activateBackward(activationOf(spec, l - 1), spare, ws.h[l - 1], rows * nIn);
      const t = dz;
      dz = spare;
      spare = t;
    }
  }
  return lossSum;
}

/** Copies rows order[lo..lo+count) of the data set into the workspace's input and target buffers. */
export function gatherRows(ws: Workspace, data: Dataset, order: Int32Array | null, lo: number, count: number): void {
  const { nIn, yWidth } = data;
  for (let r = 0; r < count; r++) {
    const i = order ? order[lo + r] : lo + r;
    ws.x.set(data.x.subarray(i * nIn, (i + 1) * nIn), r * nIn);
    ws.y.set(data.y.subarray(i * yWidth, (i + 1) * yWidth), r * yWidth);
  }
}

export interface ShardResult {
  lossSum: number;
  count: number;
}

/**
 * The worker's whole job for one shard: forward + backward of rows order[lo..hi) in chunks of at
 * most the workspace's rows; the first chunk writes gradSum, later ones add to it. `stream` hears
 * of the weights needed in the first chunk and of the gradients final in the last.
 */
export function shardGradients(
  m: Model, p: readonly DenseViews[], g: readonly DenseViews[], gradSum: F32, ws: Workspace, maxRows: number,
  data: Dataset, order: Int32Array | null, lo: number, hi: number, stream?: LayerStream,
): ShardResult {
  if (hi <= lo) gradSum.fill(0, 0, m.layout.size);
  let lossSum = 0;
  for (let start = lo; start < hi; start += maxRows) {
    const rows = Math.min(maxRows, hi - start);
    gatherRows(ws, data, order, start, rows);
    forward(m, p, ws, rows, start === lo ? stream : undefined);
    lossSum += backward(m, p, g, ws, rows, start > lo, start + rows >= hi ? stream : undefined);
  }
  if (hi <= lo && stream) for (let l = m.layout.dense.length - 1; l >= 0; l--) stream.gradientReady(l);
  return { lossSum, count: hi - lo };
}

/** The checks done once where a data set meets a model (not inside kernels). */
export function checkDataFits(spec: ModelSpec, data: Dataset): void {
  const nIn = spec.layers[0];
  const nOut = spec.layers[spec.layers.length - 1];
  if (data.nIn !== nIn)
    throw new DptrainError('SHAPE_MISMATCH', `data set ${data.name} has ${data.nIn} inputs per row, model.layers[0] is ${nIn}`);
  const wantWidth = isClassIndexLoss(spec.loss) ? 1 : nOut;
  if (data.yWidth !== wantWidth)
    throw new DptrainError('SHAPE_MISMATCH', `data set ${data.name} has ${data.yWidth} target values per row, loss ${spec.loss} with ${nOut} outputs needs ${wantWidth}`);
  if (isClassIndexLoss(spec.loss)) {
    for (let i = 0; i < data.n; i++) {
      const c = data.y[i];
      if (!(Number.isInteger(c) && c >= 0 && c < nOut))
        throw new DptrainError('LABEL_OUT_OF_RANGE', `data set ${data.name}: ${rowName(data, i)} has class ${c}, the model has ${nOut} outputs (0..${nOut - 1})`);
    }
  }
}
