// The reduction tree (`--fanout k`): which nodes answer the coordinator and which answer another
// node. The tree is cut out of the step's own pairwise reduction tree over shard positions, so the
// weights do not depend on its shape: the remote shards are covered by the largest subtrees of T(n)
// (blocks), a block is headed by its first node, and a head adds the sums of the sub-blocks along
// its left edge (a binomial tree: a block of 2^j nodes has a head with j children). A node that
// does not listen (`dptrain worker` without --listen) heads nothing: its blocks are split until it
// does not have to. The coordinator talks to at most k heads when blocks can be merged that far
// (k ≥ nodes: every node answers the coordinator, the star). Rebuilt at every step boundary, from
// the step's members: joins and drops change it between steps only.

import { coverBlocks, halves, leftEdgeBlocks, type Block } from '../../core/pairwise.js';
import type { Executor, ShardSpec } from '../../worker/pool/executor.js';
import type { TreePlanner } from '../train/scheduler.js';
import { RemoteNode } from './node-handle.js';

export class ReductionTree implements TreePlanner {
  constructor(
    /** The most heads the coordinator sends to (each heads a block). */
    readonly fanout: number,
    readonly zeroSlot: number,
  ) {
    if (!(Number.isInteger(fanout) && fanout >= 1)) throw new RangeError(`fanout must be a whole number ≥ 1, got ${fanout}`);
  }

  plan(shards: readonly ShardSpec[], owners: readonly Executor[]): readonly Block[] {
    const n = shards.length;
    const node = (i: number): RemoteNode | null => (owners[i] instanceof RemoteNode ? owners[i] : null);
    const hosts = (i: number): boolean => node(i)?.listen !== undefined;
    // Whether every head inside `b` (a sub-block's first node, when the sub-block has others) listens.
    const hostable = (b: Block): boolean => b.size === 1 || (hosts(b.at) && halves(b).every(hostable));
    const usable = (b: Block): Block[] => (hostable(b) ? [b] : halves(b).flatMap(usable));

    // Runs of consecutive shards computed by distinct nodes.
    let blocks: Block[] = [];
    for (let i = 0; i < n; ) {
      if (!node(i)) {
        i++;
        continue;
      }
      let j = i + 1;
      while (j < n && node(j) && !owners.slice(i, j).includes(owners[j])) j++;
      blocks.push(...coverBlocks(n, i, j).flatMap(usable));
      i = j;
    }
    // More heads, down to the star, while the coordinator may send to more: the largest block first.
    while (blocks.length < this.fanout) {
      const widest = blocks.reduce((w, b, i) => (b.size > blocks[w].size ? i : w), 0);
      if (blocks.length === 0 || blocks[widest].size === 1) break;
      blocks = [...blocks.slice(0, widest), ...halves(blocks[widest]), ...blocks.slice(widest + 1)];
    }
    for (const b of blocks) this.place(b, null, owners);
    return blocks.filter((b) => b.size > 1);
  }

  /** Tells the block's nodes their parents: its head answers `parent`, the heads of its sub-blocks answer it. */
  private place(b: Block, parent: string | null, owners: readonly Executor[]): void {
    const head = owners[b.at] as RemoteNode;
    head.setParent(parent);
    for (const sub of leftEdgeBlocks(b.size)) this.place({ at: b.at + sub.at, size: sub.size }, head.listen!, owners);
  }
}
