// Timed operations on one-at-a-time lanes (a CPU, one direction of a link), run as an event loop
// would: in the order they become ready, each lane serving its work first come, first served.
// Pure arithmetic; the scale-out tree model builds its steps from it.

/** A resource that does one thing at a time. */
export interface Lane {
  free: number;
}

export const lane = (): Lane => ({ free: 0 });

interface Op {
  readonly dur: number;
  readonly lanes: readonly Lane[];
  readonly deps: readonly number[];
  readonly after: number[];
  waiting: number;
  end: number;
}

export class OpSchedule {
  private readonly ops: Op[] = [];
  private ran = false;

  /**
   * An operation of `dur` seconds that starts once every op in `deps` has ended and every lane in
   * `lanes` is free, and then holds them all (a transfer holds the sender's out-link and the
   * receiver's in-link). No lanes: a pure delay (latency), or work on a resource of its own.
   */
  add(dur: number, lanes: readonly (Lane | null)[], deps: readonly number[]): number {
    if (this.ran) throw new Error('OpSchedule: add after run');
    if (!(dur >= 0)) throw new RangeError(`OpSchedule: duration must be >= 0, got ${dur}`);
    const id = this.ops.length;
    for (const d of deps) if (!(d >= 0 && d < id)) throw new RangeError(`OpSchedule: op ${id} depends on unknown op ${d}`);
    this.ops.push({ dur, lanes: lanes.filter((l): l is Lane => l !== null), deps, after: [], waiting: deps.length, end: NaN });
    for (const d of deps) this.ops[d].after.push(id);
    return id;
  }

  /**
   * Runs every op and returns their end times. Ready order with ties broken by creation order:
   * ops are added parent before child, first child before the next, so that is the protocol's order.
   * An op becomes ready when its last dependency ends, never earlier than the op that made it
   * ready, so the ready times come out non-decreasing and each lane is served in arrival order.
   */
  run(): Float64Array {
    this.ran = true;
    const heap = new ReadyHeap();
    this.ops.forEach((op, id) => {
      if (op.waiting === 0) heap.push(0, id);
    });
    const ends = new Float64Array(this.ops.length);
    for (let next = heap.pop(); next; next = heap.pop()) {
      const op = this.ops[next.id];
      const start = op.lanes.reduce((t, l) => Math.max(t, l.free), next.ready);
      op.end = start + op.dur;
      ends[next.id] = op.end;
      for (const l of op.lanes) l.free = op.end;
      for (const a of op.after) {
        const child = this.ops[a];
        if (--child.waiting === 0) heap.push(child.deps.reduce((t, d) => Math.max(t, this.ops[d].end), 0), a);
      }
    }
    if (this.ops.some((op) => Number.isNaN(op.end))) throw new Error('OpSchedule: an op never became ready');
    return ends;
  }
}

/** A binary min-heap of (ready time, op id), ties by id. */
class ReadyHeap {
  private readonly items: { ready: number; id: number }[] = [];

  push(ready: number, id: number): void {
    const a = this.items;
    a.push({ ready, id });
    for (let i = a.length - 1; i > 0; ) {
      const p = (i - 1) >> 1;
      if (!this.less(a[i], a[p])) break;
      [a[i], a[p]] = [a[p], a[i]];
      i = p;
    }
  }

  pop(): { ready: number; id: number } | undefined {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last) {
      a[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && this.less(a[l], a[m])) m = l;
        if (r < a.length && this.less(a[r], a[m])) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m], a[i]];
        i = m;
      }
    }
    return top;
  }

  private less(x: { ready: number; id: number }, y: { ready: number; id: number }): boolean {
    return x.ready < y.ready || (x.ready === y.ready && x.id < y.id);
  }
}
