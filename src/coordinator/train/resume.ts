// Which checkpoint --resume continues from: the newest valid one of this run (same run id) in the
// folder. Other runs' files are skipped with a line saying whose they are; a checkpoint of the same
// config file whose run fields differ is refused, naming the field.

import { existsSync, readdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { DptrainError } from '../../core/errors.js';
import { listCheckpoints, newestValid, readCheckpointMeta, type CheckpointMeta, type LoadedCheckpoint } from './checkpoint.js';
import { firstDifference, MAY_CHANGE, type RunIdentity } from './run-id.js';

interface Foreign {
  readonly path: string;
  readonly meta: CheckpointMeta;
}

/** Config fields a resumed run may set anew, reported when they do change. */
const MAY_CHANGE_FIELDS = ['epochs', 'targetLoss', 'targetAccuracy'] as const;

/** `training`: this run's training fields, to report which of those that may change did. */
export function findResumeCheckpoint(dir: string, run: RunIdentity, training: Readonly<Record<string, unknown>>, log: (line: string) => void): LoadedCheckpoint | null {
  const mine: string[] = [];
  const others: Foreign[] = [];
  for (const path of listCheckpoints(dir)) {
    const meta = readCheckpointMeta(path);
    // A file whose header does not read may be ours, damaged: reading it in full says why it is skipped.
    if (!meta || meta.runId === run.id) mine.push(path);
    else others.push({ path, meta });
  }
  const found = newestValid(mine, log);
  if (!found) {
    // In the default layout (checkpoints/NAME-ID8) the same config under other run fields sits beside.
    const parent = dirname(dir);
    const runFolder = new RegExp(`^${run.name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-[0-9a-f]{8}$`);
    if (runFolder.test(basename(dir)) && existsSync(parent)) {
      for (const sibling of readdirSync(parent).filter((d) => runFolder.test(d) && join(parent, d) !== dir)) {
        for (const path of listCheckpoints(join(parent, sibling))) {
          const meta = readCheckpointMeta(path);
          if (meta) others.push({ path, meta });
        }
      }
    }
    refuseChangedRun(others, run);
  }
  for (const line of describeOthers(others, run)) log(line);
  if (found) {
    const m = found.meta;
    log(`resuming from ${found.path} at step ${m.step} (epoch ${m.epoch + 1}, batch ${m.batch})`);
    const was = (found.meta.config as { training?: Record<string, unknown> } | undefined)?.training ?? {};
    for (const k of MAY_CHANGE_FIELDS) {
      const d = firstDifference(was[k], training[k]);
      if (d) log(`training.${k} changed on resume: ${show(d.was)} → ${show(d.now)}`);
    }
  }
  return found;
}

/** The newest checkpoint of the same config file, if its run fields differ from this run's: refused. */
function refuseChangedRun(others: readonly Foreign[], run: RunIdentity): void {
  const same = others.filter((o) => o.meta.configName === run.name && o.meta.run).sort((a, b) => a.meta.step - b.meta.step).at(-1);
  const d = same && firstDifference(same.meta.run, run.fields);
  if (!same || !d) return;
  throw new DptrainError(
    'RESUME_MISMATCH',
    `--resume: ${d.field} is ${show(d.now)} here but ${show(d.was)} in ${same.path}; a resumed run may change only ${MAY_CHANGE}`,
  );
}

/** One line per other run found: its files and what sets it apart. */
function describeOthers(others: readonly Foreign[], run: RunIdentity): string[] {
  const byRun = new Map<string, Foreign[]>();
  for (const o of others) byRun.set(o.meta.runId ?? '', [...(byRun.get(o.meta.runId ?? '') ?? []), o]);
  return [...byRun.values()].map((files) => {
    const { meta } = files[0];
    const d = meta.run ? firstDifference(meta.run, run.fields) : null;
    const why = meta.runId === undefined ? 'written without a run id' : `config ${meta.configName ?? '?'}${d ? `, ${d.field} differs` : ''}`;
    return `skipping ${files.map((f) => f.path).join(', ')}: another run (${why})`;
  });
}

function show(v: unknown): string {
  return v === undefined ? '(unset)' : JSON.stringify(v);
}
