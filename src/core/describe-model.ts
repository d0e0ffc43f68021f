// The description a weights file carries (model-file.ts), built from a validated config and the
// training data it met: target encoding from the data, column names from a CSV's header, and the
// data source with absolute paths so that `eval` finds the same test split.

import { resolve } from 'node:path';
import type { Config } from './config.js';
import type { DataConfig } from './data/index.js';
import type { Dataset } from './data/types.js';
import { csvRecords } from './data/csv.js';
import { readText } from './io/files.js';
import type { ModelDescription, TargetEncoding } from './io/model-file.js';
import { isClassIndexLoss } from './spec.js';

/**
 * `train` is the training split as loaded (its `classes` say whether targets were classes);
 * `fromConfig` is false when the data was handed in rather than loaded from config.data.
 */
export function describeModel(config: Config, train: Pick<Dataset, 'classes'>, fromConfig: boolean): ModelDescription {
  const raw = config.raw;
  const layers = [...raw.model.layers];
  const nOut = layers[layers.length - 1];
  const cols = fromConfig ? csvColumns(config) : null;
  const classes = isClassIndexLoss(raw.loss) ? Math.max(nOut, train.classes) : train.classes;
  const targets: TargetEncoding = classes >= 2
    ? { kind: 'classes', classes, ...(cols && cols.targets.length === 1 ? { column: cols.targets[0] } : {}) }
    : { kind: 'values', width: nOut, ...(cols ? { columns: cols.targets } : {}) };
  return {
    version: 1,
    layers,
    hidden: raw.model.hidden,
    output: raw.model.output,
    bias: raw.model.bias,
    loss: raw.loss,
    inputs: { width: layers[0], ...(cols ? { columns: cols.inputs } : {}) },
    targets,
    ...(fromConfig ? { data: { source: absoluteSource(config.data, config.baseDir), seed: config.training.seed } } : {}),
  };
}

/**
 * The description a file without metadata gets from a config (`hasData`: the config names real
 * data, not a stand-in for arrays).
 */
export function describeFromConfig(config: Config, hasData: boolean): ModelDescription {
  const nOut = config.model.layers[config.model.layers.length - 1];
  // Without the data at hand: cross-entropy targets are classes; a single bce output is 0/1 classes.
  const classes = isClassIndexLoss(config.model.loss) ? nOut : config.model.loss === 'bce' && nOut === 1 ? 2 : 0;
  return describeModel(config, { classes }, hasData);
}

function csvColumns(config: Config): { inputs: string[]; targets: string[] } | null {
  const d = config.data;
  if (d.source !== 'csv') return null;
  const file = resolve(config.baseDir, d.path);
  const first = csvRecords(readText(file), file).next();
  if (first.done) return null;
  const header = first.value.fields.map((h) => h.trim());
  const targets = typeof d.target === 'string' ? [d.target] : [...d.target];
  return { inputs: header.filter((h) => !targets.includes(h)), targets };
}

function absoluteSource(d: DataConfig, baseDir: string): Record<string, unknown> {
  const abs = (p: string | undefined): string | undefined => (p === undefined ? undefined : resolve(baseDir, p));
  switch (d.source) {
    case 'csv': return stripUndefined({ ...d, path: abs(d.path), testPath: abs(d.testPath) });
    case 'idx': return stripUndefined({ ...d, images: abs(d.images), labels: abs(d.labels), testImages: abs(d.testImages), testLabels: abs(d.testLabels) });
    default: return { ...d };
  }
}

function stripUndefined(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}
