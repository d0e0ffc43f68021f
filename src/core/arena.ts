// The arena: every hot buffer of a process (weights, reduced gradient, optimizer state, one gradient
// slot per shard, and one workspace per shard: its input rows, targets, activations, backprop
// buffers and GEMM scratch) is a view into ONE shared WebAssembly.Memory, whose buffer is a
// SharedArrayBuffer. Threads attach to it without copies and the WebAssembly kernels work on it in
// place. The layout is plain data (postMessage-able) computed from the model once; nothing moves.
// Weights and optimizer state come twice: an update reads one copy and writes the other, so a slice
// of it re-run after a thread died mid-update computes the same bits (nothing was overwritten).

import { freemem, totalmem } from 'node:os';
import { DptrainError } from './errors.js';
import { paramLayout } from './layout.js';
import type { ModelSpec } from './spec.js';
import { isClassIndexLoss } from './spec.js';
import { tsScratchFloats } from './kernels/ts.js';
import { wasmScratchFloats } from './kernels/wasm.js';
import { nativeScratchFloats } from './kernels/native.js';
import { activationOf } from './spec.js';

/** A region of the arena: byte offset and length in float32 elements. */
export interface Region {
  readonly offset: number;
  readonly length: number;
}

/** One shard's buffers: as regions in the layout (T = Region) or as views (T = Float32Array). */
export interface WorkspaceOf<T> {
  /** The shard's input rows [maxRows × nIn]. */
  readonly x: T;
  /** The shard's targets: [maxRows] class indices or [maxRows × nOut] values. */
  readonly y: T;
  /** Pre-activations of each layer [maxRows × nOut_l]. */
  readonly z: readonly T[];
  /** Post-activations of each layer (the same region as z where the activation is the identity). */
  readonly h: readonly T[];
  /** Two backprop buffers [maxRows × maxWidth], used alternately for dZ and dH. */
  readonly d0: T;
  readonly d1: T;
  /** Packing scratch of the GEMM kernels. */
  readonly scratch: T;
}

export type WorkspaceLayout = WorkspaceOf<Region>;
export type Workspace = WorkspaceOf<Float32Array>;

export interface ArenaLayout {
  readonly bytes: number;
  readonly pages: number;
  readonly paramCount: number;
  readonly maxRows: number;
  /** The two copies of the weights (which one is current is the owner's business). */
  readonly params: readonly [Region, Region];
  /**
   * Scratch for a step's mean gradient where an update needs it stored (Adam, SGD on the ts kernels);
   * the fused SGD passes sum the slots and update without writing it.
   */
  readonly grad: Region;
  /** Optimizer state vectors (SGD momentum: 1, Adam: 2), each paramCount long, for each copy. */
  readonly state: readonly [readonly Region[], readonly Region[]];
  /** One gradient-sum slot per logical shard of a step. */
  readonly slots: readonly Region[];
  readonly workspaces: readonly WorkspaceLayout[];
}

export interface ArenaOptions {
  /** Number of shards a step can be cut into (one slot and one workspace each). */
  readonly shards: number;
  /** The most rows a workspace holds at once; larger shards are processed in chunks. */
  readonly maxRows: number;
  readonly stateVectors: number;
}

/** Bytes [0, RESERVED) belong to the WebAssembly module (it must keep no static data past them). */
export const RESERVED_BYTES = 65536;
const ALIGN = 64;
const PAGE = 65536;

export function arenaLayout(spec: ModelSpec, opts: ArenaOptions): ArenaLayout {
  const { shards, maxRows, stateVectors } = opts;
  if (!(Number.isInteger(shards) && shards >= 1)) throw new RangeError('arena: shards must be a positive integer');
  if (!(Number.isInteger(maxRows) && maxRows >= 1)) throw new RangeError('arena: maxRows must be a positive integer');
  const params = paramLayout(spec);
  let cursor = RESERVED_BYTES;
  const take = (floats: number): Region => {
    const region = { offset: cursor, length: floats };
    cursor += Math.ceil((floats * 4) / ALIGN) * ALIGN;
    return region;
  };
  const paramRegions: [Region, Region] = [take(params.size), take(params.size)];
  const grad = take(params.size);
  const stateCopy = (): Region[] => Array.from({ length: stateVectors }, () => take(params.size));
  const state: [Region[], Region[]] = [stateCopy(), stateCopy()];
  const slots = Array.from({ length: shards }, () => take(params.size));
  const nIn = spec.layers[0];
  const nOut = spec.layers[spec.layers.length - 1];
  const maxWidth = Math.max(...spec.layers);
  const yWidth = isClassIndexLoss(spec.loss) ? 1 : nOut;
  const side = Math.max(maxRows, maxWidth);
  const scratchFloats = Math.max(tsScratchFloats(side, side), wasmScratchFloats(side, side), nativeScratchFloats(side, side));
  const workspaces = Array.from({ length: shards }, (): WorkspaceLayout => {
    const x = take(maxRows * nIn);
    const y = take(maxRows * yWidth);
    const z: Region[] = [];
    const h: Region[] = [];
    for (let l = 0; l + 1 < spec.layers.length; l++) {
      const zl = take(maxRows * spec.layers[l + 1]);
      z.push(zl);
      h.push(activationOf(spec, l) === 'identity' ? zl : take(maxRows * spec.layers[l + 1]));
    }
    const d0 = take(maxRows * maxWidth);
    const d1 = take(maxRows * maxWidth);
    const scratch = take(scratchFloats);
    return { x, y, z, h, d0, d1, scratch };
  });
  const pages = Math.ceil(cursor / PAGE);
  return {
    bytes: pages * PAGE,
    pages,
    paramCount: params.size,
    maxRows,
    params: paramRegions,
    grad,
    state,
    slots,
    workspaces,
  };
}

/** 32-bit WebAssembly addresses reach 4 GiB: the most pages one memory can have. */
export const MAX_ARENA_PAGES = 65536;

/**
 * A new shared memory sized exactly for the layout (initial = maximum, so its buffer never changes).
 * A layout past the 4 GiB limit, or one the machine cannot allocate, is an ARENA_TOO_LARGE error
 * that says what it needs, for the caller to name the flag behind it.
 */
export function createArenaMemory(layout: ArenaLayout): WebAssembly.Memory {
  const needs = `the arena needs ${formatBytes(layout.bytes)} for ${layout.maxRows} rows per chunk`;
  if (layout.pages > MAX_ARENA_PAGES)
    throw new DptrainError('ARENA_TOO_LARGE', `${needs}, above WebAssembly's limit of ${formatBytes(MAX_ARENA_PAGES * PAGE)}`);
  try {
    return new WebAssembly.Memory({ initial: layout.pages, maximum: layout.pages, shared: true });
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    throw new DptrainError('ARENA_TOO_LARGE', `${needs}, which this machine could not allocate (${freeMemoryText()})`);
  }
}

export function formatBytes(bytes: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
}

function freeMemoryText(): string {
  return `${formatBytes(freemem())} free of ${formatBytes(totalmem())}`;
}

export function view(memory: WebAssembly.Memory, region: Region): Float32Array {
  return new Float32Array(memory.buffer, region.offset, region.length);
}

/** One copy of what the optimizer updates: weights and state vectors. */
export interface ParamCopy {
  readonly params: Float32Array;
  readonly state: readonly Float32Array[];
}

export interface ArenaViews {
  readonly memory: WebAssembly.Memory;
  readonly layout: ArenaLayout;
  readonly copies: readonly [ParamCopy, ParamCopy];
  /** Which copy holds this process's current weights; an update writes copy 1 − current, then flips it. */
  current: 0 | 1;
  /** The current weights and optimizer state (copies[current]). */
  readonly params: Float32Array;
  readonly state: readonly Float32Array[];
  readonly grad: Float32Array;
  readonly slots: readonly Float32Array[];
  readonly workspaces: readonly Workspace[];
}

export function arenaViews(memory: WebAssembly.Memory, layout: ArenaLayout): ArenaViews {
  if (memory.buffer.byteLength < layout.bytes) throw new RangeError('arena: memory is smaller than its layout');
  const v = (r: Region): Float32Array => view(memory, r);
  const copy = (i: 0 | 1): ParamCopy => ({ params: v(layout.params[i]), state: layout.state[i].map(v) });
  return {
    memory,
    layout,
    copies: [copy(0), copy(1)],
    current: 0,
    get params() {
      return this.copies[this.current].params;
    },
    get state() {
      return this.copies[this.current].state;
    },
    grad: v(layout.grad),
    slots: layout.slots.map(v),
    workspaces: layout.workspaces.map((w) => ({
      x: v(w.x),
      y: v(w.y),
      z: w.z.map(v),
      h: w.h.map(v),
      d0: v(w.d0),
      d1: v(w.d1),
      scratch: v(w.scratch),
    })),
  };
}

/** A fresh arena: layout, memory and views in one call. */
export function createArena(spec: ModelSpec, opts: ArenaOptions): ArenaViews {
  const layout = arenaLayout(spec, opts);
  return arenaViews(createArenaMemory(layout), layout);
}
