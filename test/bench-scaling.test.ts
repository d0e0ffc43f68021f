// `dptrain bench scaling` as a user runs it (compiled CLI, real worker processes and sockets): rows,
// results.json, charts, emulated links, --net-namespaces and its fallback, Ctrl-C, nothing left running.

import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ScalingReport } from '../src/coordinator/bench/scaling.js';
import { CLI, workdir as scratch } from './helpers.js';

const IS_ROOT = process.getuid?.() === 0;
const NOBODY = 65534;

const tiny = {
  model: { layers: [2, 64, 64, 2], hidden: 'relu', output: 'linear' },
  loss: 'cross-entropy',
  optimizer: { name: 'sgd', lr: 0.05 },
  data: { source: 'synthetic', name: 'spirals' },
  training: { batchSize: 64, seed: 3 },
};

/** A folder anyone may use (a run as nobody writes its results here too). */
function workdir(): string {
  const dir = scratch('bench', tiny);
  chmodSync(dir, 0o777);
  chmodSync(join(dir, 'c.json'), 0o644);
  return dir;
}

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly seconds: number;
  readonly pid: number;
}

function bench(dir: string, args: string[], extra: { uid?: number; env?: NodeJS.ProcessEnv } = {}): Run {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [CLI, 'bench', 'scaling', '--config', 'c.json', '--out', 'out', ...args], {
    cwd: dir, encoding: 'utf8', timeout: 60_000, env: extra.env ?? process.env,
    ...(extra.uid === undefined ? {} : { uid: extra.uid, gid: extra.uid }),
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, seconds: (performance.now() - t0) / 1000, pid: r.pid };
}

const results = (dir: string): ScalingReport => JSON.parse(readFileSync(join(dir, 'out', 'results.json'), 'utf8')) as ScalingReport;

/** PIDs among `pids` that are still a `dptrain worker`. */
function liveWorkers(pids: readonly number[]): number[] {
  const ps = spawnSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' }).stdout;
  const live = new Map(ps.split('\n').slice(1).map((l) => l.trim()).filter(Boolean).map((l) => [Number(l.split(/\s+/)[0]), l]));
  return pids.filter((p) => live.get(p)?.includes('worker'));
}

/** The namespaces (and links) the bench process `pid` made: named after its PID, so another run's are not counted. */
const ourNamespaces = (pid: number): string[] => (spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '').split('\n').filter((l) => l.startsWith(`dptrain-${pid}-`));

/** Whether `ip netns add` works here (root, iproute2, a kernel that lets us). */
function namespacesWork(): boolean {
  if (!IS_ROOT) return false;
  const name = `dptrain-probe-${process.pid}`;
  const ok = spawnSync('ip', ['netns', 'add', name]).status === 0;
  spawnSync('ip', ['netns', 'delete', name]);
  return ok && spawnSync('tc', ['-V']).status === 0;
}

const fallbackLine = /^dptrain bench: --net-namespaces needs root and iproute2 \(ip, tc\): (.+); using the user-space proxy instead$/;

describe('dptrain bench scaling', () => {
  it('runs threads 1,2 × nodes 0,1 end to end on a tiny model, writes results.json and both charts, leaves no worker', () => {
    const dir = workdir();
    const r = bench(dir, ['--threads', '1,2', '--nodes', '0,1', '--batch', '64', '--steps', '4', '--warmup', '2']);
    expect(r.stderr).not.toMatch(/error|Error/);
    expect(r.code).toBe(0);
    expect(r.seconds).toBeLessThan(30);
    expect(r.stdout).toMatch(/^dptrain bench scaling: .*c\.json \(2-64-64-2, 4,482 parameters\)/);
    expect(r.stdout).toMatch(/PREDICTED by the scale-out model, not measured/);

    const rep = results(dir);
    expect(rep.linkMode).toBe('loopback');
    expect(rep.params).toBe(4482);
    expect(rep.rows.map((x) => [x.kind, x.threads, x.nodes, x.workers])).toEqual([
      ['local', 1, 0, 1], ['local', 2, 0, 2], ['nodes', 1, 1, 1], ['nodes', 2, 1, 2],
    ]);
    for (const x of rep.rows) {
      expect(x.measuredSteps).toBe(4);
      for (const v of [x.stepMs, x.computeMs, x.updateMs, x.samplesPerSec, x.speedup, x.efficiency]) expect(v).toBeGreaterThan(0);
      expect(x.stepMs).toBeGreaterThanOrEqual(x.computeMs);
      expect(x.efficiency).toBeCloseTo(x.speedup / x.workers, 12);
      if (x.kind === 'nodes') {
        // The weights go out and one gradient comes back: 4 bytes per parameter each way, plus headers.
        expect(x.bytesSentPerNodeStep).toBeGreaterThan(4 * 4482);
        expect(x.bytesReceivedPerNodeStep).toBeGreaterThan(4 * 4482);
        expect(x.predictedStepMs).toBeGreaterThan(0);
        expect(Number.isFinite(x.predictionErrorPct)).toBe(true);
        expect(x.nodePids).toHaveLength(1);
        // Layer-streamed: a node's transfers during its compute are measured, never more than it.
        expect(x.hiddenMs).toBeGreaterThanOrEqual(0);
        expect(x.hiddenMs).toBeLessThanOrEqual(2 * x.computeMs);
      } else {
        expect(x.bytesSentPerNodeStep).toBeNull();
        expect(x.predictedStepMs).toBeNull();
      }
    }
    expect(rep.rows[0].speedup).toBe(1);
    const s = rep.scaleout;
    expect(s.frame.frameBytes).toBeGreaterThan(4 * 4482);
    expect(s.frame.perByteSec).toBeGreaterThanOrEqual(0);
    expect(s.batches.map((b) => b.batch)).toEqual([64]);
    expect(s.curve.map((p) => `${p.threadsPerNode}:${p.nodes}`)).toEqual([1, 2].flatMap((t) => [1, 2, 4, 8, 16, 32, 64].map((n) => `${t}:${n}`)));
    for (const p of s.curve) for (const e of [p.efficiency, p.sharedLinkEfficiency, p.ringEfficiency, p.treeEfficiency]) expect(e).toBeGreaterThan(0);

    const speedup = readFileSync(join(dir, 'out', 'speedup.svg'), 'utf8');
    const split = readFileSync(join(dir, 'out', 'step-split.svg'), 'utf8');
    for (const svg of [speedup, split]) {
      expect(svg.startsWith('<svg')).toBe(true);
      expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
      expect(svg).not.toMatch(/NaN/);
    }
    for (const text of ['ideal', 'measured', 'predicted', 'batch 64 threads', 'batch 64 nodes×1t', 'batch 64 nodes×2t', 'workers', 'speedup']) expect(speedup).toContain(`>${text}<`);
    for (const text of ['compute', 'hidden transfers', 'dispatch + wait', 'communication', 'reduce + update', 'b64 1t', 'b64 2t', 'b64 1n×1t', 'b64 1n×2t']) expect(split).toContain(`>${text}<`);

    expect(liveWorkers(rep.rows.flatMap((x) => x.nodePids))).toEqual([]);
  });

  it('--wire bf16: node rows carry half the bytes, and the report says which encoding it measured', () => {
    const dir = workdir();
    const r = bench(dir, ['--threads', '1', '--nodes', '1', '--batch', '64', '--steps', '3', '--warmup', '1', '--wire', 'bf16']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/kernels .*, wire bf16, net loopback/);
    const rep = results(dir);
    expect(rep.wire).toBe('bf16');
    const row = rep.rows.find((x) => x.kind === 'nodes')!;
    expect(row.bytesReceivedPerNodeStep).toBeGreaterThan(2 * 4482);
    expect(row.bytesReceivedPerNodeStep).toBeLessThan(2 * 4482 + 400);
    expect(rep.scaleout.frame.frameBytes).toBeLessThan(2 * 4482 + 400);
    expect(liveWorkers(rep.rows.flatMap((x) => x.nodePids))).toEqual([]);
  });

  it('--emulate-compute --scaling weak --dilate 50: emulated nodes, rows labelled weak, emulated and dilated, global batch = per-worker × workers', () => {
    const dir = workdir();
    const r = bench(dir, ['--threads', '1', '--nodes', '0,2', '--batch', '16', '--steps', '3', '--warmup', '1', '--scaling', 'weak', '--emulate-compute', '--net', '0.04ms:25000mbit', '--dilate', '50']);
    expect(r.code).toBe(0);
    const rep = results(dir);
    expect([rep.scaling, rep.nodeCompute, rep.dilation]).toEqual([['weak'], 'emulated', 50]);
    const stands = 'dilated ×50: emulated 500 Mbit/s, 2 ms and compute ×50, times ÷ 50: stands for 25 Gbit/s, 0.04 ms';
    expect(rep.dilated).toEqual({ latencyMs: 2, bandwidthMbit: 500, text: stands });
    expect(rep.rows.map((x) => [x.kind, x.scaling, x.compute, x.dilation, x.batch, x.sweepBatch, x.workers])).toEqual([
      ['local', 'weak', 'real', 1, 16, 16, 1], ['nodes', 'weak', 'emulated', 50, 32, 16, 2],
    ]);
    const [one, two] = rep.rows;
    expect(one.emulatedMsPerSample).toBeNull();
    expect(two.emulatedMsPerSample).toBeGreaterThan(0);
    expect(two.wallStepMs).toBeCloseTo(50 * two.stepMs, 6);
    // Lower bounds on the clock: each node slept 16 rows × ms × 50, and the link is 2 ms each way.
    // Real compute of this tiny model, ÷ 50, would fall far below the first.
    expect(two.computeMs).toBeGreaterThanOrEqual(16 * two.emulatedMsPerSample!);
    expect(two.wallStepMs).toBeGreaterThanOrEqual(4);
    expect(two.efficiency).toBeCloseTo(two.samplesPerSec / (2 * one.samplesPerSec), 9);
    expect(two.predictedStepMs).toBeGreaterThan(0);

    expect(r.stdout).toMatch(/^EMULATED COMPUTE on node rows \(benchmark only\)/m);
    expect(r.stdout).toContain(stands);
    expect(r.stdout).toMatch(/^ +weak +emulated, dilated ×50 +32 \(16\/worker\) +1 +2 +2 /m);
    expect(r.stdout).toMatch(/^ +weak +real +16 \(16\/worker\) +1 +- +1 /m);
    const md = readFileSync(join(dir, 'out', 'results.md'), 'utf8');
    expect(md).toContain(`- ${stands}`);
    expect(md).toMatch(/^\| weak \| emulated, dilated ×50 \| 32 \(16\/worker\) \| 1 \| 2 \| 2 \|/m);
    expect(r.stderr).toMatch(/^bench: emulated compute for the weak sweep at batch 16: [\d.e-]+ ms per sample, measured on this 1-thread row; nodes wait ×50 that$/m);
    expect(r.stderr).toMatch(/^bench: weak, batch 32 \(16 per worker\), 2 nodes × 1 thread, emulated, dilated ×50 compute: [\d]+ samples\/s \(step [\d.]+ ms, [\d.]+ ms on the clock\)$/m);
    expect(liveWorkers(two.nodePids)).toEqual([]);
  });

  it('--model-only prints the scale-out model\'s table, labelled as a prediction, and measures and writes nothing', () => {
    const dir = workdir();
    const r = bench(dir, ['--model-only']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^PREDICTED by the scale-out model .*not measured: 784-512-512-10/);
    expect(r.stdout.match(/^(10|1) Gbit\/s, .* scaling/gm)).toHaveLength(4);
    expect(r.stdout).toMatch(/^\s*tree k=1 bf16 overlap(\s+\S+%){7}/m);
    expect(existsSync(join(dir, 'out'))).toBe(false);
  });

  it('--net 5ms:100mbit sends node rows through the proxy (a step takes at least the 2 × 5 ms round trip); --fanout 1 runs them again as a tree whose coordinator sends to one head', () => {
    const dir = workdir();
    const r = bench(dir, ['--threads', '1', '--nodes', '3', '--batch', '48', '--steps', '4', '--warmup', '1', '--net', '5ms:100mbit', '--fanout', '1']);
    expect(r.code, r.stderr).toBe(0);
    const rep = results(dir);
    expect(rep.linkMode).toBe('proxy');
    expect(rep.net).toEqual({ name: '5ms:100mbit', latencyMs: 5, bandwidthMbit: 100 });
    // The 1-thread local row is run for the speedups, though --nodes has no 0.
    expect(rep.rows.map((x) => [x.kind, x.baselineOnly, x.nodes, x.fanout])).toEqual([['local', true, 0, null], ['nodes', false, 3, null], ['nodes', false, 3, 1]]);
    const [, star, tree] = rep.rows;
    for (const node of [star, tree]) {
      expect(node.link).toBe('proxy');
      expect(node.stepMs).toBeGreaterThanOrEqual(10);
      expect(node.commMs).toBeGreaterThanOrEqual(9);
      expect(node.predictedStepMs).toBeGreaterThanOrEqual(10);
      expect(liveWorkers(node.nodePids)).toEqual([]);
    }
    expect(rep.scaleout.latencySec).toBe(0.005);
    // The star's coordinator sends every node the weights; the tree's only its one head (of three).
    expect(star.bytesSentPerNodeStep).toBeGreaterThan(4 * 4482);
    expect(tree.bytesSentPerNodeStep!).toBeLessThan(star.bytesSentPerNodeStep! / 2);
    expect(tree.bytesSentPerNodeStep!).toBeGreaterThan(star.bytesSentPerNodeStep! / 4);
    // Through the head, the rest of the tree's rows cross a second emulated link.
    expect(tree.stepMs).toBeGreaterThanOrEqual(20);
    // Every link, the coordinator's and those between nodes, carries the weights once one way and
    // one sum the other per step (f32: 4 bytes a parameter each way, plus headers).
    for (const row of [star, tree]) {
      expect(row.maxLinkBytesPerStep!).toBeGreaterThan(4 * 4482);
      expect(row.maxLinkBytesPerStep!).toBeLessThan(4 * 4482 + 2048);
    }
    expect(r.stdout).toMatch(/ 3 tree k=1 /);
  });

  it('--net-namespaces: the namespace path where root and iproute2 allow it, nothing left behind', () => {
    const dir = workdir();
    const r = bench(dir, ['--threads', '1', '--nodes', '1', '--batch', '64', '--steps', '4', '--warmup', '1', '--net', '5ms:100mbit', '--net-namespaces']);
    expect(r.code).toBe(0);
    const rep = results(dir);
    const notices = r.stderr.split('\n').filter((l) => l.includes('--net-namespaces'));
    expect(notices).toHaveLength(1);
    if (namespacesWork()) {
      expect(notices[0]).toMatch(/^dptrain bench: --net-namespaces: each node in its own network namespace on a veth pair \(tc tbf at 100 Mbit\/s each way\); latency 5 ms from the user-space proxy/);
      expect(rep.linkMode).toBe('namespace');
      expect(rep.notice).toBeNull();
      expect(ourNamespaces(r.pid)).toEqual([]);
      expect(spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).stdout).not.toMatch(new RegExp(`\\bdpt${r.pid}[hn]\\d+`));
    } else {
      expect(notices[0]).toMatch(fallbackLine);
      expect(rep.linkMode).toBe('proxy');
    }
    expect(rep.rows[1].stepMs).toBeGreaterThanOrEqual(10);
    expect(liveWorkers(rep.rows[1].nodePids)).toEqual([]);
  });

  it('--net-namespaces without root prints one line and falls back to the proxy', () => {
    const dir = workdir();
    const r = bench(dir, ['--threads', '1', '--nodes', '1', '--batch', '64', '--steps', '3', '--warmup', '1', '--net', '5ms:100mbit', '--net-namespaces'], IS_ROOT ? { uid: NOBODY } : {});
    expect(r.code).toBe(0);
    const notices = r.stderr.split('\n').filter((l) => l.includes('--net-namespaces'));
    expect(notices).toHaveLength(1);
    expect(notices[0]).toMatch(fallbackLine);
    expect(notices[0]).toMatch(/not running as root \(uid \d+\)/);
    const rep = results(dir);
    expect(rep.linkMode).toBe('proxy');
    expect(rep.notice).toBe(notices[0]);
    expect(rep.rows[1].stepMs).toBeGreaterThanOrEqual(10);
    expect(liveWorkers(rep.rows[1].nodePids)).toEqual([]);
  });

  it.runIf(IS_ROOT)('--net-namespaces as root without iproute2 on the PATH prints one line and falls back', () => {
    const dir = workdir();
    const r = bench(dir, ['--threads', '1', '--nodes', '1', '--batch', '64', '--steps', '3', '--warmup', '1', '--net', '5ms:100mbit', '--net-namespaces'], { env: { ...process.env, PATH: join(dir, 'no-such-bin') } });
    expect(r.code).toBe(0);
    const notices = r.stderr.split('\n').filter((l) => l.includes('--net-namespaces'));
    expect(notices).toEqual([expect.stringMatching(fallbackLine)]);
    expect(notices[0]).toMatch(/: ip not found; /);
    expect(results(dir).linkMode).toBe('proxy');
  });

  /** Starts a long node-row run and resolves once its `dptrain worker` child exists. */
  async function startLongRun(dir: string, extra: string[] = []) {
    const child = spawn(process.execPath, [CLI, 'bench', 'scaling', '--config', 'c.json', '--out', 'out', '--threads', '1', '--nodes', '1', '--batch', '64', '--steps', '1500', '--warmup', '1', '--net', '5ms:100mbit', ...extra], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    const run = { child, stderr: '', exited: new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code))), workers: [] as number[] };
    child.stderr.setEncoding('utf8').on('data', (d: string) => (run.stderr += d));
    for (let i = 0; i < 200 && run.workers.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const ps = spawnSync('ps', ['-eo', 'pid,ppid,args'], { encoding: 'utf8' }).stdout.split('\n');
      run.workers = ps.map((l) => l.trim().split(/\s+/)).filter((f) => Number(f[1]) === child.pid && f.includes('worker')).map((f) => Number(f[0]));
    }
    expect(run.workers).toHaveLength(1);
    // Let it get into its steps, so that the interrupt lands mid-request rather than during start-up.
    await new Promise((r) => setTimeout(r, 1500));
    return run;
  }

  it('Ctrl-C during a node row stops the worker processes and exits 130', async () => {
    const dir = workdir();
    const run = await startLongRun(dir);
    try {
      run.child.kill('SIGINT');
      expect(await run.exited).toBe(130);
      expect(run.stderr).toMatch(/interrupted by SIGINT; every node process, proxy and namespace it started is stopped/);
      expect(liveWorkers(run.workers)).toEqual([]);
      expect(existsSync(join(dir, 'out', 'results.json'))).toBe(false);
    } finally {
      run.child.kill('SIGKILL');
    }
  });

  it('a node that dies mid-row fails the run with one line (exit 1) and leaves nothing behind', async () => {
    const dir = workdir();
    const useNamespaces = namespacesWork();
    const run = await startLongRun(dir, useNamespaces ? ['--net-namespaces'] : []);
    try {
      process.kill(run.workers[0], 'SIGKILL');
      expect(await run.exited).toBe(1);
      const errors = run.stderr.split('\n').filter((l) => l.startsWith('dptrain: '));
      // One line, ending with what the node last wrote to stderr (here its "joined as …" line).
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatch(new RegExp(`^dptrain: worker node 1 \\(pid ${run.workers[0]}\\) exited \\(SIGKILL\\) before its row finished(: dptrain worker: joined as .*)?$`));
      if (useNamespaces) expect(ourNamespaces(run.child.pid!)).toEqual([]);
    } finally {
      run.child.kill('SIGKILL');
    }
  });

  it('refuses bad flags with one line and exit 2', () => {
    const dir = workdir();
    const cases: [string[], RegExp][] = [
      [['--threads', '0,1'], /^dptrain: --threads: expected a comma-separated list of whole numbers from 1 to 1024, got "0,1"\n$/],
      [['--net', '5ms'], /^dptrain: --net: expected loopback, lan, wan or LATENCYms:BANDWIDTHmbit/],
      [['--warmup', '0'], /^dptrain: --warmup: expected a whole number ≥ 1/],
    ];
    for (const [args, message] of cases) {
      const r = bench(dir, args);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
  });
});
