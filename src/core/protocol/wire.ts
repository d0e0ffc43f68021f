// The wire format between the coordinator and remote nodes, and the ONE place where frames are
// decoded and validated. A frame is [u32 LE header length][msgpack header][raw payload]: the header
// is a small map; Float32 payloads (weights, gradients, data) stay raw little-endian bytes, never
// msgpack elements. Sizes are checked against what the model implies before anything is decoded,
// the header's bytes are scanned for a safe msgpack subset (no extensions, records, binaries; bounded
// depth and counts) before msgpackr sees them, and every failure has a stable code.

import { Packr, Unpackr } from 'msgpackr';
import { DptrainError, ERROR_CODES, type ErrorCode } from '../errors.js';
import { BACKENDS, type KernelBackend } from '../kernels/backends.js';

/** 2: mutual authentication in the upgrade; welcomes name no file. */
export const PROTOCOL_VERSION = 2;
/** The largest header any message has (the welcome carries the config JSON). */
export const MAX_HEADER_BYTES = 64 * 1024;
const MAX_DEPTH = 3;
const MAX_ELEMENTS = 256;

const packr = new Packr({ useRecords: false, structuredClone: false, moreTypes: false });
// Configured for untrusted input: records and structured-clone extensions off, maps as plain
// objects, 64-bit integers as numbers. The scanner below has already refused what these would not.
const unpackr = new Unpackr({ useRecords: false, structuredClone: false, moreTypes: false, mapsAsObjects: true, int64AsType: 'number' });

// ---- messages -----------------------------------------------------------------------------------

/** `best`: the fastest kernel backend the node can run (the run computes with the best all share). */
export interface Hello { readonly t: 'hello'; readonly v: number; readonly threads: number; readonly best: KernelBackend }
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
}
export interface StepRequest {
  readonly t: 'step';
  /** Request id: answers name it, so a late answer to an old request is recognized. */
  readonly req: number;
  readonly step: number;
  readonly parts: number;
  readonly rows: number;
}
export interface ResultHeader {
  readonly t: 'result';
  readonly req: number;
  readonly step: number;
  readonly count: number;
  readonly lossSum: number;
  readonly computeMs: number;
  /** The node leaves after this result (it takes no part in the next step). */
  readonly leaving: boolean;
}
export interface Heartbeat { readonly t: 'heartbeat' }
/** A peer's own failure: a code and a fixed sentence (never a local message, which may quote a file). */
export interface ErrorMessage { readonly t: 'error'; readonly code: string; readonly message: string }

/** Data sets a node loads by name; any other source (a file) must reach it inline. */
export const NAMED_SOURCES: readonly string[] = ['mnist', 'synthetic'];
/** Config fields that name files: a welcome holding one anywhere is refused. */
const PATH_FIELDS = new Set(['path', 'testPath', 'images', 'labels', 'testImages', 'testLabels', 'file', 'dir']);
export interface Bye { readonly t: 'bye'; readonly reason: string }

export type NodeMessage = Hello | ResultHeader | Heartbeat | ErrorMessage | Bye;
export type CoordinatorMessage = Welcome | StepRequest | Bye | Heartbeat;

export interface Frame<H> {
  readonly header: H;
  /** The raw payload bytes (a view into the frame). */
  readonly payload: Uint8Array;
}

// ---- encoding -----------------------------------------------------------------------------------

/** A frame of a header and raw payload parts, copied once into one buffer. */
export function encodeFrame(header: object, ...payload: readonly ArrayBufferView[]): Buffer {
  const h = packr.pack(header);
  if (h.length > MAX_HEADER_BYTES) throw new RangeError(`frame header of ${h.length} bytes exceeds ${MAX_HEADER_BYTES}`);
  const total = 4 + h.length + payload.reduce((a, p) => a + p.byteLength, 0);
  const out = Buffer.allocUnsafe(total);
  out.writeUInt32LE(h.length, 0);
  h.copy(out, 4);
  let at = 4 + h.length;
  for (const p of payload) {
    out.set(new Uint8Array(p.buffer, p.byteOffset, p.byteLength), at);
    at += p.byteLength;
  }
  return out;
}

/** The payload as floats, copied out (aligned) — only after the frame was validated. */
export function payloadFloats(payload: Uint8Array, offsetBytes: number, count: number): Float32Array {
  const out = new Float32Array(count);
  new Uint8Array(out.buffer).set(payload.subarray(offsetBytes, offsetBytes + count * 4));
  return out;
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

export interface NodeFrameLimits {
  /** Parameters of the model: a result's payload is exactly this many floats. */
  readonly paramCount: number;
}

/** The largest frame a node may send for this model. */
export function maxNodeFrameBytes(limits: NodeFrameLimits): number {
  return 4 + MAX_HEADER_BYTES + limits.paramCount * 4;
}

/**
 * Decodes and validates a frame from a node. Returns the message and, for a result, its gradient
 * (finite values only). Throws WireError naming the peer on anything else.
 */
export function decodeNodeFrame(data: Uint8Array, peer: string, limits: NodeFrameLimits): { msg: NodeMessage; gradient: Float32Array | null } {
  const { header, payload } = splitFrame(data, peer, maxNodeFrameBytes(limits));
  const h = header as Record<string, unknown>;
  switch (h.t) {
    case 'hello':
      if (payload.byteLength !== 0) fail('WIRE_LENGTH_MISMATCH', peer, 'hello carries a payload');
      if (!isInt(h.v, 0, 1e6)) fail('WIRE_MALFORMED', peer, 'hello without a protocol version');
      if (h.v !== PROTOCOL_VERSION) fail('WIRE_UNEXPECTED', peer, `protocol version ${String(h.v)}, this coordinator speaks ${PROTOCOL_VERSION}`);
      if (!isInt(h.threads, 1, 1024)) fail('WIRE_MALFORMED', peer, `hello with an implausible thread count ${String(h.threads)}`);
      if (!BACKENDS.includes(h.best as KernelBackend)) fail('WIRE_MALFORMED', peer, `hello names no known kernel backend (${String(h.best).slice(0, 40)})`);
      return { msg: { t: 'hello', v: h.v as number, threads: h.threads as number, best: h.best as KernelBackend }, gradient: null };
    case 'result': {
      if (!isInt(h.req, 0, Number.MAX_SAFE_INTEGER) || !isInt(h.step, 1, Number.MAX_SAFE_INTEGER) || !isInt(h.count, 0, 1 << 30))
        fail('WIRE_MALFORMED', peer, 'result with a missing or invalid req, step or count');
      if (!isFiniteNumber(h.lossSum)) fail('WIRE_NOT_FINITE', peer, `result with a non-finite loss sum ${String(h.lossSum)}`);
      if (!isFiniteNumber(h.computeMs) || (h.computeMs as number) < 0) fail('WIRE_MALFORMED', peer, 'result with an invalid computeMs');
      if (h.leaving !== undefined && typeof h.leaving !== 'boolean') fail('WIRE_MALFORMED', peer, 'result with a non-boolean leaving flag');
      const want = limits.paramCount * 4;
      if (payload.byteLength !== want) fail('WIRE_LENGTH_MISMATCH', peer, `gradient of ${payload.byteLength} bytes, the model needs exactly ${want}`);
      const gradient = payloadFloats(payload, 0, limits.paramCount);
      // NaN and ±Inf are the floats whose exponent bits are all ones: an integer test per value.
      const bits = new Uint32Array(gradient.buffer, gradient.byteOffset, gradient.length);
      for (let i = 0; i < bits.length; i++)
        if ((bits[i] & 0x7f800000) === 0x7f800000) fail('WIRE_NOT_FINITE', peer, `gradient holds a non-finite value at index ${i}`);
      const msg: ResultHeader = {
        t: 'result', req: h.req as number, step: h.step as number, count: h.count as number,
        lossSum: h.lossSum as number, computeMs: h.computeMs as number, leaving: h.leaving === true,
      };
      return { msg, gradient };
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
      checkWelcomeConfig(h.config as string, h.data as Welcome['data'], peer);
      return { header: h as unknown as Welcome, payload };
    case 'step':
      if (!isInt(h.req, 0, Number.MAX_SAFE_INTEGER) || !isInt(h.step, 1, Number.MAX_SAFE_INTEGER) || !isInt(h.parts, 1, 1024) || !isInt(h.rows, 1, 1 << 30))
        fail('WIRE_MALFORMED', peer, 'step with an invalid req, step, parts or rows');
      return { header: h as unknown as StepRequest, payload };
    case 'bye':
      return { header: { t: 'bye', reason: typeof h.reason === 'string' ? h.reason : '' }, payload };
    case 'heartbeat':
      return { header: { t: 'heartbeat' }, payload };
    default:
      return fail('WIRE_UNEXPECTED', peer, `unexpected message type ${JSON.stringify(h.t)?.slice(0, 40)}`);
  }
}
