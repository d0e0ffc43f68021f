// Self-describing weights: the model description (layers, activations, output, loss, bias, how
// targets were encoded, input width and columns, the data it was trained on) JSON-encoded into ONE
// safetensors `__metadata__` key, and reading any weights file or checkpoint back as
// { description, weights }. PyTorch ignores the metadata; files without it need a config.

import { z } from 'zod';
import { DptrainError } from '../errors.js';
import { ACTIVATIONS, LOSSES, OUTPUTS, normalizeOutput, type Activation, type LossName, type ModelSpec, type OutputName } from '../spec.js';
import { decodeSafetensors, type TensorRecord } from './safetensors.js';
import { readBytes } from './files.js';

/** The `__metadata__` key holding the description (safetensors metadata values are strings only). */
export const MODEL_METADATA_KEY = 'dptrain.model';

const columns = z.array(z.string()).optional();

/** What a weights file says about its model, enough to predict and evaluate without a config. */
export interface ModelDescription {
  readonly version: 1;
  readonly layers: readonly number[];
  readonly hidden: Activation;
  /** As the config names it (`softmax` and `linear` kept). */
  readonly output: OutputName;
  readonly bias: boolean;
  readonly loss: LossName;
  readonly inputs: { readonly width: number; readonly columns?: readonly string[] };
  readonly targets: TargetEncoding;
  /** The data source trained on (paths absolute) and the seed that splits it; absent for arrays. */
  readonly data?: { readonly source: Readonly<Record<string, unknown>>; readonly seed: number };
}

/** Class indices (cross-entropy), or 0/1 / one-hot targets built from them; or regression values. */
export type TargetEncoding =
  | { readonly kind: 'classes'; readonly classes: number; readonly column?: string }
  | { readonly kind: 'values'; readonly width: number; readonly columns?: readonly string[] };

const descriptionSchema: z.ZodType<ModelDescription> = z.strictObject({
  version: z.literal(1),
  layers: z.array(z.int().positive()).min(2),
  hidden: z.enum(ACTIVATIONS),
  output: z.enum(OUTPUTS),
  bias: z.boolean(),
  loss: z.enum(LOSSES),
  inputs: z.strictObject({ width: z.int().positive(), columns }),
  targets: z.discriminatedUnion('kind', [
    z.strictObject({ kind: z.literal('classes'), classes: z.int().min(2), column: z.string().optional() }),
    z.strictObject({ kind: z.literal('values'), width: z.int().positive(), columns }),
  ]),
  data: z.strictObject({ source: z.record(z.string(), z.unknown()), seed: z.int() }).optional(),
});


export function specOf(d: ModelDescription): ModelSpec {
  const { output, softmaxOutput } = normalizeOutput(d.output);
  return { layers: d.layers, hidden: d.hidden, output, softmaxOutput, bias: d.bias, loss: d.loss };
}

export function modelMetadata(d: ModelDescription): Record<string, string> {
  return { [MODEL_METADATA_KEY]: JSON.stringify(d) };
}

export function parseDescription(json: string, file: string): ModelDescription {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    throw new DptrainError('WEIGHTS_MISMATCH', `${file}: ${MODEL_METADATA_KEY} metadata is not valid JSON`);
  }
  const r = descriptionSchema.safeParse(value);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new DptrainError('WEIGHTS_MISMATCH', `${file}: ${MODEL_METADATA_KEY} metadata: ${issue.path.join('.') || '(top level)'}: ${issue.message}`);
  }
  const d = r.data;
  const nOut = d.layers[d.layers.length - 1];
  if (d.inputs.width !== d.layers[0])
    throw new DptrainError('WEIGHTS_MISMATCH', `${file}: ${MODEL_METADATA_KEY} metadata: inputs.width ${d.inputs.width} differs from layers[0] ${d.layers[0]}`);
  if (d.targets.kind === 'values' && d.targets.width !== nOut)
    throw new DptrainError('WEIGHTS_MISMATCH', `${file}: ${MODEL_METADATA_KEY} metadata: targets.width ${d.targets.width} differs from the ${nOut} outputs`);
  return d;
}

export interface ModelFile {
  readonly path: string;
  /** The model's weight tensors only (a checkpoint's optimizer state is left out). */
  readonly tensors: Map<string, TensorRecord>;
  /** null for files written elsewhere (e.g. by PyTorch): a config must describe the model. */
  readonly description: ModelDescription | null;
  /** A checkpoint's config (validated JSON), when the file is one: describes older checkpoints. */
  readonly checkpointConfig: unknown;
}

/** Reads a weights file or a checkpoint (both safetensors) with its metadata. */
export function readModelFile(path: string): ModelFile {
  const buf = readBytes(path);
  const all = decodeSafetensors(buf, path);
  const metadata = headerMetadata(buf);
  const text = metadata[MODEL_METADATA_KEY];
  const description = text === undefined ? null : parseDescription(text, path);
  let checkpointConfig: unknown = undefined;
  if (metadata.dptrain !== undefined) {
    try {
      checkpointConfig = (JSON.parse(metadata.dptrain) as { config?: unknown }).config;
    } catch {
      // Not a checkpoint's position record: the weights still load.
    }
  }
  const tensors = new Map([...all].filter(([name]) => !name.startsWith('optimizer.')));
  return { path, tensors, description, checkpointConfig };
}

/** The `__metadata__` of a decoded file (decodeSafetensors has already checked the header). */
function headerMetadata(buf: Uint8Array): Record<string, string> {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const headerLen = Number(dv.getBigUint64(0, true));
  const header = JSON.parse(Buffer.from(buf.buffer, buf.byteOffset + 8, headerLen).toString('utf8')) as { __metadata__?: unknown };
  const md = header.__metadata__;
  if (typeof md !== 'object' || md === null || Array.isArray(md)) return {};
  return Object.fromEntries(Object.entries(md as Record<string, unknown>).filter((e): e is [string, string] => typeof e[1] === 'string'));
}
