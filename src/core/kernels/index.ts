// Picks a kernel backend: `wasm` (WebAssembly SIMD over the arena memory), `ts` (plain TypeScript,
// the fallback), or `auto` (wasm when the runtime has SIMD and the compiled module exists).

import { createTsKernels } from './ts.js';
import type { F32, Kernels } from './types.js';
import { createWasmKernels, loadWasmModule } from './wasm.js';

export type KernelChoice = 'auto' | 'wasm' | 'ts';

export const KERNEL_CHOICES: readonly KernelChoice[] = ['auto', 'wasm', 'ts'];

/** Whether the wasm backend can be created here (SIMD supported and dist/wasm/kernels.wasm built). */
export function wasmKernelsAvailable(): boolean {
  return loadWasmModule() !== null;
}

/** The kernels of one thread, over its arena memory and its workspace's scratch. */
export function createKernels(choice: KernelChoice, memory: WebAssembly.Memory, scratch: F32): Kernels {
  if (choice === 'ts') return createTsKernels(scratch);
  if (choice === 'wasm' || wasmKernelsAvailable()) return createWasmKernels(memory, scratch);
  return createTsKernels(scratch);
}
