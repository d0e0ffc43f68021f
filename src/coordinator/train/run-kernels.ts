// The run's kernel backend: resolved once at the start and lowered, never raised, when a node that
// cannot run it joins, so that every shard of a step is computed the same way wherever it runs.

import { createKernels, resolveKernels, sharedBackend, type KernelBackend, type KernelChoice } from '../../core/kernels/index.js';
import type { Kernels } from '../../core/kernels/types.js';
import type { LocalPool } from '../../worker/pool/local-pool.js';

export class RunKernels {
  backend: KernelBackend;
  kernels: Kernels;
  /** A lower backend a joining node needs, applied at the next step boundary, and why. */
  private lowered: { backend: KernelBackend; why: string } | null = null;

  constructor(choice: KernelChoice, private readonly memory: WebAssembly.Memory, private readonly scratch: Float32Array, log: (line: string) => void) {
    const { backend, note } = resolveKernels(choice);
    if (note) log(note);
    this.backend = backend;
    this.kernels = createKernels(backend, memory, scratch);
  }

  /** The backend a joining node whose best is `best` must compute with (the run moves to it too). */
  admit(best: KernelBackend, who: string): KernelBackend {
    const current = this.lowered?.backend ?? this.backend;
    const shared = sharedBackend(current, best);
    if (shared !== current) this.lowered = { backend: shared, why: `${who} runs at best ${best}` };
    return shared;
  }

  /**
   * At a step boundary: moves this thread and the pool to a lowered backend. Returns the line to
   * log when it did, else null.
   */
  async apply(local: LocalPool | null, step: number): Promise<string | null> {
    if (!this.lowered) return null;
    const { backend, why } = this.lowered;
    this.lowered = null;
    const from = this.backend;
    this.backend = backend;
    this.kernels = createKernels(backend, this.memory, this.scratch);
    await local?.setKernels(this.kernels, backend);
    return `kernels: ${why}; the run computes with ${backend} instead of ${from} from step ${step} on (the bits then follow ${backend})`;
  }
}
