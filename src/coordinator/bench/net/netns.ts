// `--net-namespaces`: a network namespace per worker node on a veth pair rate-limited by `tc tbf`
// (root and iproute2). Latency stays in the user-space proxy: the kernels we target lack netem.

import { spawnSync } from 'node:child_process';

export interface NetnsLink {
  readonly ns: string;
  /** Our end of the veth pair (deleting it deletes both ends). */
  readonly hostIf: string;
  /** Our end's address: the node's proxy listens here, the node connects here. */
  readonly hostAddress: string;
  /** argv prefix that runs a program inside the namespace (`ip netns exec` execs it: same PID). */
  readonly exec: readonly string[];
  /** Removes the pair and the namespace; safe to call twice and from an exit handler. */
  remove(): void;
}

interface RunResult {
  readonly ok: boolean;
  readonly why: string;
}

function run(cmd: string, args: readonly string[]): RunResult {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10_000 });
  if (r.error) {
    const missing = (r.error as NodeJS.ErrnoException).code === 'ENOENT';
    return { ok: false, why: missing ? `${cmd} not found` : `${cmd}: ${r.error.message}` };
  }
  if (r.status !== 0) {
    const said = `${r.stderr}${r.stdout}`.trim().split('\n')[0];
    return { ok: false, why: `\`${cmd} ${args.join(' ')}\` failed: ${said || `exit ${r.status}`}` };
  }
  return { ok: true, why: '' };
}

/**
 * A private /30 per link inside 10.0.0.0/8, the second octet from our PID so two runs at once do
 * not collide. Veth pairs and namespaces have no route anywhere else: nothing leaves the machine.
 */
function subnet(index: number): { host: string; node: string; prefix: string } {
  const b = 200 + (process.pid % 50);
  return { host: `10.${b}.${index}.1`, node: `10.${b}.${index}.2`, prefix: `10.${b}.${index}.` };
}

/**
 * A namespace and veth pair for link `index` (0 is the probe, nodes count from 1), tbf-shaped at
 * `bandwidthMbit` each way when given. Throws with the first failing command; leaves nothing behind.
 */
export function createNetnsLink(index: number, bandwidthMbit: number | null): NetnsLink {
  if (!(Number.isInteger(index) && index >= 0 && index <= 255)) throw new RangeError(`netns: link index must be 0..255, got ${index}`);
  const tag = `${process.pid}-${index}`;
  const ns = `dptrain-${tag}`;
  // Interface names are at most 15 bytes: "dpt" + 7-digit PID + "h"/"n" + up to 3 digits fits.
  const hostIf = `dpt${process.pid}h${index}`;
  const nodeIf = `dpt${process.pid}n${index}`;
  const a = subnet(index);
  let removed = false;
  const remove = (): void => {
    if (removed) return;
    removed = true;
    run('ip', ['link', 'delete', hostIf]);
    run('ip', ['netns', 'delete', ns]);
  };
  const addrs = spawnSync('ip', ['-4', '-o', 'addr', 'show'], { encoding: 'utf8' }).stdout ?? '';
  if (addrs.includes(` ${a.prefix}`)) throw new Error(`netns: ${a.prefix}0/30 is already in use on this machine`);
  // A burst of one 64 KiB segment (veth offloads send those) or one millisecond of the rate, and
  // room for two of them plus 40 ms at the rate, so tbf paces TCP instead of dropping its bursts.
  const tbf = (mbit: number): string[] => {
    const bytesPerSec = (mbit * 1e6) / 8;
    const burst = Math.max(64 * 1024 + 1600, Math.ceil(bytesPerSec / 1000));
    const limit = Math.max(1 << 20, 2 * burst + Math.ceil(0.04 * bytesPerSec));
    return ['root', 'tbf', 'rate', `${Math.round(mbit * 1e6)}bit`, 'burst', String(burst), 'limit', String(limit)];
  };
  const steps: [string, string[]][] = [
    ['ip', ['netns', 'add', ns]],
    ['ip', ['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nodeIf]],
    ['ip', ['link', 'set', nodeIf, 'netns', ns]],
    ['ip', ['addr', 'add', `${a.host}/30`, 'dev', hostIf]],
    ['ip', ['link', 'set', hostIf, 'up']],
    ['ip', ['-n', ns, 'addr', 'add', `${a.node}/30`, 'dev', nodeIf]],
    ['ip', ['-n', ns, 'link', 'set', nodeIf, 'up']],
    ['ip', ['-n', ns, 'link', 'set', 'lo', 'up']],
  ];
  if (bandwidthMbit !== null) {
    steps.push(['tc', ['qdisc', 'add', 'dev', hostIf, ...tbf(bandwidthMbit)]]);
    steps.push(['tc', ['-n', ns, 'qdisc', 'add', 'dev', nodeIf, ...tbf(bandwidthMbit)]]);
  }
  for (const [cmd, args] of steps) {
    const r = run(cmd, args);
    if (!r.ok) {
      remove();
      throw new Error(r.why);
    }
  }
  return { ns, hostIf, hostAddress: a.host, exec: ['ip', 'netns', 'exec', ns], remove };
}

/** Null when namespaces work here (tried for real, with tbf), else why not. */
export function netnsUnavailable(): string | null {
  if (process.platform !== 'linux') return `not Linux (${process.platform})`;
  const uid = process.getuid?.();
  if (uid !== 0) return `not running as root (uid ${uid})`;
  for (const tool of ['ip', 'tc']) {
    const r = run(tool, ['-V']);
    if (!r.ok) return r.why;
  }
  try {
    createNetnsLink(0, 100).remove();
  } catch (e) {
    return (e as Error).message;
  }
  return null;
}
