// Time dilation of `dptrain bench scaling --emulate-compute --dilate D`: the links it emulates and
// the compute its nodes wait are D times slower, and the rows' times are divided by D, so a row
// stands for the --net link at the real compute speed. What is not dilated is the CPU time of frame
// handling, sums and the update: it counts ÷ D, as on a machine D times faster.

import type { NetProfile } from './net/netem.js';
import type { ScalingRow } from './rows.js';

/** The link to emulate so that a row dilated by `d` stands for `net`: bandwidth ÷ d, latency × d. */
export function dilatedNet(net: NetProfile, d: number): NetProfile {
  return d === 1 ? net : { name: `${net.name} dilated ×${d}`, latencyMs: net.latencyMs * d, bandwidthMbit: net.bandwidthMbit / d };
}

const short = (x: number): string => String(Number(x.toPrecision(6)));

/** "10 Gbit/s, 0.05 ms": a link's rate each way and its one-way latency. */
export function linkText(net: NetProfile): string {
  const rate = net.bandwidthMbit >= 1000 ? `${short(net.bandwidthMbit / 1000)} Gbit/s` : `${short(net.bandwidthMbit)} Mbit/s`;
  return `${rate}, ${short(net.latencyMs)} ms`;
}

/** "dilated ×4: emulated 2.5 Gbit/s, 0.2 ms and compute ×4, times ÷ 4: stands for 10 Gbit/s, 0.05 ms". */
export function dilationText(net: NetProfile, d: number): string {
  return `dilated ×${d}: emulated ${linkText(dilatedNet(net, d))} and compute ×${d}, times ÷ ${d}: stands for ${linkText(net)}`;
}

/** How a row's compute was done, for every table: "real", "emulated" or "emulated, dilated ×4". */
export function computeLabel(r: Pick<ScalingRow, 'compute' | 'dilation'>): string {
  if (r.compute === 'real') return 'real';
  return r.dilation === 1 ? 'emulated' : `emulated, dilated ×${r.dilation}`;
}
