// The wire format between the coordinator and remote nodes, and the ONE place where frames are
// decoded and validated. A frame is [u32 LE header length][msgpack header][raw payload]: the header
// is a small map; Float32 payloads (weights, gradients, data) stay raw little-endian bytes, never
// msgpack elements. Sizes are checked against what the model implies before anything is decoded,
// the header's bytes are scanned for a safe msgpack subset (no extensions, records, binaries; bounded
// depth and counts) before msgpackr sees them, and every failure has a stable code. Longer than
// our files usually are on purpose: every check of every frame stays in this one module.

import { Packr, Unpackr } from 'msgpackr';
import { DptrainError, ERROR_CODES, type ErrorCode } from '../errors.js';
import { toBf16 } from '../bf16.js';
import { sumOfSquares } from '../norm.js';
import { BACKENDS, type KernelBackend } from '../kernels/backends.js';

/** How floats travel: f32 as they are, or bf16 (half the bytes; the receiver widens them to f32). */
export type WireFloat = 'f32' | 'bf16';
export const WIRE_FLOATS: readonly WireFloat[] = ['f32', 'bf16'];
/** Bytes of one value on the wire. */
export const wireBytes = (wire: WireFloat): number => (wire === 'bf16' ? 2 : 4);

/**
 * 4: reduction trees (a step for a block of nodes, results for blocks, parent links); a step's
 * weights follow its request as chunk messages, which a node forwards to its children as they come.
 * 5: every node sends its sum up as grad chunks, in any order (as backward makes them final), then
 * a payload-less result, to a parent and to the coordinator alike.
 */
export const PROTOCOL_VERSION = 5;
/** Floats per weights message: small enough that forwarding pipelines down a tree, large enough to cost little per message. */
export const CHUNK_FLOATS = 1 << 16;
/** Values in the chunk of `total` that starts at `at`: CHUNK_FLOATS, the last one what is left. */
export const chunkAt = (total: number, at: number): number => Math.min(CHUNK_FLOATS, total - at);
/** The largest header any message has (the welcome carries the config JSON). */
export const MAX_HEADER_BYTES = 64 * 1024;
const MAX_DEPTH = 3;
const MAX_ELEMENTS = 1024;
/** Nodes in one block of a reduction tree: bounds the block arrays of a step and of a result. */
export const MAX_BLOCK = 128;

const packr = new Packr({ useRecords: false, structuredClone: false, moreTypes: false });
// Configured for untrusted input: records and structured-clone extensions off, maps as plain
// objects, 64-bit integers as numbers. The scanner below has already refused what these would not.
const unpackr = new Unpackr({ useRecords: false, structuredClone: false, moreTypes: false, mapsAsObjects: true, int64AsType: 'number' });

// ---- messages -----------------------------------------------------------------------------------

/** `best`: the fastest kernel backend the node can run (the run computes with the best all share). */
export interface Hello {
  readonly t: 'hello';
  readonly v: number;
  readonly threads: number;
  readonly best: KernelBackend;
  /** Where the node takes children in a reduction tree (`dptrain worker --listen`), if it does. */
  readonly listen?: string;
}
/** A child's first message on its link to its parent node: who it is (the coordinator's name for it). */
export interface Join { readonly t: 'join'; readonly v: number; readonly nodeId: string }
/** Coordinator → node: the node's parent in the reduction tree from now on (null: the coordinator). */
export interface ParentMessage { readonly t: 'parent'; readonly url: string | null }
/**
 * A step for a block of nodes (the node itself first, then the nodes of its subtree, in shard
 * order): per node its id, request id, rows and recipe parts. The payload's indices cover every
 * row of the block, in the same order.
 */
export interface BlockPlan {
  readonly ids: readonly string[];
  readonly reqs: readonly number[];
  readonly rows: readonly number[];
  readonly parts: readonly number[];
}
/** Per node of a block, in its order: the loss sum and the compute time of its shard. */
export interface BlockEntries { readonly loss: readonly number[]; readonly ms: readonly number[] }
/** Node → parent: the step of request `req` cannot be completed because these nodes failed. */
export interface Lost { readonly t: 'lost'; readonly req: number; readonly step: number; readonly ids: readonly string[] }
export interface Welcome {
  readonly t: 'welcome';
  readonly v: number;
  readonly nodeId: string;
  /**
   * The validated config as JSON text; the node validates it again with the same schema. Its data
   * section names a source the node loads itself (NAMED_SOURCES), or is absent when the rows come
   * inline: a node never opens a file path that came from the network.
   */
  readonly config: string;
  readonly chunkRows: number;
  readonly kernels: string;
  /** 'source': load config.data yourself (mnist, synthetic); 'inline': the training rows follow. */
  readonly data: 'source' | 'inline';
  readonly n: number;
  readonly nIn: number;
  readonly yWidth: number;
  readonly classes: number;
  /** The float encoding of weights and gradients on this link, the coordinator's choice. */
  readonly wire: WireFloat;
}
export interface StepRequest {
  readonly t: 'step';
  /** Request id: answers name it, so a late answer to an old request is recognized. */
  readonly req: number;
  readonly step: number;
  readonly parts: number;
  readonly rows: number;
  /** A block of the reduction tree headed by the receiver (absent: its own shard only). */
  readonly block?: BlockPlan;
}
/** Floats [at, at + count) of a step's weights; chunks come in order, right after the step request. */
export interface WeightsChunk { readonly t: 'weights'; readonly step: number; readonly at: number; readonly count: number }
export interface ResultHeader {
  readonly t: 'result';
  readonly req: number;
  readonly step: number;
  readonly count: number;
  readonly lossSum: number;
  readonly computeMs: number;
  /** The node leaves after this result (it takes no part in the next step). */
  readonly leaving: boolean;
  /** For a block: each node's loss sum and compute time (the payload is the block's one sum). */
  readonly entries?: BlockEntries;
  /** The sum came before as grad chunks (every node sends it so): no payload. */
  readonly chunked?: boolean;
  /** Of the node's own shard: ms of its links' transfers that ran while it computed (weights still landing, sums already leaving). */
  readonly hiddenMs?: number;
}
/** Floats [at, at + count) of a result's sum, sent ahead of its header, in any order (the reduction overlaps backward and pipelines up the tree). */
export interface GradChunk { readonly t: 'grad'; readonly req: number; readonly step: number; readonly at: number; readonly count: number }
export interface Heartbeat { readonly t: 'heartbeat' }
/** A peer's own failure: a code and a fixed sentence (never a local message, which may quote a file). */
export interface ErrorMessage { readonly t: 'error'; readonly code: string; readonly message: string }

/** Data sets a node loads by name; any other source (a file) must reach it inline. */
export const NAMED_SOURCES: readonly string[] = ['mnist', 'synthetic'];
/** Config fields that name files: a welcome holding one anywhere is refused. */
const PATH_FIELDS = new Set(['path', 'testPath', 'images', 'labels', 'testImages', 'testLabels', 'file', 'dir']);
export interface Bye { readonly t: 'bye'; readonly reason: string }

export type NodeMessage = Hello | Join | ResultHeader | GradChunk | Lost | Heartbeat | ErrorMessage | Bye;
export type CoordinatorMessage = Welcome | StepRequest | WeightsChunk | ParentMessage | Bye | Heartbeat;

export interface Frame<H> {
  readonly header: H;
  /** The raw payload bytes (a view into the frame). */
  readonly payload: Uint8Array;
}

// ---- encoding -----------------------------------------------------------------------------------

/**
 * [u32 header length][msgpack header], the header padded (a `pad` string) so that the payload
 * after it starts 4-byte aligned: a receiver whose frame buffer is aligned then reads floats in place.
 */
export function encodeHeader(header: object, extra = 0): Buffer {
  let h = packr.pack(header);
  for (let pad = 0; (4 + h.length) % 4 !== 0 && pad < 4; pad++) h = packr.pack({ ...header, pad: ' '.repeat(pad) });
  if (h.length > MAX_HEADER_BYTES) throw new RangeError(`frame header of ${h.length} bytes exceeds ${MAX_HEADER_BYTES}`);
  const out = Buffer.allocUnsafe(4 + h.length + extra);
  out.writeUInt32LE(h.length, 0);
  h.copy(out, 4);
  return out;
}

/** A frame of a header and raw payload parts, copied once into one buffer. */
export function encodeFrame(header: object, ...payload: readonly ArrayBufferView[]): Buffer {
  const bytes = payload.reduce((a, p) => a + p.byteLength, 0);
  const out = encodeHeader(header, bytes);
  let at = out.length - bytes;
  for (const p of payload) {
    out.set(new Uint8Array(p.buffer, p.byteOffset, p.byteLength), at);
    at += p.byteLength;
  }
  return out;
}

/**
 * The step's weights as its chunk messages, each [header][floats in the link's encoding], sent as
 * they are to every node (and forwarded as they are by a node to its children). The coordinator
 * encodes them one by one as it sends them (StepWeights); this whole set is for benches and tests.
 */
export function encodeWeightChunks(step: number, params: Float32Array, wire: WireFloat): Buffer[] {
  return Array.from({ length: weightChunks(params.length) }, (_, k) => encodeWeightChunk(step, params, wire, k));
}

/** How many chunk messages the weights of `paramCount` floats take (one at least). */
export const weightChunks = (paramCount: number): number => Math.max(1, Math.ceil(paramCount / CHUNK_FLOATS));

/** Chunk k of the step's weights (see encodeWeightChunks), in `reuse`'s memory when it fits (the caller knows no socket holds it). */
export function encodeWeightChunk(step: number, params: Float32Array, wire: WireFloat, k: number, reuse?: Buffer): Buffer {
  const at = k * CHUNK_FLOATS;
  const count = chunkAt(params.length, at);
  return encodeFloatFrame({ t: 'weights', step, at, count }, params.subarray(at, at + count), wire, reuse?.buffer as ArrayBuffer | undefined);
}

/**
 * A float payload (the step's weights, a node's gradient) in the link's encoding, copied out of the
 * arena: a snapshot an update cannot change under a slow socket. Written into `into` when it has
 * the size (the caller knows the socket no longer holds it), else into a new buffer.
 */
export function encodeWeights(params: Float32Array, wire: WireFloat = 'f32', into?: Buffer): Buffer {
  const bytes = params.length * wireBytes(wire);
  const out = into && into.length === bytes && (into.byteOffset & 3) === 0 ? into : Buffer.allocUnsafeSlow(bytes);
  if (wire === 'bf16') toBf16(new Uint16Array(out.buffer, out.byteOffset, params.length), params);
  else out.set(new Uint8Array(params.buffer, params.byteOffset, params.byteLength));
  return out;
}

/**
 * One frame of `header` and `values` in the link's encoding, built in `reuse` (a buffer this
 * function returned the backing of before) when it is large enough. One frame, not two fragments:
 * a receiver then reassembles nothing. Returns the frame, a view whose `.buffer` may be reused.
 */
export function encodeFloatFrame(header: object, values: Float32Array, wire: WireFloat, reuse?: ArrayBuffer): Buffer {
  const head = encodeHeader(header);
  const total = head.length + values.length * wireBytes(wire);
  // Slack for a longer header next time (numbers in it change length).
  const base = reuse && reuse.byteLength >= total ? reuse : new ArrayBuffer(total + 256);
  const out = Buffer.from(base, 0, total);
  head.copy(out, 0);
  if (wire === 'bf16') toBf16(new Uint16Array(base, head.length, values.length), values);
  else out.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength), head.length);
  return out;
}

/** A gradient (or any float vector) as its wire payload: itself for f32, a rounded copy for bf16. */
export function wirePayload(values: Float32Array, wire: WireFloat): ArrayBufferView {
  return wire === 'bf16' ? toBf16(new Uint16Array(values.length), values) : values;
}

/** The payload as floats, copied out (aligned) — only after the frame was validated. */
export function payloadFloats(payload: Uint8Array, offsetBytes: number, count: number): Float32Array {
  const out = new Float32Array(count);
  new Uint8Array(out.buffer).set(payload.subarray(offsetBytes, offsetBytes + count * 4));
  return out;
}

type View32 = Float32ArrayConstructor | Int32ArrayConstructor | Uint16ArrayConstructor;

/** `count` values of `bytes` from `at`: in place when aligned, else one aligned copy (a peer that does not pad). */
function view32<C extends View32>(Ctor: C, bytes: Uint8Array, at: number, count: number): InstanceType<C> {
  const start = bytes.byteOffset + at;
  if (start % Ctor.BYTES_PER_ELEMENT === 0) return new Ctor(bytes.buffer as ArrayBuffer, start, count) as InstanceType<C>;
  const out = new Ctor(count);
  new Uint8Array(out.buffer).set(bytes.subarray(at, at + Ctor.BYTES_PER_ELEMENT * count));
  return out as InstanceType<C>;
}

/**
 * Checks `dest.length` values at `at` of `bytes` for finiteness and copies them into `dest`, in one
 * pass; returns their sum of squares (the gradient guard's norm, free here). On a non-finite value
 * it throws with `dest` partly written: the caller's `dest` is a landing place whose owner
 * recomputes it in full when its peer is dropped.
 */
export function landFloats(bytes: Uint8Array, at: number, dest: Float32Array, peer: string, what: string, wire: WireFloat = 'f32'): number {
  const n = dest.length;
  if (wire === 'bf16') {
    landBf16(view32(Uint16Array, bytes, at, n), dest, peer, what);
    return sumOfSquares(dest);
  }
  // A memcpy (the landed bits are the sent bits), then the sum of squares, which is finite exactly
  // when every value is: the check and the norm in one branch-free pass.
  dest.set(view32(Float32Array, bytes, at, n));
  const squares = sumOfSquares(dest);
  if (Number.isFinite(squares)) return squares;
  for (let i = 0; i < n; i++) if (!Number.isFinite(dest[i])) fail('WIRE_NOT_FINITE', peer, `${what} holds a non-finite value at index ${i}`);
  return squares; // not reached: the loop above found the value that made the sum non-finite
}

/** bf16 widened to f32 (exact: the low half is zero) with the finiteness check, in one pass. */
function landBf16(src: Uint16Array, dest: Float32Array, peer: string, what: string): void {
  const out = new Int32Array(dest.buffer, dest.byteOffset, dest.length);
  for (let i = 0; i < src.length; i++) {
    const b = src[i];
    if ((b & 0x7f80) === 0x7f80) fail('WIRE_NOT_FINITE', peer, `${what} holds a non-finite value at index ${i}`);
    out[i] = b << 16;
  }
}

// ---- validation ---------------------------------------------------------------------------------

export class WireError extends DptrainError {
  constructor(code: ErrorCode, message: string) {
    super(code, message);
    this.name = 'WireError';
  }
}

const isMap = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

const fail = (code: ErrorCode, peer: string, what: string): never => {
  throw new WireError(code, `${peer}: ${what}`);
};

/** Splits a frame into header bytes and payload after checking its declared sizes. */
function splitFrame(data: Uint8Array, peer: string, maxBytes: number): { header: unknown; payload: Uint8Array } {
  if (data.byteLength > maxBytes) fail('WIRE_OVERSIZED', peer, `frame of ${data.byteLength} bytes exceeds the bound of ${maxBytes} for this model`);
  if (data.byteLength < 5) fail('WIRE_MALFORMED', peer, `frame of ${data.byteLength} bytes is too short`);
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const headerLen = dv.getUint32(0, true);
  if (headerLen === 0 || headerLen > MAX_HEADER_BYTES || 4 + headerLen > data.byteLength)
    fail('WIRE_MALFORMED', peer, `declared header length ${headerLen} does not fit the ${data.byteLength}-byte frame`);
  const headerBytes = data.subarray(4, 4 + headerLen);
  const scanned = scanMsgpack(headerBytes, 0, 0, { elements: 0 });
  if (scanned === -1) fail('WIRE_MALFORMED', peer, 'header is not a plain msgpack map (extension, binary, too deep or too large)');
  if (scanned !== headerLen) fail('WIRE_MALFORMED', peer, `header has ${headerLen - scanned} trailing bytes`);
  let header: unknown;
  try {
    header = unpackr.unpack(headerBytes);
  } catch (e) {
    fail('WIRE_MALFORMED', peer, `header does not decode (${(e as Error).message})`);
  }
  if (!isMap(header)) fail('WIRE_MALFORMED', peer, 'header is not a map');
  return { header, payload: data.subarray(4 + headerLen) };
}

/**
 * Walks one msgpack value at `at`; returns the offset after it, or -1 for anything outside the
 * subset we speak: nil, booleans, ints, floats, strings, and arrays and maps of those, nested at
 * most MAX_DEPTH deep with at most MAX_ELEMENTS elements in all.
 */
function scanMsgpack(b: Uint8Array, at: number, depth: number, count: { elements: number }): number {
  if (at >= b.length || depth > MAX_DEPTH || ++count.elements > MAX_ELEMENTS) return -1;
  const t = b[at];
  const need = (n: number): number => (at + n <= b.length ? at + n : -1);
  const len16 = (): number => (at + 3 <= b.length ? (b[at + 1] << 8) | b[at + 2] : -1);
  const len32 = (): number => (at + 5 <= b.length ? ((b[at + 1] << 24) >>> 0) + (b[at + 2] << 16) + (b[at + 3] << 8) + b[at + 4] : -1);
  if (t <= 0x7f || t >= 0xe0) return need(1); // fixint
  if (t >= 0xa0 && t <= 0xbf) return need(1 + (t & 0x1f)); // fixstr
  if (t >= 0x90 && t <= 0x9f) return scanItems(b, at + 1, t & 0x0f, depth, count);
  if (t >= 0x80 && t <= 0x8f) return scanItems(b, at + 1, 2 * (t & 0x0f), depth, count);
  switch (t) {
    case 0xc0: case 0xc2: case 0xc3: return need(1); // nil, false, true
    case 0xcc: case 0xd0: return need(2);
    case 0xcd: case 0xd1: return need(3);
    case 0xca: case 0xce: case 0xd2: return need(5);
    case 0xcb: case 0xcf: case 0xd3: return need(9);
    case 0xd9: return at + 2 <= b.length ? need(2 + b[at + 1]) : -1; // str8
    case 0xda: { const n = len16(); return n < 0 ? -1 : need(3 + n); } // str16
    case 0xdb: { const n = len32(); return n < 0 ? -1 : need(5 + n); } // str32
    case 0xdc: { const n = len16(); return n < 0 ? -1 : scanItems(b, at + 3, n, depth, count); } // array16
    case 0xde: { const n = len16(); return n < 0 ? -1 : scanItems(b, at + 3, 2 * n, depth, count); } // map16
    default: return -1; // bin, ext, fixext, array32, map32, never-used
  }
}

function scanItems(b: Uint8Array, at: number, n: number, depth: number, count: { elements: number }): number {
  if (n > MAX_ELEMENTS) return -1;
  let p = at;
  for (let i = 0; i < n && p >= 0; i++) p = scanMsgpack(b, p, depth + 1, count);
  return p;
}

const isInt = (x: unknown, lo: number, hi: number): x is number => typeof x === 'number' && Number.isInteger(x) && x >= lo && x <= hi;
const isFiniteNumber = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);
const NODE_ID = /^[A-Za-z0-9_.-]{1,64}$/;
const isNodeId = (v: unknown): v is string => typeof v === 'string' && NODE_ID.test(v);
/** An address a node takes children on, as a hello or a parent message may carry it: ws:// or wss:// HOST:PORT. */
export const isLinkUrl = (v: unknown): v is string => typeof v === 'string' && /^wss?:\/\/[^\s/]{1,200}\/?$/.test(v);
/** An array of 1..MAX_BLOCK elements each passing `ok`. */
const arrayOf = (x: unknown, ok: (v: unknown) => boolean): x is unknown[] => Array.isArray(x) && x.length >= 1 && x.length <= MAX_BLOCK && x.every(ok);

/** A block plan's arrays checked: equal lengths, ids, request ids, rows ≥ 1, parts; or null. */
function blockPlan(b: unknown): BlockPlan | null {
  if (!isMap(b)) return null;
  const { ids, reqs, rows, parts } = b;
  if (!arrayOf(ids, isNodeId) || !arrayOf(reqs, (v) => isInt(v, 0, Number.MAX_SAFE_INTEGER))) return null;
  if (!arrayOf(rows, (v) => isInt(v, 1, 1 << 30)) || !arrayOf(parts, (v) => isInt(v, 1, 1024))) return null;
  if (new Set([ids.length, reqs.length, rows.length, parts.length]).size !== 1) return null;
  return { ids: ids as string[], reqs: reqs as number[], rows: rows as number[], parts: parts as number[] };
}

/** Rows of a step request: its own, or its block's. */
export const requestRows = (h: StepRequest): number => (h.block ? h.block.rows.reduce((a, b) => a + b, 0) : h.rows);

export interface NodeFrameLimits {
  /** Parameters of the model: a result's payload is exactly this many floats. */
  readonly paramCount: number;
  /** The link's float encoding (f32 when absent). */
  readonly wire?: WireFloat;
}

/** The largest frame a node may send for this model. */
export function maxNodeFrameBytes(limits: NodeFrameLimits): number {
  return 4 + MAX_HEADER_BYTES + limits.paramCount * 4;
}

/**
 * Decodes and validates a frame from a node (to the coordinator, or a child to its parent). Returns
 * the message and, for a result, its gradient (finite values only), checked and copied in one pass
 * into `land(header)` (a fresh array when absent; skipped when it returns null), with its sum of
 * squares (absent when nothing landed). Throws WireError naming the peer on anything else.
 */
export function decodeNodeFrame(data: Uint8Array, peer: string, limits: NodeFrameLimits, land?: (msg: ResultHeader | GradChunk) => Float32Array | null): { msg: NodeMessage; gradient: Float32Array | null; sumSquares?: number } {
  const { header, payload } = splitFrame(data, peer, maxNodeFrameBytes(limits));
  const h = header as Record<string, unknown>;
  switch (h.t) {
    case 'hello':
      if (payload.byteLength !== 0) fail('WIRE_LENGTH_MISMATCH', peer, 'hello carries a payload');
      if (!isInt(h.v, 0, 1e6)) fail('WIRE_MALFORMED', peer, 'hello without a protocol version');
      if (h.v !== PROTOCOL_VERSION) fail('WIRE_UNEXPECTED', peer, `protocol version ${String(h.v)}, this coordinator speaks ${PROTOCOL_VERSION}`);
      if (!isInt(h.threads, 1, 1024)) fail('WIRE_MALFORMED', peer, `hello with an implausible thread count ${String(h.threads)}`);
      if (!BACKENDS.includes(h.best as KernelBackend)) fail('WIRE_MALFORMED', peer, `hello names no known kernel backend (${String(h.best).slice(0, 40)})`);
      if (h.listen !== undefined && !isLinkUrl(h.listen)) fail('WIRE_MALFORMED', peer, 'hello with a listening address that is not a ws:// or wss:// HOST:PORT');
      return { msg: { t: 'hello', v: h.v as number, threads: h.threads as number, best: h.best as KernelBackend, ...(h.listen ? { listen: h.listen as string } : {}) }, gradient: null };
    case 'join':
      if (payload.byteLength !== 0) fail('WIRE_LENGTH_MISMATCH', peer, 'join carries a payload');
      if (h.v !== PROTOCOL_VERSION) fail('WIRE_UNEXPECTED', peer, `protocol version ${String(h.v)}, this node speaks ${PROTOCOL_VERSION}`);
      if (!isNodeId(h.nodeId)) fail('WIRE_MALFORMED', peer, 'join without a valid node id');
      return { msg: { t: 'join', v: h.v as number, nodeId: h.nodeId as string }, gradient: null };
    case 'lost':
      if (payload.byteLength !== 0) fail('WIRE_LENGTH_MISMATCH', peer, 'lost carries a payload');
      if (!isInt(h.req, 0, Number.MAX_SAFE_INTEGER) || !isInt(h.step, 1, Number.MAX_SAFE_INTEGER)) fail('WIRE_MALFORMED', peer, 'lost with a missing or invalid req or step');
      if (!arrayOf(h.ids, isNodeId)) fail('WIRE_MALFORMED', peer, 'lost without valid node ids');
      return { msg: { t: 'lost', req: h.req as number, step: h.step as number, ids: h.ids as string[] }, gradient: null };
    case 'result': {
      if (!isInt(h.req, 0, Number.MAX_SAFE_INTEGER) || !isInt(h.step, 1, Number.MAX_SAFE_INTEGER) || !isInt(h.count, 0, 1 << 30))
        fail('WIRE_MALFORMED', peer, 'result with a missing or invalid req, step or count');
      if (!isFiniteNumber(h.lossSum)) fail('WIRE_NOT_FINITE', peer, `result with a non-finite loss sum ${String(h.lossSum)}`);
      if (!isFiniteNumber(h.computeMs) || (h.computeMs as number) < 0) fail('WIRE_MALFORMED', peer, 'result with an invalid computeMs');
      if (h.leaving !== undefined && typeof h.leaving !== 'boolean') fail('WIRE_MALFORMED', peer, 'result with a non-boolean leaving flag');
      if (h.chunked !== undefined && h.chunked !== true) fail('WIRE_MALFORMED', peer, 'result with an invalid chunked flag');
      if (h.hiddenMs !== undefined && !(isFiniteNumber(h.hiddenMs) && h.hiddenMs >= 0)) fail('WIRE_MALFORMED', peer, 'result with an invalid hiddenMs');
      const wire = limits.wire ?? 'f32';
      const want = h.chunked ? 0 : limits.paramCount * wireBytes(wire);
      if (payload.byteLength !== want) fail('WIRE_LENGTH_MISMATCH', peer, `gradient of ${payload.byteLength} bytes, the model needs exactly ${want} (${wire}${h.chunked ? ', sent ahead in chunks' : ''})`);
      let entries: BlockEntries | undefined;
      if (h.entries !== undefined) {
        const e = h.entries;
        if (!isMap(e) || !arrayOf(e.loss, isFiniteNumber) || !arrayOf(e.ms, (v) => isFiniteNumber(v) && v >= 0) || e.loss.length !== e.ms.length)
          fail('WIRE_MALFORMED', peer, 'result with invalid block entries');
        entries = { loss: (e as Record<string, number[]>).loss, ms: (e as Record<string, number[]>).ms };
      }
      const msg: ResultHeader = {
        t: 'result', req: h.req as number, step: h.step as number, count: h.count as number,
        lossSum: h.lossSum as number, computeMs: h.computeMs as number, leaving: h.leaving === true, ...(entries ? { entries } : {}), ...(h.chunked ? { chunked: true } : {}), ...(h.hiddenMs !== undefined ? { hiddenMs: h.hiddenMs as number } : {}),
      };
      // The landing place is asked for only once the header is valid; it may refuse (a stale
      // request: it throws) or skip it (a late answer to a request given up: null).
      const gradient = land ? land(msg) : h.chunked ? null : new Float32Array(limits.paramCount);
      if (!gradient || h.chunked) return { msg, gradient };
      return { msg, gradient, sumSquares: landFloats(payload, 0, gradient, peer, 'gradient', wire) };
    }
    case 'grad': {
      if (!isInt(h.req, 0, Number.MAX_SAFE_INTEGER) || !isInt(h.step, 1, Number.MAX_SAFE_INTEGER) || !isInt(h.at, 0, limits.paramCount) || !isInt(h.count, 1, CHUNK_FLOATS))
        fail('WIRE_MALFORMED', peer, 'grad with a missing or invalid req, step, at or count');
      const wire = limits.wire ?? 'f32';
      if ((h.at as number) + (h.count as number) > limits.paramCount) fail('WIRE_LENGTH_MISMATCH', peer, 'grad beyond the model\'s parameters');
      if (payload.byteLength !== (h.count as number) * wireBytes(wire)) fail('WIRE_LENGTH_MISMATCH', peer, `grad of ${payload.byteLength} bytes for ${h.count as number} values (${wire})`);
      const msg: GradChunk = { t: 'grad', req: h.req as number, step: h.step as number, at: h.at as number, count: h.count as number };
      // The landing place is exactly the chunk's floats (or null: skipped).
      const dest = land ? land(msg) : new Float32Array(msg.count);
      if (dest && dest.length !== msg.count) throw new RangeError('decodeNodeFrame: a grad chunk\'s landing place must hold exactly its values');
      if (!dest) return { msg, gradient: null };
      return { msg, gradient: dest, sumSquares: landFloats(payload, 0, dest, peer, 'gradient', wire) };
    }
    case 'heartbeat':
      return { msg: { t: 'heartbeat' }, gradient: null };
    case 'error': {
      const code = (ERROR_CODES as readonly unknown[]).includes(h.code) || h.code === 'INTERNAL' ? (h.code as string) : 'UNKNOWN';
      return { msg: { t: 'error', code, message: typeof h.message === 'string' ? h.message.slice(0, 200) : '(no message)' }, gradient: null };
    }
    case 'bye':
      return { msg: { t: 'bye', reason: typeof h.reason === 'string' ? h.reason.slice(0, 500) : '(no reason)' }, gradient: null };
    default:
      return fail('WIRE_UNEXPECTED', peer, `unexpected message type ${JSON.stringify(h.t)?.slice(0, 40)}`);
  }
}

/** Refuses a welcome config that is not JSON, names a file, or names a source the node cannot load by name. */
function checkWelcomeConfig(text: string, kind: 'source' | 'inline', peer: string): void {
  let config: unknown;
  try {
    config = JSON.parse(text);
  } catch {
    fail('WIRE_MALFORMED', peer, 'welcome config is not JSON');
  }
  if (!isMap(config)) return fail('WIRE_MALFORMED', peer, 'welcome config is not a JSON object');
  const pathField = findPathField(config, 0);
  if (pathField) fail('WIRE_FORBIDDEN', peer, `welcome config has a file path field (${pathField}); a node opens no path from the network`);
  const data = config.data;
  if (kind === 'inline' && data !== undefined) fail('WIRE_FORBIDDEN', peer, 'welcome with inline data also names a data source');
  if (kind === 'source' && !(isMap(data) && NAMED_SOURCES.includes(data.source as string)))
    fail('WIRE_FORBIDDEN', peer, `welcome asks the node to load data source ${JSON.stringify(isMap(data) ? data.source : data)?.slice(0, 40)}; a node loads only ${NAMED_SOURCES.join(', ')} by name`);
}

/** The dotted name of the first file-path field in a parsed JSON value (bounded depth), or null. */
function findPathField(value: unknown, depth: number): string | null {
  if (depth > 8 || typeof value !== 'object' || value === null) return null;
  for (const [k, v] of Object.entries(value)) {
    if (PATH_FIELDS.has(k)) return k;
    const inner = findPathField(v, depth + 1);
    if (inner) return `${k}.${inner}`;
  }
  return null;
}

/** Decodes a frame from the coordinator, already authenticated, still validated like any peer's. */
export function decodeCoordinatorFrame(data: Uint8Array, peer: string): Frame<CoordinatorMessage> {
  const { header, payload } = splitFrame(data, peer, Number.MAX_SAFE_INTEGER);
  const h = header as Record<string, unknown>;
  switch (h.t) {
    case 'welcome':
      if (h.v !== PROTOCOL_VERSION) fail('WIRE_UNEXPECTED', peer, `protocol version ${String(h.v)}, this node speaks ${PROTOCOL_VERSION}`);
      if (typeof h.config !== 'string' || typeof h.nodeId !== 'string' || !isInt(h.chunkRows, 1, 1 << 24) || typeof h.kernels !== 'string')
        fail('WIRE_MALFORMED', peer, 'welcome lacks config, nodeId, chunkRows or kernels');
      if (h.data !== 'source' && h.data !== 'inline') fail('WIRE_MALFORMED', peer, 'welcome with an unknown data kind');
      for (const k of ['n', 'nIn', 'yWidth', 'classes'] as const) if (!isInt(h[k], 0, 1 << 30)) fail('WIRE_MALFORMED', peer, `welcome with an invalid ${k}`);
      if (h.data === 'inline' && payload.byteLength !== 4 * (h.n as number) * ((h.nIn as number) + (h.yWidth as number)))
        fail('WIRE_LENGTH_MISMATCH', peer, 'welcome data payload does not match n × (nIn + yWidth) floats');
      if (!WIRE_FLOATS.includes(h.wire as WireFloat)) fail('WIRE_MALFORMED', peer, `welcome with an unknown wire encoding ${JSON.stringify(h.wire)?.slice(0, 40)}`);
      checkWelcomeConfig(h.config as string, h.data as Welcome['data'], peer);
      return { header: h as unknown as Welcome, payload };
    case 'step': {
      if (!isInt(h.req, 0, Number.MAX_SAFE_INTEGER) || !isInt(h.step, 1, Number.MAX_SAFE_INTEGER) || !isInt(h.parts, 1, 1024) || !isInt(h.rows, 1, 1 << 30))
        fail('WIRE_MALFORMED', peer, 'step with an invalid req, step, parts or rows');
      const step = { t: 'step', req: h.req as number, step: h.step as number, parts: h.parts as number, rows: h.rows as number } as const;
      if (h.block === undefined) return { header: step, payload };
      const block = blockPlan(h.block);
      if (!block || block.reqs[0] !== h.req || block.rows[0] !== h.rows || block.parts[0] !== h.parts)
        fail('WIRE_MALFORMED', peer, 'step with an invalid block plan');
      return { header: { ...step, block: block! }, payload };
    }
    case 'weights':
      if (!isInt(h.step, 1, Number.MAX_SAFE_INTEGER) || !isInt(h.at, 0, 1 << 30) || !isInt(h.count, 0, CHUNK_FLOATS))
        fail('WIRE_MALFORMED', peer, 'weights with an invalid step, at or count');
      return { header: { t: 'weights', step: h.step as number, at: h.at as number, count: h.count as number }, payload };
    case 'parent':
      if (!(h.url === null || isLinkUrl(h.url))) fail('WIRE_MALFORMED', peer, 'parent with an address that is not a ws:// or wss:// HOST:PORT');
      return { header: { t: 'parent', url: h.url as string | null }, payload };
    case 'bye':
      return { header: { t: 'bye', reason: typeof h.reason === 'string' ? h.reason : '' }, payload };
    case 'heartbeat':
      return { header: { t: 'heartbeat' }, payload };
    default:
      return fail('WIRE_UNEXPECTED', peer, `unexpected message type ${JSON.stringify(h.t)?.slice(0, 40)}`);
  }
}

export interface StepLimits {
  readonly paramCount: number;
  /** Samples in the node's data set: every index must fall inside. */
  readonly samples: number;
  /** The batch size: no step asks for more rows. */
  readonly maxRows: number;
  readonly wire: WireFloat;
}

/** A step request's payload (the sample indices of its rows, a block's included) checked: a copy of them. */
export function landStepIndices(h: StepRequest, payload: Uint8Array, peer: string, limits: StepLimits): Int32Array {
  // A block's request carries the indices of every row of the block: its own first.
  const rows = requestRows(h);
  if (payload.byteLength !== 4 * rows) fail('WIRE_LENGTH_MISMATCH', peer, `step ${h.step}: payload of ${payload.byteLength} bytes, expected ${4 * rows}`);
  if (rows > limits.maxRows) fail('WIRE_MALFORMED', peer, `step ${h.step}: ${rows} rows exceed the batch size ${limits.maxRows}`);
  const indices = view32(Int32Array, payload, 0, rows).slice();
  for (let i = 0; i < rows; i++)
    if (!(indices[i] >= 0 && indices[i] < limits.samples)) fail('WIRE_MALFORMED', peer, `step ${h.step}: sample index ${indices[i]} out of range`);
  return indices;
}

/**
 * A weights chunk of step `step` checked and landed in `params` (finite values only): it must be
 * the one expected next, of the size the chunking gives. Returns where the next one starts.
 */
export function landWeightsChunk(c: WeightsChunk, payload: Uint8Array, peer: string, step: number, limits: StepLimits, params: Float32Array, expectedAt: number): number {
  if (c.step !== step) fail('WIRE_STALE', peer, `weights for step ${c.step}, the step in hand is ${step}`);
  const count = chunkAt(limits.paramCount, expectedAt);
  if (c.at !== expectedAt || c.count !== count) fail('WIRE_MALFORMED', peer, `step ${step}: weights chunk [${c.at}, +${c.count}), expected [${expectedAt}, +${count})`);
  if (payload.byteLength !== count * wireBytes(limits.wire)) fail('WIRE_LENGTH_MISMATCH', peer, `step ${step}: weights chunk of ${payload.byteLength} bytes, expected ${count * wireBytes(limits.wire)}`);
  landFloats(payload, 0, params.subarray(c.at, c.at + count), peer, 'weights', limits.wire);
  return c.at + count;
}
