// The concrete kernel backends by name, and which of them two machines share: what a run sends its
// threads and nodes, and what a node reports it can run. No imports, so the wire format can use it.

/** A concrete backend, as its `name`: what a choice resolves to, and what a run sends its nodes. */
export type KernelBackend = 'ts' | 'wasm' | 'native-avx2' | 'native-avx512';

/**
 * Backends from the most common to the fastest: a machine that runs one runs every one before it
 * (an AVX-512 CPU has AVX2; wasm and ts need only Node), so two peers share the lower of their bests.
 */
export const BACKENDS: readonly KernelBackend[] = ['ts', 'wasm', 'native-avx2', 'native-avx512'];

/** The best backend that machines whose bests are `a` and `b` can both run. */
export function sharedBackend(a: KernelBackend, b: KernelBackend): KernelBackend {
  return BACKENDS[Math.min(BACKENDS.indexOf(a), BACKENDS.indexOf(b))];
}
