// Every error dptrain raises on purpose: a stable `code` for tests and callers, and a one-line
// message that names what is wrong and where (field, file, line, peer).

export const ERROR_CODES = [
  'CONFIG_INVALID', 'FILE_UNREADABLE', 'DATA_MALFORMED', 'WEIGHTS_MISMATCH', 'CHECKPOINT_CORRUPT', 'SHAPE_MISMATCH',
  'LABEL_OUT_OF_RANGE', 'WIRE_MALFORMED', 'WIRE_LENGTH_MISMATCH', 'WIRE_NOT_FINITE', 'WIRE_STALE', 'WIRE_UNEXPECTED',
  'WIRE_OVERSIZED', 'WIRE_FORBIDDEN', 'GRADIENT_OUTLIER', 'AUTH_FAILED', 'WORKER_FAILED', 'NO_EXECUTORS', 'INTERRUPTED',
  'OUTPUT_UNWRITABLE', 'WRITE_FAILED', 'RESUME_MISMATCH', 'KERNELS_UNAVAILABLE', 'WEIGHTS_UNDESCRIBED', 'NOT_A_CLASSIFIER', 'DIVERGED', 'ARENA_TOO_LARGE',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export class DptrainError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = 'DptrainError';
    this.code = code;
  }
}

export const dataError = (file: string, where: string, what: string): DptrainError =>
  new DptrainError('DATA_MALFORMED', `${file}: ${where}: ${what}`);

export const configError = (where: string, what: string): DptrainError =>
  new DptrainError('CONFIG_INVALID', `${where}: ${what}`);

export const unreadable = (file: string, cause: unknown): DptrainError =>
  new DptrainError('FILE_UNREADABLE', `${file}: cannot read: ${cause instanceof Error ? cause.message : String(cause)}`);

/** An output path found unusable before the first step (a usage error). */
export const outputUnwritable = (flag: string, path: string, reason: string): DptrainError =>
  new DptrainError('OUTPUT_UNWRITABLE', `${flag} ${path}: cannot write there (${reason})`);

/** A write that failed after the run began; `kept` says what is still on disk. */
export const writeFailed = (what: string, path: string, reason: string, kept: string): DptrainError =>
  new DptrainError('WRITE_FAILED', `cannot write ${what} ${path} (${reason}); ${kept}`);

/**
 * What a process tells a peer about its own failure: the code and a fixed sentence, never the
 * message, which may quote a local file or path. The message goes to the local log only.
 */
export function peerSafe(e: unknown): { code: ErrorCode | 'INTERNAL'; message: string } {
  const code = isDptrainError(e) ? e.code : 'INTERNAL';
  return { code, message: `the node failed (${code}); details are in its own log` };
}

export function isDptrainError(e: unknown): e is DptrainError {
  return e instanceof DptrainError;
}
