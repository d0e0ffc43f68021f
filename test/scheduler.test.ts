// The scheduler with fake executors, in this process: membership at step boundaries, the cut of a
// step over its members, a lost member's shards recomputed with the same recipe, and giving up.

import { describe, expect, it } from 'vitest';
import { Scheduler, type SchedulerOptions } from '../src/coordinator/train/scheduler.js';
import type { Executor, StepUpdate, ShardOutcome, ShardSpec } from '../src/worker/pool/executor.js';

/** An executor that answers at once (or fails, or waits) and records every call. */
class FakeExecutor implements Executor {
  readonly calls: { step: number; shards: readonly ShardSpec[]; fuse?: StepUpdate }[] = [];
  retired = false;
  closed = false;
  failAt = 0;
  delayMs = 0;
  fusable = false;

  constructor(readonly id: string, readonly threads: number) {}

  async run(step: number, shards: readonly ShardSpec[], fuse?: StepUpdate): Promise<ShardOutcome[]> {
    this.calls.push({ step, shards, fuse });
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    if (step === this.failAt) throw new Error('disconnected');
    return shards.map((s) => ({ slot: s.slot, lossSum: s.hi - s.lo, count: s.hi - s.lo, computeMs: 1, by: this.id }));
  }

  canFuse(): boolean {
    return this.fusable;
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

function scheduler(over: Partial<SchedulerOptions> = {}): Scheduler & { lines: string[] } {
  const lines: string[] = [];
  const s = new Scheduler({ balance: 'static', log: (l) => lines.push(l), maxFailuresPerStep: 4, ...over });
  return Object.assign(s, { lines });
}

describe('membership', () => {
  it('a member joining during step k takes part from step k + 1', async () => {
    const s = scheduler();
    const local = new FakeExecutor('local', 1);
    const node = new FakeExecutor('node1', 1);
    s.join(local, [0], true);
    local.delayMs = 20;
    const step1 = s.runStep(1, 0, 8);
    await new Promise((r) => setTimeout(r, 5));
    expect(s.nextStep).toBe(2);
    s.join(node, [1]);
    expect((await step1).plan).toEqual([{ member: 'local', rows: 8 }]);
    expect((await s.runStep(2, 8, 8)).plan).toEqual([{ member: 'local', rows: 4 }, { member: 'node1', rows: 4 }]);
    expect(node.calls.map((c) => c.step)).toEqual([2]);
  });

  it('a member that leaves between steps is not asked again; a retired one is dropped at the boundary', async () => {
    const s = scheduler();
    const local = new FakeExecutor('local', 1);
    const a = new FakeExecutor('node1', 1);
    const b = new FakeExecutor('node2', 1);
    s.join(local, [0], true);
    s.join(a, [1]);
    s.join(b, [2]);
    expect((await s.runStep(1, 0, 9)).plan.map((p) => p.member)).toEqual(['local', 'node1', 'node2']);
    s.leave(a);
    b.retired = true;
    expect((await s.runStep(2, 9, 9)).plan).toEqual([{ member: 'local', rows: 9 }]);
  });

  it('waits for minMembers before the first step, saying so', async () => {
    const s = scheduler({ minMembers: 2 });
    s.join(new FakeExecutor('local', 1), [0], true);
    let done = false;
    const step = s.runStep(1, 0, 4).then((o) => ((done = true), o));
    await new Promise((r) => setTimeout(r, 10));
    expect(done).toBe(false);
    expect(s.lines).toEqual(['waiting for 1 more worker node(s) before the first step']);
    s.join(new FakeExecutor('node1', 1), [1]);
    expect((await step).plan.map((p) => p.member)).toEqual(['local', 'node1']);
  });

  it('a wait for members ends when stopWaiting rejects', async () => {
    let stop: (e: Error) => void = () => {};
    const stopWaiting = new Promise<never>((_, reject) => (stop = reject));
    const s = scheduler({ stopWaiting });
    const step = s.runStep(1, 0, 4);
    stop(new Error('interrupted'));
    await expect(step).rejects.toThrow(/interrupted/);
    expect(s.lines).toEqual(['waiting for 1 more worker node(s) before the first step']);
  });
});

describe('the cut of a step', () => {
  it('static: rows in proportion to threads; one shard per local thread, one per node with a part per thread', async () => {
    const s = scheduler();
    const local = new FakeExecutor('local', 2);
    const node = new FakeExecutor('node1', 2);
    s.join(local, [0, 1], true);
    s.join(node, [2]);
    const out = await s.runStep(1, 100, 30);
    expect(out.plan).toEqual([{ member: 'local', rows: 15 }, { member: 'node1', rows: 15 }]);
    expect(out.shards).toEqual([
      { slot: 0, lo: 100, hi: 108, parts: 1 },
      { slot: 1, lo: 108, hi: 115, parts: 1 },
      { slot: 2, lo: 115, hi: 130, parts: 2 },
    ]);
    expect(out.outcomes.map((o) => [o.slot, o.by])).toEqual([[0, 'local'], [1, 'local'], [2, 'node1']]);
    expect(out.updated).toBe(false);
  });

  it('leaves out empty shards (fewer rows than threads)', async () => {
    const s = scheduler();
    s.join(new FakeExecutor('local', 3), [0, 1, 2], true);
    const out = await s.runStep(1, 0, 2);
    expect(out.shards).toEqual([{ slot: 0, lo: 0, hi: 1, parts: 1 }, { slot: 1, lo: 1, hi: 2, parts: 1 }]);
  });

  it('measured: the faster member gets more rows from the next step on', async () => {
    const s = scheduler({ balance: 'measured' });
    const fast = new FakeExecutor('node1', 1);
    const slow = new FakeExecutor('node2', 1);
    slow.delayMs = 30;
    s.join(fast, [0]);
    s.join(slow, [1]);
    expect((await s.runStep(1, 0, 64)).plan.map((p) => p.rows)).toEqual([32, 32]);
    const [f, w] = (await s.runStep(2, 64, 64)).plan.map((p) => p.rows);
    expect(f).toBeGreaterThan(w);
    expect(f + w).toBe(64);
  });

  it('fuses the update only with one member that can, passing the next step\'s shards when certain', async () => {
    const s = scheduler();
    const local = new FakeExecutor('local', 2);
    local.fusable = true;
    s.join(local, [0, 1], true);
    const fuse = { scale: 1 / 10 };
    const out = await s.runStep(1, 0, 10, fuse, { start: 10, rows: 6 });
    expect(out.updated).toBe(true);
    expect(local.calls[0].fuse).toEqual({ scale: 0.1, next: { shards: [{ slot: 0, lo: 10, hi: 13, parts: 1 }, { slot: 1, lo: 13, hi: 16, parts: 1 }], scale: 1 / 6 } });
    s.join(new FakeExecutor('node1', 1), [2]);
    const two = await s.runStep(2, 10, 6, fuse);
    expect(two.updated).toBe(false);
    expect(local.calls[1].fuse).toBeUndefined();
  });
});

describe('a member lost mid-step', () => {
  it('its shards are recomputed by the local pool with the same slots and recipe, in the same order', async () => {
    const s = scheduler();
    const local = new FakeExecutor('local', 1);
    const node = new FakeExecutor('node1', 2);
    node.failAt = 2;
    s.join(local, [0], true);
    s.join(node, [1]);
    await s.runStep(1, 0, 30);
    const out = await s.runStep(2, 30, 30);
    expect(s.lines).toEqual(['node node1 dropped during step 2 (disconnected); recomputing its shard elsewhere']);
    expect(node.closed).toBe(true);
    const lost = node.calls[1].shards;
    expect(local.calls.at(-1)).toMatchObject({ step: 2, shards: lost });
    expect(lost).toEqual([{ slot: 1, lo: 40, hi: 60, parts: 2 }]);
    expect(out.shards.map((x) => x.slot)).toEqual([0, 1]);
    expect(out.outcomes.map((o) => [o.slot, o.by])).toEqual([[0, 'local'], [1, 'local']]);
    expect((await s.runStep(3, 60, 30)).plan).toEqual([{ member: 'local', rows: 30 }]);
  });

  it('with no local pool another node takes the shard', async () => {
    const s = scheduler();
    const a = new FakeExecutor('node1', 1);
    const b = new FakeExecutor('node2', 1);
    a.failAt = 1;
    s.join(a, [0]);
    s.join(b, [1]);
    const out = await s.runStep(1, 0, 8);
    expect(out.outcomes.map((o) => [o.slot, o.by])).toEqual([[0, 'node2'], [1, 'node2']]);
  });

  it('gives up with NO_EXECUTORS past maxFailuresPerStep, and a local failure is not retried', async () => {
    const s = scheduler({ maxFailuresPerStep: 0 });
    const local = new FakeExecutor('local', 1);
    const node = new FakeExecutor('node1', 1);
    node.failAt = 1;
    s.join(local, [0], true);
    s.join(node, [1]);
    await expect(s.runStep(1, 0, 8)).rejects.toMatchObject({ code: 'NO_EXECUTORS', message: expect.stringMatching(/^step 1: 1 nodes failed during this step \(last: disconnected\); giving up$/) });

    const t = scheduler();
    const failing = new FakeExecutor('local', 1);
    failing.failAt = 1;
    t.join(failing, [0], true);
    await expect(t.runStep(1, 0, 8)).rejects.toThrow(/disconnected/);
    expect(t.lines).toEqual([]);
  });
});
