// A node's layer-streamed step as a coordinator sees it on a real socket, with a real `dptrain
// worker` process: forward waits for the weights it needs and no more (nothing comes back while a
// layer is missing), the sum goes up in chunks as backward makes them final, the last layer's
// first, then a result without payload; the chunks hold the bits a local shard computes.

import { tmpdir } from 'node:os';
import type { WebSocket } from 'ws';
import { afterAll, describe, expect, it } from 'vitest';
import { createArena } from '../src/core/arena.js';
import { loadConfigData, parseConfig } from '../src/core/config.js';
import { createKernels } from '../src/core/kernels/index.js';
import { paramLayout } from '../src/core/layout.js';
import { denseViews, layerSpan, shardGradients } from '../src/core/model.js';
import { CHUNK_FLOATS, decodeNodeFrame, encodeFrame, encodeWeightChunks, PROTOCOL_VERSION, type NodeMessage } from '../src/core/protocol/wire.js';
import { fakeCoordinator, killAll, sameBits, spawnNode, tokenFile } from './remote-helpers.js';

afterAll(killAll);

const TOKEN = 'the-shared-secret-of-the-stream-test';
// Two chunks of weights: the first holds layer 1 and the start of layer 2, the second the rest.
const raw = {
  model: { layers: [2, 300, 300, 2], hidden: 'tanh' },
  loss: 'cross-entropy',
  optimizer: { name: 'sgd', lr: 0.1 },
  data: { source: 'synthetic', name: 'spirals', n: 400 },
  training: { epochs: 1, batchSize: 32, seed: 9 },
};
const config = parseConfig(raw, 'stream-test', tmpdir());
const layout = paramLayout(config.model);
const P = layout.size;
const train = loadConfigData(config).train;
const CHUNK_ROWS = 8;

async function until(what: string, ok: () => boolean, ms = 20_000): Promise<void> {
  for (const t0 = Date.now(); !ok(); await new Promise((r) => setTimeout(r, 10))) if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
}

/** The shard's gradient sum as this process computes it with the same kernels and row chunks. */
function localSum(weights: Float32Array, order: Int32Array): Float32Array {
  const arena = createArena(config.model, { shards: 1, maxRows: CHUNK_ROWS, stateVectors: 0 });
  arena.params.set(weights);
  const kernels = createKernels('ts', arena.memory, arena.workspaces[0].scratch);
  const model = { spec: config.model, layout, kernels };
  shardGradients(model, denseViews(layout, arena.params), denseViews(layout, arena.slots[0]), arena.slots[0], arena.workspaces[0], CHUNK_ROWS, train, order, 0, order.length);
  return arena.slots[0].slice(0, P);
}

interface WelcomedNode {
  readonly ws: WebSocket;
  readonly node: ReturnType<typeof spawnNode>;
  /** Every frame it sent, raw, and decoded without its heartbeats. */
  readonly received: readonly Buffer[];
  decoded(): NodeMessage[];
  close(): Promise<void>;
}

/** A real node behind a fake coordinator, welcomed. */
async function welcomedNode(args: string[]): Promise<WelcomedNode> {
  let sock: WebSocket | null = null;
  const fake = await fakeCoordinator({ proveWith: TOKEN, onConnection: (ws) => (sock = ws) });
  const node = spawnNode(fake.url, ['--token-file', await tokenFile(TOKEN), ...args]);
  const decoded = (): NodeMessage[] => fake.received.map((f) => decodeNodeFrame(f, 'node', { paramCount: P }, (m) => new Float32Array(m.t === 'grad' ? m.count : P)).msg).filter((m) => m.t !== 'heartbeat');
  const close = async (): Promise<void> => {
    node.kill('SIGKILL');
    await fake.close();
  };
  try {
    await until('the hello', () => decoded().length === 1);
  } catch (e) {
    await close();
    throw e;
  }
  const ws = sock!;
  ws.send(encodeFrame({ t: 'welcome', v: PROTOCOL_VERSION, nodeId: 'node1', config: JSON.stringify(raw), chunkRows: CHUNK_ROWS, kernels: 'ts', data: 'source', n: train.n, nIn: 2, yWidth: 1, classes: 2, wire: 'f32' }));
  return { ws, node, decoded, close, received: fake.received };
}

describe('a layer-streamed step on a node', () => {
  it.each([1, 2])('with %i thread(s): waits for the weights it needs, sends its sum last chunk first as backward finishes, and the bits are a local shard\'s', async (threads) => {
    expect(P).toBeGreaterThan(CHUNK_FLOATS);
    expect(layerSpan(layout, 0).end).toBeLessThan(CHUNK_FLOATS);
    expect(layerSpan(layout, 1).end).toBeGreaterThan(CHUNK_FLOATS);
    const weights = Float32Array.from({ length: P }, (_, i) => 0.05 * Math.sin(i));
    const rows = 32;
    const order = Int32Array.from({ length: rows }, (_, i) => (i * 7) % train.n);
    const { ws, node, decoded, received, close } = await welcomedNode(['--threads', String(threads)]);
    try {
      // A node computes its shard in `parts` sub-shards, one per thread, folded left to right.
      ws.send(encodeFrame({ t: 'step', req: 1, step: 1, parts: threads, rows }, order));
      const chunks = encodeWeightChunks(1, weights, 'f32');
      expect(chunks).toHaveLength(2);
      ws.send(chunks[0]);
      // Layer 1 is in, layer 2 is not: forward runs layer 1 and waits; nothing can come back.
      await new Promise((r) => setTimeout(r, 700));
      expect(decoded().map((m) => m.t), node.log).toEqual(['hello']);
      ws.send(chunks[1]);
      await until('the result', () => decoded().some((m) => m.t === 'result'));

      const frames = received.slice(1).filter((f) => decodeNodeFrame(f, 'node', { paramCount: P }, () => null).msg.t !== 'heartbeat');
      const msgs = decoded().slice(1);
      expect(msgs.map((m) => m.t)).toEqual(['grad', 'grad', 'result']);
      // Backward finishes the last layers first: the chunk holding layer 2's end goes up before layer 1's.
      expect(msgs.map((m) => (m.t === 'grad' ? m.at : -1))).toEqual([CHUNK_FLOATS, 0, -1]);
      const result = msgs[2];
      expect(result).toMatchObject({ t: 'result', req: 1, step: 1, count: rows, chunked: true });
      expect((result as { hiddenMs?: number }).hiddenMs).toBeGreaterThanOrEqual(0);

      const sum = new Float32Array(P);
      for (const f of frames.slice(0, 2)) decodeNodeFrame(f, 'node', { paramCount: P }, (m) => (m.t === 'grad' ? sum.subarray(m.at, m.at + m.count) : null));
      const half = rows / 2;
      const second = threads === 1 ? null : localSum(weights, order.subarray(half));
      const local = second ? localSum(weights, order.subarray(0, half)).map((x, i) => x + second[i]) : localSum(weights, order);
      expect(sameBits(sum, local)).toBe(true);
    } finally {
      await close();
    }
  });

  it.each([
    ['real compute', []],
    ['emulated compute', ['--emulate-compute', '0.01']],
  ])('with %s: a step given up while forward waits for weights lets the next one through', async (_name, extra) => {
    const weights = Float32Array.from({ length: P }, (_, i) => 0.05 * Math.cos(i));
    const rows = 16;
    const order = Int32Array.from({ length: rows }, (_, i) => (i * 5) % train.n);
    const { ws, node, decoded, close } = await welcomedNode(extra);
    try {
      // Request 1 gets half its weights, and is then replaced by request 2 (upstream gave it up).
      ws.send(encodeFrame({ t: 'step', req: 1, step: 1, parts: 1, rows }, order));
      ws.send(encodeWeightChunks(1, weights, 'f32')[0]);
      await new Promise((r) => setTimeout(r, 300));
      ws.send(encodeFrame({ t: 'step', req: 2, step: 1, parts: 1, rows }, order));
      for (const c of encodeWeightChunks(1, weights, 'f32')) ws.send(c);
      await until('the result of request 2', () => decoded().some((m) => m.t === 'result'), 15_000);
      const answers = decoded().slice(1);
      expect(answers.every((m) => m.t !== 'error'), node.log).toBe(true);
      expect(answers.filter((m) => m.t === 'result')).toEqual([expect.objectContaining({ req: 2, chunked: true })]);
      expect(answers.filter((m) => m.t === 'grad').map((m) => (m as { req: number }).req)).toEqual([2, 2]);
    } finally {
      await close();
    }
  });
});
