// What the dashboard page shows, kept in memory for the length of a run and bounded: step points
// (pairs merged, stride doubled, whenever the cap is reached, so the whole run stays on the chart
// at a coarser grain), every epoch, the executors' table and the last log lines. It knows nothing
// of HTTP; the server sends its snapshot and deltas, the page draws them.

/** One chart point: `stride` consecutive steps averaged (step: the last of them; epoch 1-based). */
export interface StepPoint {
  readonly step: number;
  readonly epoch: number;
  /** Mean loss of the epoch so far, as the progress bar shows it. */
  readonly loss: number;
  /** Loss of this step's batch alone (null when it cannot be told, e.g. from a metrics file). */
  readonly batchLoss: number | null;
  readonly samplesPerSec: number;
  /** The step split: the slowest shard's forward + backward, the rest of the wait, reduce + update. */
  readonly computeMs: number;
  readonly commMs: number | null;
  readonly updateMs: number;
  /** Seconds since the run began (null from a metrics file, which has no clock). */
  readonly t: number | null;
}

export interface EpochPoint {
  readonly epoch: number;
  readonly step: number;
  readonly trainLoss: number;
  readonly testLoss: number | null;
  readonly testAccuracy: number | null;
  readonly samplesPerSec: number;
  readonly seconds: number;
}

export type ExecutorState = 'active' | 'dropped' | 'left';

export interface ExecutorRow {
  readonly id: string;
  readonly kind: 'local' | 'node';
  address: string;
  threads: number;
  samplesPerSec: number | null;
  bytesSent: number;
  bytesReceived: number;
  /** Milliseconds since its last frame or heartbeat answer (null for local threads). */
  lastSeenMsAgo: number | null;
  state: ExecutorState;
  reason: string | null;
}

export interface StopCriteria {
  readonly epochs: number;
  readonly maxSteps: number | null;
  readonly targetLoss: number | null;
  readonly targetAccuracy: number | null;
}

export interface RunInfo {
  readonly live: boolean;
  /** What the page is showing: "live run" or the metrics file's path. */
  readonly source: string;
  readonly config: unknown;
  readonly stop: StopCriteria | null;
  backend: string | null;
  threads: number | null;
  params: number | null;
  train: number | null;
  test: number | null;
  batchSize: number | null;
  resumedAt: number | null;
}

export interface RunStatus {
  step: number;
  epoch: number;
  batches: number | null;
  elapsedS: number | null;
  etaS: number | null;
  finished: boolean;
}

export interface LogLine {
  readonly t: number | null;
  readonly text: string;
}

export interface Snapshot {
  readonly info: RunInfo;
  readonly status: RunStatus;
  readonly stride: number;
  readonly points: readonly StepPoint[];
  readonly epochs: readonly EpochPoint[];
  readonly executors: readonly ExecutorRow[];
  readonly log: readonly LogLine[];
}

/** What changed since a mark: `pointsFrom` is the index of points[0] in the whole list. */
export interface Delta {
  readonly status: RunStatus;
  readonly stride: number;
  readonly pointsFrom: number;
  readonly points: readonly StepPoint[];
  readonly epochsFrom: number;
  readonly epochs: readonly EpochPoint[];
  readonly executors: readonly ExecutorRow[];
  readonly logFrom: number;
  readonly log: readonly LogLine[];
}

export interface Mark {
  readonly stride: number;
  readonly points: number;
  readonly epochs: number;
  readonly logTotal: number;
}

/** A step as the history takes it in (from a StepRecord, or a metrics-file line per interval). */
export interface StepInput extends Omit<StepPoint, 't'> {
  readonly batches: number | null;
}

const MAX_LOG = 200;
// Rows of nodes that are gone, kept for the table: a node that reconnects often comes back under new ids.
const MAX_GONE = 50;
const PACE_EVERY_S = 0.1;
const PACE_WINDOW_S = 10;
// Samples/s of an executor over its last few steps: recent enough to show a slowdown.
const RATE_WINDOW = 20;

export class RunHistory {
  readonly info: RunInfo;
  readonly status: RunStatus = { step: 0, epoch: 0, batches: null, elapsedS: null, etaS: null, finished: false };
  private stride = 1;
  private points: StepPoint[] = [];
  private pending: StepPoint[] = [];
  private readonly epochList: EpochPoint[] = [];
  private readonly executors = new Map<string, ExecutorRow>();
  private readonly rates = new Map<string, { rows: number; ms: number }[]>();
  private readonly logLines: LogLine[] = [];
  private logTotal = 0;
  private readonly t0 = performance.now();
  // (elapsed s, step) now and then over the last seconds: the ETA's pace, evaluations included.
  private readonly pace: { t: number; step: number }[] = [];

  constructor(info: RunInfo, private readonly maxPoints = 2000) {
    if (!(maxPoints >= 4 && maxPoints % 2 === 0)) throw new Error('maxPoints must be an even number ≥ 4');
    this.info = info;
  }

  private elapsed(): number | null {
    return this.info.live ? (performance.now() - this.t0) / 1000 : null;
  }

  addStep(s: StepInput): void {
    const { batches, ...point } = s;
    this.pending.push({ ...point, t: this.elapsed() });
    if (this.pending.length >= this.stride) {
      this.points.push(mergePoints(this.pending));
      this.pending = [];
      if (this.points.length >= this.maxPoints) this.compact();
    }
    const st = this.status;
    st.step = s.step;
    st.epoch = s.epoch;
    if (batches !== null) st.batches = batches;
    const t = this.elapsed();
    if (t !== null && (this.pace.length === 0 || t - this.pace[this.pace.length - 1].t >= PACE_EVERY_S)) {
      this.pace.push({ t, step: s.step });
      while (this.pace.length > 2 && t - this.pace[0].t > PACE_WINDOW_S) this.pace.shift();
    }
    this.updateClock();
  }

  /** Per-shard work of one step, for each executor's samples/s. */
  addWork(by: string, rows: number, computeMs: number): void {
    const w = this.rates.get(by);
    if (!w) {
      // An executor's first shard includes its warm-up (threads starting, kernels compiling).
      this.rates.set(by, []);
      return;
    }
    w.push({ rows, ms: computeMs });
    if (w.length > RATE_WINDOW) w.shift();
    const row = this.executors.get(by);
    if (row) {
      const sum = w.reduce((a, x) => ({ rows: a.rows + x.rows, ms: a.ms + x.ms }), { rows: 0, ms: 0 });
      row.samplesPerSec = sum.ms > 0 ? (1000 * sum.rows) / sum.ms : null;
    }
  }

  addEpoch(e: EpochPoint): void {
    this.epochList.push(e);
    this.status.epoch = e.epoch;
    this.status.step = e.step;
    this.updateClock();
  }

  /** Adds or refreshes an executor's row; a row that comes back (a reconnect) is active again. */
  upsertExecutor(row: Omit<ExecutorRow, 'samplesPerSec' | 'state' | 'reason'> & Partial<Pick<ExecutorRow, 'state' | 'reason'>>): void {
    const have = this.executors.get(row.id);
    if (have) {
      Object.assign(have, row);
      if (row.state === undefined && have.state !== 'active') {
        have.state = 'active';
        have.reason = null;
      }
    } else {
      this.executors.set(row.id, { samplesPerSec: null, state: 'active', reason: null, ...row });
    }
  }

  /** Marks a node as gone; it stays in the table with its reason. */
  dropExecutor(id: string, state: Exclude<ExecutorState, 'active'>, reason: string): void {
    const row = this.executors.get(id);
    if (!row || row.state !== 'active') return;
    row.state = state;
    row.reason = reason;
    const gone = [...this.executors.values()].filter((r) => r.state !== 'active');
    for (const old of gone.slice(0, Math.max(0, gone.length - MAX_GONE))) {
      this.executors.delete(old.id);
      this.rates.delete(old.id);
    }
  }

  activeExecutors(): readonly ExecutorRow[] {
    return [...this.executors.values()].filter((r) => r.state === 'active');
  }

  addLog(text: string): void {
    this.logLines.push({ t: this.elapsed(), text });
    this.logTotal++;
    if (this.logLines.length > MAX_LOG) this.logLines.shift();
  }

  finish(): void {
    this.status.finished = true;
    this.status.etaS = 0;
    this.updateClock();
  }

  private updateClock(): void {
    const st = this.status;
    st.elapsedS = this.elapsed();
    const first = this.pace[0];
    const last = this.pace[this.pace.length - 1];
    if (st.finished || st.batches === null || !this.info.stop || !first || last.step <= first.step) return;
    // Steps left by the epochs criterion (or --max-steps if sooner); a target may stop the run earlier.
    let total = this.info.stop.epochs * st.batches;
    if (this.info.stop.maxSteps !== null) total = Math.min(total, this.info.stop.maxSteps);
    st.etaS = (Math.max(0, total - st.step) * (last.t - first.t)) / (last.step - first.step);
  }

  /** The clock moves while the run waits (for nodes, an evaluation) too. */
  private tick(): void {
    if (!this.status.finished) this.status.elapsedS = this.elapsed();
  }

  private compact(): void {
    const merged: StepPoint[] = [];
    for (let i = 0; i + 1 < this.points.length; i += 2) merged.push(mergePoints([this.points[i], this.points[i + 1]]));
    this.points = merged;
    this.stride *= 2;
  }

  mark(): Mark {
    return { stride: this.stride, points: this.points.length, epochs: this.epochList.length, logTotal: this.logTotal };
  }

  snapshot(): Snapshot {
    this.tick();
    return {
      info: this.info, status: { ...this.status }, stride: this.stride, points: [...this.points], epochs: [...this.epochList],
      executors: this.executorRows(), log: [...this.logLines],
    };
  }

  /** Everything after `since`; null when the points were merged meanwhile (send a snapshot). */
  deltaSince(since: Mark): Delta | null {
    if (since.stride !== this.stride) return null;
    this.tick();
    const logFrom = Math.max(since.logTotal, this.logTotal - this.logLines.length);
    return {
      status: { ...this.status }, stride: this.stride,
      pointsFrom: since.points, points: this.points.slice(since.points),
      epochsFrom: since.epochs, epochs: this.epochList.slice(since.epochs),
      executors: this.executorRows(),
      logFrom, log: this.logLines.slice(this.logLines.length - (this.logTotal - logFrom)),
    };
  }

  private executorRows(): ExecutorRow[] {
    return [...this.executors.values()].map((r) => ({ ...r }));
  }
}

/** Averages consecutive points; the step, epoch and clock are the last one's. */
function mergePoints(ps: readonly StepPoint[]): StepPoint {
  if (ps.length === 1) return ps[0];
  const mean = (f: (p: StepPoint) => number | null): number | null => {
    let sum = 0;
    for (const p of ps) {
      const v = f(p);
      if (v === null) return null;
      sum += v;
    }
    return sum / ps.length;
  };
  const last = ps[ps.length - 1];
  return {
    step: last.step, epoch: last.epoch, t: last.t,
    loss: mean((p) => p.loss)!, batchLoss: mean((p) => p.batchLoss), samplesPerSec: mean((p) => p.samplesPerSec)!,
    computeMs: mean((p) => p.computeMs)!, commMs: mean((p) => p.commMs), updateMs: mean((p) => p.updateMs)!,
  };
}
