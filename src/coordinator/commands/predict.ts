// `dptrain predict`: a weights file or checkpoint applied to a CSV or IDX file, written as CSV with
// a header: for a classifier the predicted class and one probability column per class, for
// regression the outputs (named after the training targets where known).

import { resolve } from 'node:path';
import { readPredictInputs } from '../../core/data/predict-input.js';
import { writeFileAtomic } from '../../core/io/atomic-file.js';
import type { KernelChoice } from '../../core/kernels/index.js';
import { loadModelFile } from '../api/model.js';

export interface PredictFlags {
  readonly weights: string;
  readonly input: string;
  /** CSV file to write (stdout without it). */
  readonly output?: string;
  /** Describes the model of a file without dptrain metadata. */
  readonly config?: string;
  readonly kernels: KernelChoice;
}

export function runPredict(f: PredictFlags, write: (text: string) => void = (t) => process.stdout.write(t)): void {
  const model = loadModelFile(f.weights, { config: f.config, kernels: f.kernels });
  const { x, rows } = readPredictInputs(resolve(f.input), model.description);
  const out = model.predict(x, rows);
  const nOut = model.outputs;
  const lines: string[] = [];
  if (model.classes > 0) {
    const classes = model.classify(x, rows);
    const k = model.classes;
    lines.push(['class', ...Array.from({ length: k }, (_, j) => `p${j}`)].join(','));
    for (let r = 0; r < rows; r++) {
      // One output is the probability of class 1.
      const p = nOut === 1 ? [1 - out[r], out[r]] : Array.from(out.subarray(r * nOut, (r + 1) * nOut));
      lines.push([String(classes[r]), ...p.map(float32Text)].join(','));
    }
  } else {
    const d = model.description.targets;
    const names = d.kind === 'values' && d.columns ? d.columns : Array.from({ length: nOut }, (_, j) => `y${j}`);
    lines.push(names.map(csvField).join(','));
    for (let r = 0; r < rows; r++) lines.push(Array.from(out.subarray(r * nOut, (r + 1) * nOut), float32Text).join(','));
  }
  const text = `${lines.join('\n')}\n`;
  if (f.output) writeFileAtomic(resolve(f.output), [Buffer.from(text, 'utf8')]);
  else write(text);
}

/** The shortest decimal that reads back as the same float32 (9 significant digits always do). */
function float32Text(v: number): string {
  return String(Number(Math.fround(v).toPrecision(9)));
}

function csvField(s: string): string {
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}
