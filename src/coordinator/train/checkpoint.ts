// Checkpoints: weights (with PyTorch names, so a checkpoint is also a weights file), optimizer state,
// and in the safetensors metadata the loop's position (step, epoch, batch, the epoch's shuffle RNG
// state, the config), the run it belongs to and the run's epoch history, with a SHA-256 of the
// tensor data. Written atomically; the newest two of the same run kept, other runs' files untouched.
// A file that fails to decode or verify is refused, and the previous one is used with a warning.

import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { makeDir, writeFileAtomic } from '../../core/io/atomic-file.js';
import { DptrainError } from '../../core/errors.js';
import type { ParamLayout } from '../../core/layout.js';
import type { RngState } from '../../core/rng.js';
import type { EpochRecord } from './records.js';
import { decodeSafetensors, encodeSafetensors, loadTensorsInto, namedTensors, type TensorRecord } from '../../core/io/safetensors.js';

export interface LoopPosition {
  /** Optimizer steps taken so far. */
  readonly step: number;
  /** The epoch in progress (0-based) and the next batch in it. */
  readonly epoch: number;
  readonly batch: number;
  /** The shuffle RNG's state at the start of that epoch (before its permutation was drawn). */
  readonly epochRng: RngState;
  /** Running train-loss sum and sample count of the epoch so far. */
  readonly epochLossSum: number;
  readonly epochCount: number;
}

export interface CheckpointMeta extends LoopPosition {
  readonly version: 1;
  /** The validated config, as JSON. */
  readonly config: unknown;
  /** The run's id and its config file's name (see run-id.ts); absent in older checkpoints. */
  readonly runId?: string;
  readonly configName?: string;
  /** The fields that make the run, data paths resolved. */
  readonly run?: Readonly<Record<string, unknown>>;
  /** The finished epochs so far, one row each (see packHistory). */
  readonly history?: readonly HistoryRow[];
}

/** [epoch, step, trainLoss, testLoss, testAccuracy, samplesPerSec, seconds]; NaN is stored as null. */
export type HistoryRow = readonly (number | null)[];

export function packHistory(history: readonly EpochRecord[]): HistoryRow[] {
  const n = (x: number | null): number | null => (x !== null && Number.isFinite(x) ? x : null);
  return history.map((h) => [h.epoch, h.step, n(h.trainLoss), n(h.test.loss), n(h.test.accuracy), n(h.samplesPerSec), n(h.seconds)]);
}

/** The epochs a checkpoint carries, as records (no confusion matrices: those are not stored). */
export function unpackHistory(rows: readonly HistoryRow[] | undefined, testN: number): EpochRecord[] {
  const num = (x: number | null | undefined): number => (typeof x === 'number' ? x : NaN);
  return (rows ?? []).map(([epoch, step, trainLoss, testLoss, accuracy, samplesPerSec, seconds]) => ({
    epoch: num(epoch), step: num(step), trainLoss: num(trainLoss),
    test: { loss: num(testLoss), accuracy: typeof accuracy === 'number' ? accuracy : null, confusion: null, n: testN },
    samplesPerSec: num(samplesPerSec), seconds: num(seconds), stopping: false,
  }));
}

const KEEP = 2;
const PREFIX = 'ckpt-';
const SUFFIX = '.safetensors';
const stateName = (i: number): string => `optimizer.state.${i}`;

/** ckpt-STEP.safetensors; with the run id appended when another run's file holds that name. */
export function checkpointPath(dir: string, step: number, runId?: string): string {
  const plain = join(dir, `${PREFIX}${String(step).padStart(9, '0')}${SUFFIX}`);
  if (runId === undefined || !existsSync(plain) || checkpointRunId(plain) === runId) return plain;
  return join(dir, `${PREFIX}${String(step).padStart(9, '0')}-${runId.slice(0, 8)}${SUFFIX}`);
}

/**
 * Writes the checkpoint, then removes the same run's older ones past the newest two. A failed write
 * throws and leaves every earlier file as it was. `extra`: more metadata (the model's description).
 */
export function writeCheckpoint(
  dir: string, layout: ParamLayout, params: Float32Array, state: readonly Float32Array[], meta: CheckpointMeta, extra: Record<string, string> = {},
): string {
  makeDir(dir);
  const tensors = namedTensors(layout, params);
  state.forEach((s, i) => tensors.set(stateName(i), { shape: [layout.size], data: s.subarray(0, layout.size) }));
  // The digest covers the data section exactly as written (little-endian F32, tensors in order).
  const digest = digestOf([...tensors.values()].map((t) => new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength)));
  const chunks = encodeSafetensors(tensors, { ...extra, dptrain: JSON.stringify(meta), sha256: digest });
  const path = checkpointPath(dir, meta.step, meta.runId);
  writeFileAtomic(path, chunks);
  const ours = listCheckpoints(dir).filter((f) => checkpointRunId(f) === meta.runId);
  for (const old of ours.slice(0, -KEEP)) rmSync(old, { force: true });
  return path;
}

/** Checkpoint files in the folder, oldest first. */
export function listCheckpoints(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names.filter((n) => n.startsWith(PREFIX) && n.endsWith(SUFFIX)).sort().map((n) => join(dir, n));
}

/**
 * A checkpoint's metadata from its header alone (no data read, no checksum): enough to tell whose
 * it is. Null when the file is not a readable dptrain checkpoint.
 */
export function readCheckpointMeta(path: string): CheckpointMeta | null {
  let fd = -1;
  try {
    fd = openSync(path, 'r');
    const head = Buffer.alloc(8);
    if (readSync(fd, head, 0, 8, 0) !== 8) return null;
    const headerLen = Number(head.readBigUInt64LE(0));
    if (headerLen > 100 * 1024 * 1024) return null;
    const header = Buffer.alloc(headerLen);
    if (readSync(fd, header, 0, headerLen, 8) !== headerLen) return null;
    const md = (JSON.parse(header.toString('utf8')) as { __metadata__?: Record<string, string> }).__metadata__;
    return md?.dptrain ? (JSON.parse(md.dptrain) as CheckpointMeta) : null;
  } catch {
    return null;
  } finally {
    if (fd >= 0) closeSync(fd);
  }
}

function checkpointRunId(path: string): string | undefined {
  return readCheckpointMeta(path)?.runId;
}

export interface LoadedCheckpoint {
  readonly path: string;
  readonly meta: CheckpointMeta;
  readonly tensors: Map<string, TensorRecord>;
}

export function readCheckpoint(path: string): LoadedCheckpoint {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (e) {
    throw new DptrainError('CHECKPOINT_CORRUPT', `${path}: cannot read: ${(e as Error).message}`);
  }
  let tensors: Map<string, TensorRecord>;
  try {
    tensors = decodeSafetensors(buf, path);
  } catch (e) {
    throw new DptrainError('CHECKPOINT_CORRUPT', (e as Error).message);
  }
  const headerLen = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + headerLen).toString('utf8')) as { __metadata__?: Record<string, string> };
  const md = header.__metadata__;
  if (!md?.dptrain || !md.sha256) throw new DptrainError('CHECKPOINT_CORRUPT', `${path}: not a dptrain checkpoint (no dptrain metadata)`);
  const data = buf.subarray(8 + headerLen);
  if (digestOf([data]) !== md.sha256) throw new DptrainError('CHECKPOINT_CORRUPT', `${path}: checksum mismatch (the file was damaged or partly written)`);
  let meta: CheckpointMeta;
  try {
    meta = JSON.parse(md.dptrain) as CheckpointMeta;
  } catch {
    throw new DptrainError('CHECKPOINT_CORRUPT', `${path}: metadata is not valid JSON`);
  }
  if (meta.version !== 1 || !Number.isInteger(meta.step) || !Array.isArray(meta.epochRng))
    throw new DptrainError('CHECKPOINT_CORRUPT', `${path}: metadata lacks the loop position`);
  return { path, meta, tensors };
}

/**
 * The newest of `files` (oldest first) that reads and verifies; `warn` hears about each newer one
 * that did not. Null when none does.
 */
export function newestValid(files: readonly string[], warn: (line: string) => void): LoadedCheckpoint | null {
  for (let i = files.length - 1; i >= 0; i--) {
    try {
      return readCheckpoint(files[i]);
    } catch (e) {
      warn(`warning: skipping checkpoint ${(e as Error).message}`);
    }
  }
  return null;
}

/** Copies a checkpoint's weights and optimizer state into the arena's buffers. */
export function restoreCheckpoint(c: LoadedCheckpoint, layout: ParamLayout, params: Float32Array, state: readonly Float32Array[]): void {
  const weights = new Map([...c.tensors].filter(([name]) => !name.startsWith('optimizer.')));
  loadTensorsInto(weights, c.path, layout, params);
  state.forEach((s, i) => {
    const t = c.tensors.get(stateName(i));
    if (!t || t.data.length !== layout.size)
      throw new DptrainError('CHECKPOINT_CORRUPT', `${c.path}: optimizer state ${i} is missing or of the wrong size (was the optimizer changed?)`);
    s.set(t.data);
  });
}

function digestOf(chunks: readonly Uint8Array[]): string {
  const h = createHash('sha256');
  for (const c of chunks) h.update(c);
  return h.digest('hex');
}
