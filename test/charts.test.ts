// The charts render headless to well-formed SVG with the expected series: marks counted per mark
// group, axis titles and legend entries found as text; null and NaN values are left out, not fatal.

import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { speedupSvg, stepSplitSvg, trainingCurvesSvg, writeSvgAtomic, type SpeedupRow } from '../src/coordinator/output/charts.js';
import { workdir } from './helpers.js';

/** Balanced tags, one <svg> root: enough of XML to catch a truncated or garbled document. */
function expectWellFormedSvg(svg: string): void {
  expect(svg.startsWith('<svg')).toBe(true);
  expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
  const open: string[] = [];
  for (const m of svg.matchAll(/<(\/?)([A-Za-z][\w:-]*)[^>]*?(\/?)>/g)) {
    const [, closing, name, selfClosing] = m;
    if (selfClosing) continue;
    if (!closing) open.push(name);
    else expect(open.pop()).toBe(name);
  }
  expect(open).toEqual([]);
  expect(svg).not.toMatch(/NaN/);
}

/** Items drawn by the data marks of one kind (`symbol`, `line`, `rect`), over all their groups. */
function markItems(svg: string, kind: string): number {
  let n = 0;
  for (const m of svg.matchAll(new RegExp(`<g class="mark-${kind} role-mark[^"]*"[^>]*>(.*?)</g>`, 'g'))) n += (m[1].match(/<path/g) ?? []).length;
  return n;
}

const texts = (svg: string): string[] => [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]);

describe('trainingCurvesSvg', () => {
  const epochs = [1, 2, 3, 4, 5].map((epoch) => ({ epoch, trainLoss: 1 / epoch, testLoss: 1.2 / epoch, testAccuracy: 0.8 + 0.03 * epoch }));

  it('draws train and test loss and test accuracy per epoch', async () => {
    const svg = await trainingCurvesSvg(epochs);
    expectWellFormedSvg(svg);
    expect(markItems(svg, 'line')).toBe(3);
    expect(markItems(svg, 'symbol')).toBe(3 * 5);
    expect(texts(svg)).toEqual(expect.arrayContaining(['epoch', 'loss', 'test accuracy', 'train', 'test']));
  });

  it('leaves the accuracy panel out when no epoch has one, and skips NaN losses', async () => {
    const svg = await trainingCurvesSvg(epochs.map((e, i) => ({ ...e, testAccuracy: null, testLoss: i === 2 ? NaN : e.testLoss })));
    expectWellFormedSvg(svg);
    expect(texts(svg)).not.toContain('test accuracy');
    expect(markItems(svg, 'symbol')).toBe(5 + 4);
  });

  it('renders an empty run', async () => {
    expectWellFormedSvg(await trainingCurvesSvg([]));
  });

  it('puts the loss legend in the loss panel and the loss on a log axis', async () => {
    const falling = [1, 2, 3, 4, 5, 6, 7].map((epoch) => ({ epoch, trainLoss: 10 ** (1 - epoch / 2), testLoss: 1.5 * 10 ** (1 - epoch / 2), testAccuracy: 0.8 }));
    const svg = await trainingCurvesSvg(falling);
    expectWellFormedSvg(svg);
    // Vega writes each panel's group in turn: the legend belongs between the first and the second.
    const legend = svg.indexOf('role-legend');
    expect(legend).toBeGreaterThan(svg.indexOf('concat_0_group'));
    expect(legend).toBeLessThan(svg.indexOf('concat_1_group'));
    // Losses from 3 down to 0.003: a log axis labels each decade, a linear one could not show them all.
    expect(texts(svg)).toEqual(expect.arrayContaining(['0.01', '0.1', '1']));
  });
});

describe('speedupSvg', () => {
  const rows: SpeedupRow[] = [
    { workers: 1, measured: 1, predicted: 1, series: 'threads' },
    { workers: 2, measured: 1.8, predicted: 1.9, series: 'threads' },
    ...[1, 2, 4, 8, 16, 64].map((workers) => ({ workers, measured: workers <= 2 ? 0.9 * workers : null, predicted: workers / (1 + 0.05 * workers), series: 'nodes, lan' })),
  ];

  it('draws the ideal line, measured points and one predicted curve per series', async () => {
    const svg = await speedupSvg(rows);
    expectWellFormedSvg(svg);
    expect(markItems(svg, 'symbol')).toBe(4);
    // The ideal y = x and one predicted curve for each of the two series.
    expect(markItems(svg, 'line')).toBe(3);
    expect(texts(svg)).toEqual(expect.arrayContaining(['workers', 'speedup', 'ideal', 'threads', 'nodes, lan', 'predicted', 'measured']));
    // 1…64 workers: log axes in powers of two.
    expect(texts(svg)).toEqual(expect.arrayContaining(['32', '64']));
  });

  it('skips null, NaN and non-positive speedups', async () => {
    const svg = await speedupSvg([
      { workers: 1, measured: 1, predicted: null, series: 'threads' },
      { workers: 2, measured: NaN, predicted: Number.POSITIVE_INFINITY, series: 'threads' },
      { workers: 3, measured: 0, predicted: 2.5, series: 'threads' },
    ]);
    expectWellFormedSvg(svg);
    expect(markItems(svg, 'symbol')).toBe(1);
    expectWellFormedSvg(await speedupSvg([]));
  });
});

describe('stepSplitSvg', () => {
  it('stacks the parts of each step, one segment per finite value', async () => {
    const parts = ['compute', 'communication', 'reduce + update'];
    const svg = await stepSplitSvg([
      ...parts.map((part, i) => ({ label: '1 thread', part, ms: [10, 0, 1][i] })),
      ...parts.map((part, i) => ({ label: '2 nodes, wan', part, ms: [5, 40, 1][i] })),
      { label: '2 nodes, lan', part: 'compute', ms: NaN },
    ]);
    expectWellFormedSvg(svg);
    expect(markItems(svg, 'rect')).toBe(6);
    expect(texts(svg)).toEqual(expect.arrayContaining(['ms per step', '1 thread', '2 nodes, wan', ...parts]));
  });
});

describe('writeSvgAtomic', () => {
  it('writes the chart whole', async () => {
    const dir = workdir('charts');
    try {
      const svg = await stepSplitSvg([{ label: 'a', part: 'compute', ms: 1 }]);
      writeSvgAtomic(join(dir, 'split.svg'), svg);
      expect(readFileSync(join(dir, 'split.svg'), 'utf8')).toBe(svg);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
