// Membership and the plan of each step: which executor computes which shard. Members change only at
// step boundaries (a node that joins mid-step starts at the next one). Shards are contiguous and in
// sample order; the reduction (a fixed pairwise tree over that order) is the same whoever computed
// a shard. A member lost mid-step has its shards, with the same recipe and slots, recomputed by the
// others, so the step's result is the same as if it had finished them.

import { DptrainError } from '../../core/errors.js';
import type { Executor, StepUpdate, ShardOutcome, ShardSpec } from '../../worker/pool/executor.js';
import { equalRanges, partition } from '../../core/partition.js';
import type { GradientGuard } from './gradient-guard.js';

export type Balance = 'static' | 'measured';

interface Member {
  readonly executor: Executor;
  /** The slots its shards land in: one per thread for the local pool, one for a node. */
  readonly slots: readonly number[];
  readonly local: boolean;
  /** Measured samples per millisecond (exponential moving average), for `measured` balance. */
  rate: number;
}

export interface StepPlanEntry {
  readonly member: string;
  readonly rows: number;
}

export interface StepOutcome {
  /** Shards in reduction order. */
  readonly shards: readonly ShardSpec[];
  /** Outcomes in the same order. */
  readonly outcomes: readonly ShardOutcome[];
  /** How many rows each member was given (the partition, for metrics and replay). */
  readonly plan: readonly StepPlanEntry[];
  /** True when the update was fused into the shards' tasks (already in the other weights copy). */
  readonly updated: boolean;
}

export interface SchedulerOptions {
  readonly balance: Balance;
  readonly log: (line: string) => void;
  /** Resolves (or rejects) when waiting for a member should end, e.g. on Ctrl-C. */
  readonly stopWaiting?: Promise<never>;
  /** Members lost within one step before the step (and the run) gives up. */
  readonly maxFailuresPerStep: number;
  /** Members to wait for before the first step (e.g. every node of a fixed cluster). */
  readonly minMembers?: number;
  /** The first step this scheduler will run (after a resume, the checkpoint's step + 1). */
  readonly firstStep?: number;
  /** Judges each step's remote gradients before the step is reduced (absent: off). */
  readonly guard?: GradientGuard;
  /** Runs once a step's members are admitted, before its shards are cut (it may drop members). */
  readonly beforeStep?: (step: number) => Promise<void>;
}

const RATE_SMOOTHING = 0.3;

export class Scheduler {
  private members: Member[] = [];
  private pending: Member[] = [];
  /** Everyone waiting for a member to join (two lost shards may wait at once). */
  private waiters: (() => void)[] = [];
  private readonly opts: SchedulerOptions;

  constructor(opts: SchedulerOptions) {
    this.opts = opts;
    this.next = opts.firstStep ?? 1;
  }

  private started = false;
  private next = 1;

  /** The step a member joining now takes part in first. */
  get nextStep(): number {
    return this.next;
  }

  /** Adds an executor; it takes part from the next step on. */
  join(executor: Executor, slots: readonly number[], local = false): void {
    this.pending.push({ executor, slots, local, rate: 0 });
    for (const wake of this.waiters.splice(0)) wake();
  }

  /** Removes an executor (its current shards, if any, are recomputed by the others). */
  leave(executor: Executor): void {
    this.members = this.members.filter((m) => m.executor !== executor);
    this.pending = this.pending.filter((m) => m.executor !== executor);
  }

  private failures = 0;
  /** This step's outcomes by slot, and which member computed each. */
  private outcomes = new Map<number, ShardOutcome>();
  private computedBy = new Map<number, Member>();

  /**
   * `fuse`: the update to fold into the shards' tasks where the only member can (see
   * StepOutcome.updated). `ahead`: the rows of the step after this one, certain to run next (same
   * epoch, nothing between the two): a fused step's executor may start on it without waiting.
   */
  async runStep(step: number, start: number, rows: number, fuse?: StepUpdate, ahead?: { start: number; rows: number }): Promise<StepOutcome> {
    this.failures = 0;
    await this.admit();
    await this.opts.beforeStep?.(step);
    this.next = step + 1;
    const members = [...this.members];
    const { shards, byMember, plan } = this.cut(members, start, rows);
    const outcomes = (this.outcomes = new Map<number, ShardOutcome>());
    this.computedBy = new Map();
    // Fused only with one member: its tasks then wait for nothing outside it.
    const only = members.length === 1 ? members[0] : null;
    if (fuse && only && shards.length > 0 && only.executor.canFuse?.(shards)) {
      // The next step's shards are known now if nobody can join or leave before it: one local member.
      const next = ahead && only.local && this.pending.length === 0 ? { shards: this.cut(members, ahead.start, ahead.rows).shards, scale: 1 / ahead.rows } : undefined;
      const outs = await only.executor.run(step, shards, next ? { ...fuse, next } : fuse);
      for (const o of outs) outcomes.set(o.slot, o);
      // The slots still hold this step's sums (nothing is posted ahead while nodes may join).
      this.opts.guard?.outlier(shards.map((s) => ({ slot: s.slot, rows: s.hi - s.lo, remote: false })));
      return { shards, outcomes: shards.map((s) => outcomes.get(s.slot)!), plan, updated: true };
    }
    await Promise.all(members.map((m, i) => this.runOn(m, step, byMember[i], outcomes)));
    await this.guard(step, shards);
    return { shards, outcomes: shards.map((s) => outcomes.get(s.slot)!), plan, updated: false };
  }

  /** Rows [start, start + rows) cut over the members: by threads, or by measured speed. */
  private cut(members: readonly Member[], start: number, rows: number): { shards: ShardSpec[]; byMember: ShardSpec[][]; plan: StepPlanEntry[] } {
    const weights = members.map((m) => (this.opts.balance === 'measured' && m.rate > 0 ? m.rate : m.executor.threads));
    const sizes = partition(rows, weights);
    const plan: StepPlanEntry[] = members.map((m, i) => ({ member: m.executor.id, rows: sizes[i] }));
    const shards: ShardSpec[] = [];
    const byMember: ShardSpec[][] = [];
    let lo = start;
    members.forEach((m, i) => {
      // The local pool cuts its rows into one single-part shard per thread; a node gets one shard
      // whose recipe has as many parts as it has threads.
      const own = m.local
        ? equalRanges(lo, sizes[i], m.slots.length).map((r, j) => ({ slot: m.slots[j], ...r, parts: 1 }))
        : [{ slot: m.slots[0], lo, hi: lo + sizes[i], parts: m.executor.threads }];
      lo += sizes[i];
      const nonEmpty = own.filter((s) => s.hi > s.lo);
      byMember.push(nonEmpty);
      shards.push(...nonEmpty);
    });
    return { shards, byMember, plan };
  }

  private async runOn(m: Member, step: number, shards: readonly ShardSpec[], outcomes: Map<number, ShardOutcome>): Promise<void> {
    if (shards.length === 0) return;
    const t0 = performance.now();
    try {
      const outs = await m.executor.run(step, shards);
      for (const o of outs) {
        outcomes.set(o.slot, o);
        this.computedBy.set(o.slot, m);
      }
      const rows = shards.reduce((a, s) => a + s.hi - s.lo, 0);
      const rate = rows / Math.max(1e-3, performance.now() - t0);
      m.rate = m.rate === 0 ? rate : (1 - RATE_SMOOTHING) * m.rate + RATE_SMOOTHING * rate;
    } catch (e) {
      if (m.local) throw e;
      await this.replace(m, step, shards, outcomes, (e as Error).message);
    }
  }

  /** Drops node `m` from the run and has its shards of this step recomputed by another member. */
  private async replace(m: Member, step: number, shards: readonly ShardSpec[], outcomes: Map<number, ShardOutcome>, reason: string): Promise<void> {
    if (++this.failures > this.opts.maxFailuresPerStep)
      throw new DptrainError('NO_EXECUTORS', `step ${step}: ${this.failures} nodes failed during this step (last: ${reason}); giving up`);
    this.opts.log(`node ${m.executor.id} dropped during step ${step} (${reason}); recomputing its shard elsewhere`);
    this.leave(m.executor);
    if (m.executor.drop) m.executor.drop(reason);
    else void m.executor.close();
    const other = await this.survivor();
    await this.runOn(other, step, shards, outcomes);
  }

  /** Until the guard finds no outlier, the member that computed it is dropped and its shards recomputed. */
  private async guard(step: number, shards: readonly ShardSpec[]): Promise<void> {
    const guard = this.opts.guard;
    if (!guard) return;
    for (;;) {
      const judged = shards.map((s) => ({ slot: s.slot, rows: s.hi - s.lo, remote: !this.computedBy.get(s.slot)!.local }));
      const bad = guard.outlier(judged);
      if (!bad) return;
      const m = this.computedBy.get(shards[bad.index].slot)!;
      await this.replace(m, step, shards.filter((s) => this.computedBy.get(s.slot) === m), this.outcomes, bad.reason);
    }
  }

  /** A member to take over lost shards: the local pool first, else any node; waits for a join if none. */
  private async survivor(): Promise<Member> {
    for (;;) {
      const live = [...this.members, ...this.pending].filter((x) => !x.executor.retired);
      const m = live.find((x) => x.local) ?? live[0];
      if (m) return m;
      await this.waitForJoin('no executor left: waiting for a worker node to connect');
    }
  }

  private async admit(): Promise<void> {
    this.members = this.members.filter((m) => !m.executor.retired);
    if (!this.started) {
      const want = this.opts.minMembers ?? 1;
      while (this.members.length + this.pending.length < want) await this.waitForJoin(`waiting for ${want - this.members.length - this.pending.length} more worker node(s) before the first step`);
      this.started = true;
    }
    while (this.members.length + this.pending.length === 0) await this.waitForJoin('no executor left: waiting for a worker node to connect');
    this.members.push(...this.pending);
    this.pending = [];
  }

  private async waitForJoin(why: string): Promise<void> {
    this.opts.log(why);
    const joined = new Promise<void>((res) => this.waiters.push(res));
    await (this.opts.stopWaiting ? Promise.race([joined, this.opts.stopWaiting]) : joined);
  }
}
