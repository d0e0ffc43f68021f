// A finished run's history rebuilt from its --metrics JSONL file, for `dptrain dashboard`. The file
// holds one line per interval of steps (sums over the interval) and one per epoch; no clock, no
// config, no per-batch loss, and nodes only while they were connected.

import { z } from 'zod';
import { dataError } from '../../../core/errors.js';
import { readText } from '../../../core/io/files.js';
import { RunHistory } from './history.js';

const num = z.number();
const StepLine = z.object({
  type: z.literal('step'), step: z.number().int().positive(), epoch: z.number().int().positive(), loss: num, samplesPerSec: num,
  computeMs: z.record(z.string(), num), reduceUpdateMs: num, steps: z.number().int().positive(), stepMs: num.optional(),
  nodes: z.array(z.object({ id: z.string(), address: z.string(), threads: num, bytesSentPerStep: num, bytesReceivedPerStep: num, lastSeenMsAgo: num })).optional(),
});
const EpochLine = z.object({
  type: z.literal('epoch'), epoch: z.number().int().positive(), step: z.number().int().nonnegative(), trainLoss: num,
  testLoss: num.nullable(), testAccuracy: num.nullable(), samplesPerSec: num, seconds: num,
});
const Line = z.discriminatedUnion('type', [StepLine, EpochLine]);

export function historyFromMetrics(file: string): RunHistory {
  const history = new RunHistory({
    live: false, source: file, config: null, stop: null,
    backend: null, threads: null, params: null, train: null, test: null, batchSize: null, resumedAt: null,
  });
  const lines = readText(file).split('\n');
  const bytes = new Map<string, { sent: number; received: number }>();
  let lastStep = 0;
  lines.forEach((text, i) => {
    if (text.trim() === '') return;
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw dataError(file, `line ${i + 1}`, (e as Error).message);
    }
    const parsed = Line.safeParse(json);
    if (!parsed.success) throw dataError(file, `line ${i + 1}`, parsed.error.issues.map((x) => `${x.path.join('.') || 'line'}: ${x.message}`).join('; '));
    const l = parsed.data;
    if (l.type === 'epoch') {
      // NaN (no evaluation) is written as null by JSON.stringify.
      history.addEpoch({ epoch: l.epoch, step: l.step, trainLoss: l.trainLoss, testLoss: l.testLoss, testAccuracy: l.testAccuracy, samplesPerSec: l.samplesPerSec, seconds: l.seconds });
      return;
    }
    const perStep = (v: number): number => v / l.steps;
    const computeMs = Math.max(0, ...Object.values(l.computeMs).map(perStep));
    const updateMs = perStep(l.reduceUpdateMs);
    const commMs = l.stepMs === undefined ? null : Math.max(0, perStep(l.stepMs) - computeMs - updateMs);
    history.addStep({ step: l.step, epoch: l.epoch, loss: l.loss, batchLoss: null, samplesPerSec: l.samplesPerSec, computeMs, commMs, updateMs, batches: null });
    for (const by of Object.keys(l.computeMs)) {
      const id = by.split('/')[0];
      if (id === 'local') history.upsertExecutor({ id, kind: 'local', address: 'the coordinator', threads: 0, bytesSent: 0, bytesReceived: 0, lastSeenMsAgo: null });
    }
    const seen = new Set<string>();
    for (const n of l.nodes ?? []) {
      seen.add(n.id);
      const b = bytes.get(n.id) ?? { sent: 0, received: 0 };
      b.sent += n.bytesSentPerStep * l.steps;
      b.received += n.bytesReceivedPerStep * l.steps;
      bytes.set(n.id, b);
      history.upsertExecutor({ id: n.id, kind: 'node', address: n.address, threads: n.threads, bytesSent: b.sent, bytesReceived: b.received, lastSeenMsAgo: n.lastSeenMsAgo });
    }
    for (const row of history.activeExecutors()) {
      if (row.kind === 'node' && !seen.has(row.id)) history.dropExecutor(row.id, 'left', `not in the file after step ${lastStep}`);
    }
    lastStep = l.step;
  });
  history.finish();
  return history;
}
