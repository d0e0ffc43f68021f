// A run's identity: the config fields a resumed run must keep (model, loss, data, optimizer, batch
// size, seed, shuffle), hashed into a run id that checkpoints carry, and the default checkpoint
// folder named after it. What may change on resume is everything else: epochs, stop criteria,
// outputs, checkpoint frequency.

import { createHash } from 'node:crypto';
import { basename, extname, join, resolve } from 'node:path';
import type { Config } from '../../core/config.js';

/** The fields that make a run, as dotted paths of the config. */
export const RUN_FIELDS = ['model', 'loss', 'data', 'optimizer', 'training.batchSize', 'training.seed', 'training.shuffle'] as const;
/** What a resumed run may change, as the messages name it. */
export const MAY_CHANGE = 'epochs, stop criteria (targetLoss, targetAccuracy), outputs and checkpoint frequency';

// Data fields holding file names: resolved, so that two configs naming "data.csv" in different
// folders are different runs.
const DATA_PATHS = ['path', 'testPath', 'images', 'labels', 'testImages', 'testLabels'];

export interface RunIdentity {
  /** Hex digest of the run's fields. */
  readonly id: string;
  /** The config file's name without its extension, e.g. "mnist-mlp". */
  readonly name: string;
  /** The run's fields, data paths resolved: what checkpoints record and resume compares. */
  readonly fields: Readonly<Record<string, unknown>>;
}

export function runIdentity(config: Config): RunIdentity {
  const raw = config.raw as unknown as Record<string, Record<string, unknown>>;
  const fields: Record<string, unknown> = {};
  for (const path of RUN_FIELDS) {
    const [head, leaf] = path.split('.');
    fields[path] = leaf === undefined ? raw[head] : raw[head][leaf];
  }
  const data = { ...(fields.data as Record<string, unknown>) };
  for (const k of DATA_PATHS) if (typeof data[k] === 'string') data[k] = resolve(config.baseDir, data[k]);
  fields.data = data;
  const id = createHash('sha256').update(canonicalJson(fields)).digest('hex').slice(0, 16);
  return { id, name: basename(config.source, extname(config.source)), fields };
}

/** checkpoints/NAME-ID8 under the working folder: one per run, so two configs never share one. */
export function defaultCheckpointDir(run: RunIdentity): string {
  return join('checkpoints', `${run.name}-${run.id.slice(0, 8)}`);
}

/** The first leaf (dotted path) where two values differ, with both values; null when equal. */
export function firstDifference(was: unknown, now: unknown, path = ''): { field: string; was: unknown; now: unknown } | null {
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (isObj(was) && isObj(now)) {
    for (const k of new Set([...Object.keys(was), ...Object.keys(now)])) {
      const d = firstDifference(was[k], now[k], path ? `${path}.${k}` : k);
      if (d) return d;
    }
    return null;
  }
  return canonicalJson(was) === canonicalJson(now) ? null : { field: path, was, now };
}

/** JSON with object keys sorted, so equal values hash equal whatever their key order. */
function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (typeof v === 'object' && v !== null)
    return `{${Object.keys(v).sort().filter((k) => (v as Record<string, unknown>)[k] !== undefined).map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`).join(',')}}`;
  return JSON.stringify(v) ?? 'null';
}
