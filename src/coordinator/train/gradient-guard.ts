// The gradient guard: refuses a remote node's shard whose gradient norm per row is far outside
// what the step's other shards and the recent steps show. It only reads norms and never alters a
// gradient, so an honest run keeps its bits; a refused shard's node is dropped and the shard
// recomputed by its recipe, as for any failed node.

import { sumOfSquares } from '../../core/norm.js';

/** Default bound: a node's per-row gradient norm may be this many times the reference. */
export const DEFAULT_MAX_GRAD_RATIO = 100;
/**
 * Steps whose largest per-row norm joins the reference. The largest, not a median: late in training
 * an honest shard holding the step's one misclassified sample is far above the typical shard, but
 * such shards recur, so a recent step has seen one like it.
 */
const RECENT_STEPS = 8;
// Recurring is not enough near a perfect fit: the typical shard's norm falls by orders of magnitude
// and an honest shard with one hard sample can stand far above the last few steps. The largest
// per-row norm the run has accepted (its first steps, before anything was learnt) bounds what an
// honest shard shows, so it joins the reference too: a poisoned gradient is judged against it.

export interface GuardedShard {
  readonly slot: number;
  readonly rows: number;
  /** Only remote shards are judged; the coordinator's own threads run its own code. */
  readonly remote: boolean;
  /** Σ g² of the slot when already known (measured while a node's sum landed). */
  readonly sumSquares?: number;
}

export class GradientGuard {
  private readonly recent: number[] = [];
  private largest = 0;

  /** `slots`: the arena's gradient slots, where each shard's sum lands. */
  constructor(readonly maxRatio: number, private readonly slots: readonly Float32Array[]) {}

  /**
   * The first remote shard whose per-row norm exceeds maxRatio × the largest of the other shards'
   * per-row norms, the recent steps' largest and the run's largest, with the reason; null when none does
   * (the step is then accepted into the recent history). A step of one shard, or of the
   * coordinator's own shards only, is not judged, only recorded.
   */
  outlier(shards: readonly GuardedShard[]): { index: number; reason: string } | null {
    const norms = shards.map((s) => this.perRowNorm(s));
    // Steps it does not judge still teach it what honest norms look like (a run's first steps
    // are often its own threads' alone, before any node joined).
    for (let i = 0; shards.length >= 2 && i < shards.length; i++) {
      if (!shards[i].remote) continue;
      const reference = Math.max(...norms.filter((_, j) => j !== i), ...this.recent, this.largest);
      if (!(reference > 0) || norms[i] <= this.maxRatio * reference) continue;
      const ratio = norms[i] / reference;
      return {
        index: i,
        reason: `gradient norm per row ${norms[i].toExponential(2)} is ${ratio.toExponential(2)} × the reference ${reference.toExponential(2)} (bound ${this.maxRatio} ×, --max-grad-ratio)`,
      };
    }
    this.recent.push(Math.max(...norms));
    this.largest = Math.max(this.largest, ...norms);
    if (this.recent.length > RECENT_STEPS) this.recent.shift();
    return null;
  }

  private perRowNorm(s: GuardedShard): number {
    return Math.sqrt(s.sumSquares ?? sumOfSquares(this.slots[s.slot])) / Math.max(1, s.rows);
  }
}
