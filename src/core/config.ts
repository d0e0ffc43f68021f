// The training config: one zod schema (the single place user input is validated), loading from a
// JSON file with relative paths resolved against it, CLI overrides, and the frozen, fully typed
// result everything downstream trusts. Every failure is one line naming the file and the field.

import { readText } from './io/files.js';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { configError, DptrainError } from './errors.js';
import { ACTIVATIONS, INITS, LOSSES, OUTPUTS, normalizeOutput, type ModelSpec } from './spec.js';
import type { OptimizerConfig } from './optim.js';
import { loadData, SYNTHETIC_SETS, type DataConfig, type DataSplit } from './data/index.js';

const positiveInt = z.int().positive();
// 0 trains on every row (no test split).
const fraction = z.number().min(0).lt(1);

const modelSchema = z.strictObject({
  layers: z.array(positiveInt).min(2, 'needs at least an input and an output width'),
  hidden: z.enum(ACTIVATIONS).default('relu'),
  output: z.enum(OUTPUTS).default('linear'),
  bias: z.boolean().default(true),
  init: z.enum(INITS).default('pytorch'),
});

const sgdSchema = z.strictObject({
  name: z.literal('sgd'),
  lr: z.number().positive(),
  momentum: z.number().min(0).default(0),
  dampening: z.number().min(0).max(1).default(0),
  nesterov: z.boolean().default(false),
  weightDecay: z.number().min(0).default(0),
});

const adamSchema = z.strictObject({
  name: z.literal('adam'),
  lr: z.number().positive(),
  betas: z.tuple([z.number().min(0).lt(1), z.number().min(0).lt(1)]).default([0.9, 0.999]),
  eps: z.number().positive().default(1e-8),
  weightDecay: z.number().min(0).default(0),
});

const dataSchema = z.discriminatedUnion('source', [
  z.strictObject({ source: z.literal('mnist'), train: positiveInt.default(8000), test: positiveInt.default(2000) }),
  z.strictObject({
    source: z.literal('idx'),
    images: z.string().min(1),
    labels: z.string().min(1),
    testImages: z.string().min(1).optional(),
    testLabels: z.string().min(1).optional(),
    train: positiveInt.optional(),
    test: z.int().min(0).optional(),
  }),
  z.strictObject({
    source: z.literal('csv'),
    path: z.string().min(1),
    target: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
    testPath: z.string().min(1).optional(),
    test: fraction.optional(),
  }),
  z.strictObject({
    source: z.literal('synthetic'),
    name: z.enum(SYNTHETIC_SETS),
    n: positiveInt.optional(),
    test: fraction.optional(),
  }),
]);

const trainingSchema = z.strictObject({
  epochs: positiveInt.default(10),
  batchSize: positiveInt.default(128),
  shuffle: z.boolean().default(true),
  seed: z.int().min(0).max(2 ** 32 - 1).default(42),
  targetLoss: z.number().positive().optional(),
  targetAccuracy: z.number().gt(0).max(1).optional(),
});

export const configSchema = z
  .strictObject({
    model: modelSchema,
    loss: z.enum(LOSSES),
    optimizer: z.discriminatedUnion('name', [sgdSchema, adamSchema]),
    data: dataSchema,
    training: trainingSchema.default(trainingSchema.parse({})),
  })
  .superRefine((c, ctx) => {
    if (c.model.output === 'softmax' && c.loss !== 'cross-entropy')
      ctx.addIssue({ code: 'custom', path: ['model', 'output'], message: 'softmax output goes only with loss cross-entropy (which takes logits)' });
    if (c.loss === 'bce' && c.model.output !== 'sigmoid')
      ctx.addIssue({ code: 'custom', path: ['model', 'output'], message: 'loss bce takes probabilities: the output must be sigmoid' });
    if (c.loss === 'cross-entropy' && c.model.layers[c.model.layers.length - 1] < 2)
      ctx.addIssue({ code: 'custom', path: ['model', 'layers'], message: 'cross-entropy needs at least 2 output classes' });
  });

export type RawConfig = z.infer<typeof configSchema>;

export interface Config {
  /** The file it came from (or '(built-in)'), for messages. */
  readonly source: string;
  /** Folder against which the config's relative paths are resolved. */
  readonly baseDir: string;
  readonly model: ModelSpec;
  readonly init: RawConfig['model']['init'];
  readonly optimizer: OptimizerConfig;
  readonly data: DataConfig;
  readonly training: RawConfig['training'];
  /** The validated config as JSON, for checkpoints and remote nodes. */
  readonly raw: RawConfig;
}

/**
 * The config's data set, with targets encoded for its model and loss. `baseDir` resolves relative
 * paths (the config file's folder, or a node's working directory).
 */
export function loadConfigData(config: Config, baseDir = config.baseDir): DataSplit {
  const spec = config.model;
  return loadData(config.data, { baseDir, seed: config.training.seed, loss: spec.loss, nOut: spec.layers[spec.layers.length - 1] });
}

/** A dotted path and a value that replaces the config's (CLI flags become these). */
export interface Override {
  readonly path: string;
  readonly value: unknown;
  /** What the user typed, for messages (e.g. "--lr"). */
  readonly flag: string;
}

export function readConfigFile(file: string): unknown {
  const text = readText(file);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw configError(file, `not valid JSON (${(e as Error).message})`);
  }
}

export function loadConfig(file: string, overrides: readonly Override[] = []): Config {
  return parseConfig(readConfigFile(file), file, dirname(resolve(file)), overrides);
}

export function parseConfig(input: unknown, source: string, baseDir: string, overrides: readonly Override[] = []): Config {
  const json = structuredClone(input) as Record<string, unknown>;
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw configError(source, 'must be a JSON object');
  for (const o of overrides) setPath(json, o, source);
  const parsed = configSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue.path.join('.') || '(top level)';
    // zod reports an unknown field at its parent: it came from a flag if the flag's path runs through it.
    const paths = issue.code === 'unrecognized_keys' ? issue.keys.map((k) => [...issue.path, k].join('.')) : [field];
    for (const o of overrides) {
      const path = paths.find((p) => o.path === p || o.path.startsWith(`${p}.`));
      if (path !== undefined) throw configError(`${o.flag} (${path})`, describeIssue(issue));
    }
    throw configError(`${source}: ${field}`, describeIssue(issue));
  }
  const raw = parsed.data;
  const { output, softmaxOutput } = normalizeOutput(raw.model.output);
  const model: ModelSpec = { layers: raw.model.layers, hidden: raw.model.hidden, output, softmaxOutput, bias: raw.model.bias, loss: raw.loss };
  return deepFreeze({ source, baseDir, model, init: raw.model.init, optimizer: raw.optimizer, data: raw.data, training: raw.training, raw });
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.join(', ')}`;
  return issue.message;
}

// Names that reach an object's prototype instead of a field: `--set __proto__.x=1` would set x on
// every object of the process.
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

function setPath(root: Record<string, unknown>, o: Override, source: string): void {
  const keys = o.path.split('.');
  const forbidden = keys.find((k) => FORBIDDEN_KEYS.has(k));
  if (forbidden !== undefined) throw configError(o.flag, `${forbidden} is not a config field`);
  let node: Record<string, unknown> = root;
  for (const key of keys.slice(0, -1)) {
    const next = Object.hasOwn(node, key) ? node[key] : undefined;
    if (next === undefined) node[key] = {};
    else if (typeof next !== 'object' || next === null || Array.isArray(next))
      throw configError(o.flag, `cannot set ${o.path}: ${source} has a non-object at ${key}`);
    node = node[key] as Record<string, unknown>;
  }
  node[keys[keys.length - 1]] = o.value;
}

function deepFreeze<T>(o: T): T {
  if (typeof o === 'object' && o !== null && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}

/** Parses `--set a.b=value`: JSON where it parses (numbers, booleans, arrays), else a string. */
export function parseSetFlag(text: string): Override {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new DptrainError('CONFIG_INVALID', `--set ${text}: expected FIELD.PATH=VALUE`);
  const valueText = text.slice(eq + 1);
  let value: unknown;
  try {
    value = JSON.parse(valueText);
  } catch {
    value = valueText;
  }
  return { path: text.slice(0, eq), value, flag: `--set ${text}` };
}
