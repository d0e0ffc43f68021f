// Picks a kernel backend: `native` (the Node-API addon, AVX2 or AVX-512 chosen at run time), `wasm`
// (WebAssembly SIMD over the arena memory), `ts` (plain TypeScript, the fallback), or `auto` (native
// when built and the CPU supports it, else wasm when the runtime has SIMD and the module exists,
// else ts). A run resolves its choice once (resolveKernels) and hands the concrete backend to every
// thread and node, since the native paths differ in their bits.

import { DptrainError } from '../errors.js';
import { createNativeKernels, nativeKernelsAvailable } from './native.js';
import { createTsKernels } from './ts.js';
import type { KernelBackend } from './backends.js';
import type { F32, Kernels } from './types.js';
import { createWasmKernels, loadWasmModule } from './wasm.js';

export type KernelChoice = 'auto' | 'native' | 'wasm' | 'ts';

export const KERNEL_CHOICES: readonly KernelChoice[] = ['auto', 'native', 'wasm', 'ts'];

export { BACKENDS, sharedBackend, type KernelBackend } from './backends.js';

/** Whether the wasm backend can be created here (SIMD supported and dist/wasm/kernels.wasm built). */
export function wasmKernelsAvailable(): boolean {
  return loadWasmModule() !== null;
}

/**
 * The concrete backend of a choice here, and (for auto without native) one line saying why native
 * was not used. `native` without the addon or the CPU for it is a KERNELS_UNAVAILABLE error.
 */
export function resolveKernels(choice: KernelChoice | KernelBackend): { backend: KernelBackend; note: string | null } {
  if (choice === 'ts' || choice === 'wasm') return { backend: choice, note: null };
  const forced = choice === 'native-avx2' ? 'avx2' : choice === 'native-avx512' ? 'avx512' : undefined;
  const native = nativeKernelsAvailable(forced);
  if (native.ok) return { backend: `native-${native.isa}`, note: null };
  if (choice !== 'auto') throw new DptrainError('KERNELS_UNAVAILABLE', `--kernels ${choice}: native kernels unavailable: ${native.why}`);
  const fallback = wasmKernelsAvailable() ? 'wasm' : 'ts';
  return { backend: fallback, note: `native kernels unavailable (${native.why}); using ${fallback}` };
}

/** The kernels of one thread, over its arena memory and its workspace's scratch. */
export function createKernels(choice: KernelChoice | KernelBackend, memory: WebAssembly.Memory, scratch: F32): Kernels {
  const { backend } = resolveKernels(choice);
  if (backend === 'ts') return createTsKernels(scratch);
  if (backend === 'wasm') return createWasmKernels(memory, scratch);
  return createNativeKernels(memory, scratch, backend === 'native-avx2' ? 'avx2' : 'avx512');
}
