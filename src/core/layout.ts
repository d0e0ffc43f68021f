// Where each named tensor sits in the one flat parameter vector. Gradients, gradient slots and
// optimizer moments use the same layout, so the optimizer and the reduction are single loops.
// Weights are stored as PyTorch stores them, [out, in] row-major, so files and memory agree.

import type { ModelSpec } from './spec.js';

export interface TensorInfo {
  readonly name: string;
  /** Offset in floats within the parameter vector. */
  readonly offset: number;
  readonly length: number;
  readonly shape: readonly number[];
}

export interface DenseLayout {
  readonly nIn: number;
  readonly nOut: number;
  readonly weight: TensorInfo;
  readonly bias: TensorInfo | null;
}

export interface ParamLayout {
  readonly size: number;
  readonly tensors: readonly TensorInfo[];
  readonly dense: readonly DenseLayout[];
}

export function paramLayout(spec: ModelSpec): ParamLayout {
  const tensors: TensorInfo[] = [];
  const dense: DenseLayout[] = [];
  let offset = 0;
  for (let i = 0; i + 1 < spec.layers.length; i++) {
    const nIn = spec.layers[i];
    const nOut = spec.layers[i + 1];
    const weight: TensorInfo = { name: `${2 * i}.weight`, offset, length: nOut * nIn, shape: [nOut, nIn] };
    offset += weight.length;
    tensors.push(weight);
    let bias: TensorInfo | null = null;
    if (spec.bias) {
      bias = { name: `${2 * i}.bias`, offset, length: nOut, shape: [nOut] };
      offset += nOut;
      tensors.push(bias);
    }
    dense.push({ nIn, nOut, weight, bias });
  }
  return { size: offset, tensors, dense };
}
