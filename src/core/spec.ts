// The model's description as the core sees it: layer widths, activations, loss. The config module
// validates user input into these types; the core trusts them.

export const ACTIVATIONS = ['identity', 'relu', 'leaky-relu', 'sigmoid', 'tanh'] as const;
export type Activation = (typeof ACTIVATIONS)[number];

/** What the config may name as the output activation: an activation, `linear` (= identity) or `softmax` (prediction only). */
export const OUTPUTS = [...ACTIVATIONS, 'linear', 'softmax'] as const;
export type OutputName = (typeof OUTPUTS)[number];

export const LOSSES = ['mse', 'mae', 'cross-entropy', 'bce', 'half-sse'] as const;
export type LossName = (typeof LOSSES)[number];

export const INITS = ['pytorch', 'xavier', 'he'] as const;
export type InitName = (typeof INITS)[number];

export interface ModelSpec {
  /** Widths from input to output, e.g. [784, 512, 512, 10]. */
  readonly layers: readonly number[];
  readonly hidden: Activation;
  /** The activation applied to the last layer during training (softmax trains as identity + cross-entropy). */
  readonly output: Activation;
  /** Whether prediction applies softmax to the logits. */
  readonly softmaxOutput: boolean;
  readonly bias: boolean;
  readonly loss: LossName;
}

export function normalizeOutput(name: OutputName): { output: Activation; softmaxOutput: boolean } {
  if (name === 'linear') return { output: 'identity', softmaxOutput: false };
  if (name === 'softmax') return { output: 'identity', softmaxOutput: true };
  return { output: name, softmaxOutput: false };
}

export function layerCount(spec: ModelSpec): number {
  return spec.layers.length - 1;
}

export function activationOf(spec: ModelSpec, layer: number): Activation {
  return layer === layerCount(spec) - 1 ? spec.output : spec.hidden;
}

/** True when targets are class indices (one per sample) rather than one value per output. */
export function isClassIndexLoss(loss: LossName): boolean {
  return loss === 'cross-entropy';
}
