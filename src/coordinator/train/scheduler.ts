// Membership and the plan of each step: which executor computes which shard. Members change only at
// step boundaries (a node that joins mid-step starts at the next one). Shards are contiguous and in
// sample order; the reduction (a fixed pairwise tree over that order) is the same whoever computed
// a shard. A member lost mid-step has its shards, with the same recipe and slots, recomputed by the
// others, so the step's result is the same as if it had finished them.

import { DptrainError } from '../../core/errors.js';
import { ShardsLost, type Executor, type StepUpdate, type ShardOutcome, type ShardSpec } from '../../worker/pool/executor.js';
import { equalRanges, partition } from '../../core/partition.js';
import type { Block } from '../../core/pairwise.js';
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
  /**
   * The slots to reduce, in shard order: each shard's own, but for a block of a reduction tree the
   * block's sum in its first shard's slot and the zero slot (-0, the identity of addition) for its
   * others, so the same pairwise tree gives the same bits.
   */
  readonly reduceSlots: readonly number[];
}

/** Cuts a step's remote shards into blocks of a reduction tree (absent: every node answers the coordinator). */
export interface TreePlanner {
  /** `owners[i]` computes `shards[i]`; blocks (of two or more shards) by position in `shards`. */
  plan(shards: readonly ShardSpec[], owners: readonly Executor[]): readonly Block[];
  /** A slot holding -0 everywhere, never written by anything else. */
  readonly zeroSlot: number;
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
  /** Runs blocks of nodes as reduction trees (`--fanout`). */
  readonly tree?: TreePlanner;
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
      return { shards, outcomes: shards.map((s) => outcomes.get(s.slot)!), plan, updated: true, reduceSlots: shards.map((s) => s.slot) };
    }
    const owners = members.flatMap((m, i) => byMember[i].map(() => m));
    const blocks = this.opts.tree?.plan(shards, owners.map((m) => m.executor)) ?? [];
    const inBlock = new Set(blocks.flatMap((b) => shards.slice(b.at, b.at + b.size)));
    await Promise.all([
      ...members.map((m, i) => this.runOn(m, step, byMember[i].filter((s) => !inBlock.has(s)), outcomes)),
      ...blocks.map((b) => this.runBlock(step, shards.slice(b.at, b.at + b.size), owners.slice(b.at, b.at + b.size), outcomes)),
    ]);
    await this.guard(step, shards);
    const ordered = shards.map((s) => outcomes.get(s.slot)!);
    const zero = this.opts.tree?.zeroSlot;
    const reduceSlots = shards.map((s, i) => (ordered[i].sumOf === 0 && zero !== undefined ? zero : s.slot));
    return { shards, outcomes: ordered, plan, updated: false, reduceSlots };
  }

  /**
   * A block of a reduction tree: one request to its head, one sum back. When a node of the block
   * fails (it says whom, or the coordinator loses one), the failed nodes are dropped and the block's
   * shards recomputed one by one elsewhere, by their recipes: the same bits.
   */
  private async runBlock(step: number, shards: readonly ShardSpec[], owners: readonly Member[], outcomes: Map<number, ShardOutcome>): Promise<void> {
    const head = owners[0];
    const t0 = performance.now();
    const unwatch: (() => void)[] = [];
    try {
      // A node under the head that the coordinator loses (its own link to it) fails the block now.
      const lostUnder = new Promise<never>((_, reject) => {
        for (const m of owners.slice(1)) {
          const off = m.executor.watchGone?.((why) => reject(new ShardsLost([m.executor.id], `node ${m.executor.id}: ${why}`)));
          if (off) unwatch.push(off);
        }
      });
      const outs = await Promise.race([head.executor.runBlock!(step, shards, owners.map((m) => m.executor)), lostUnder]);
      outs.forEach((o, i) => {
        outcomes.set(o.slot, o);
        this.computedBy.set(o.slot, owners[i]);
      });
      const rows = shards.reduce((a, s) => a + s.hi - s.lo, 0);
      const rate = rows / shards.length / Math.max(1e-3, performance.now() - t0);
      for (const m of owners) m.rate = m.rate === 0 ? rate : (1 - RATE_SMOOTHING) * m.rate + RATE_SMOOTHING * rate;
    } catch (e) {
      head.executor.abandon?.((e as Error).message);
      const named = e instanceof ShardsLost ? owners.filter((m) => e.culprits.includes(m.executor.id)) : [];
      const culprits = named.length > 0 ? [...new Set(named)] : [head];
      for (const m of culprits) {
        if (++this.failures > this.opts.maxFailuresPerStep)
          throw new DptrainError('NO_EXECUTORS', `step ${step}: ${this.failures} nodes failed during this step (last: ${(e as Error).message}); giving up`);
        this.opts.log(`node ${m.executor.id} dropped during step ${step} (${(e as Error).message}); recomputing its block of ${shards.length} shards elsewhere`);
        this.leave(m.executor);
        if (m.executor.drop) m.executor.drop((e as Error).message);
        else void m.executor.close();
      }
      const other = await this.survivor();
      await this.runOn(other, step, shards, outcomes);
    } finally {
      for (const off of unwatch) off();
    }
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

  /**
   * Until the guard finds no outlier, the member that computed it is dropped and its shards
   * recomputed. A block's sum is judged as one: an outlier block is computed again shard by shard
   * by the same nodes, each answering the coordinator, so that the guard can tell which one it was.
   */
  private async guard(step: number, shards: readonly ShardSpec[]): Promise<void> {
    const guard = this.opts.guard;
    if (!guard) return;
    for (;;) {
      const units = shards.flatMap((s, i) => {
        const { sumOf: size = 1, sumSquares } = this.outcomes.get(s.slot)!;
        if (size === 0) return [];
        const block = shards.slice(i, i + size);
        return [{ slot: s.slot, rows: block.reduce((a, x) => a + x.hi - x.lo, 0), remote: !this.computedBy.get(s.slot)!.local, sumSquares, block }];
      });
      const bad = guard.outlier(units);
      if (!bad) return;
      const unit = units[bad.index];
      if (unit.block.length > 1) {
        this.opts.log(`step ${step}: a block of ${unit.block.length} shards is outside the gradient bound (${bad.reason}); its nodes answer one by one`);
        await Promise.all(unit.block.map((s) => this.runOn(this.computedBy.get(s.slot)!, step, [s], this.outcomes)));
        continue;
      }
      const m = this.computedBy.get(unit.slot)!;
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
