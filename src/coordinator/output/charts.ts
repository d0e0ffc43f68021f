// SVG charts of training curves and scaling results: Vega-Lite specs compiled to Vega and rendered
// headless with View.toSVG() (renderer 'none': no canvas, no browser). Values that are null, NaN
// or infinite are left out of a chart rather than drawn at zero.

import { parse, View } from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { writeFileAtomic } from '../../core/io/atomic-file.js';

export interface EpochPoint {
  readonly epoch: number;
  readonly trainLoss: number;
  readonly testLoss: number;
  readonly testAccuracy: number | null;
}

export interface SpeedupRow {
  readonly workers: number;
  readonly measured: number | null;
  readonly predicted: number | null;
  /** e.g. "threads", "nodes, lan", "predicted, 64 nodes": one colour per series. */
  readonly series: string;
}

export interface StepSplitRow {
  /** One bar, e.g. "2 nodes, wan". */
  readonly label: string;
  /** One segment, e.g. "compute", "communication", "reduce + update". */
  readonly part: string;
  readonly ms: number;
}

const finite = (x: number | null | undefined): x is number => typeof x === 'number' && Number.isFinite(x);

async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new View(parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Loss per epoch (train and test) and, when any epoch has it, test accuracy beside it. */
export function trainingCurvesSvg(epochs: readonly EpochPoint[]): Promise<string> {
  // A log axis: losses fall over orders of magnitude, and a loss of 0 has no place on it.
  const loss = epochs.flatMap((e) => [
    { epoch: e.epoch, series: 'train', loss: e.trainLoss },
    { epoch: e.epoch, series: 'test', loss: e.testLoss },
  ]).filter((p) => finite(p.epoch) && finite(p.loss) && p.loss > 0);
  const accuracy = epochs
    .filter((e) => finite(e.epoch) && finite(e.testAccuracy))
    .map((e) => ({ epoch: e.epoch, accuracy: e.testAccuracy }));
  const epochAxis = { field: 'epoch', type: 'quantitative', title: 'epoch', axis: { tickMinStep: 1, format: 'd' } } as const;
  const lossPanel = {
    title: 'loss',
    width: 320,
    height: 220,
    data: { values: loss },
    mark: { type: 'line', point: true },
    encoding: {
      x: epochAxis,
      // An empty log scale has no domain and would draw NaN coordinates.
      y: { field: 'loss', type: 'quantitative', title: 'loss', scale: { type: loss.length > 0 ? 'log' : 'linear' } },
      // Inside its own panel: beside the whole chart it would sit next to the accuracy panel.
      color: { field: 'series', type: 'nominal', title: null, sort: ['train', 'test'], legend: { orient: 'top-right' } },
    },
  } as const;
  if (accuracy.length === 0) return renderSvg(lossPanel);
  const accuracyPanel = {
    title: 'test accuracy',
    width: 320,
    height: 220,
    data: { values: accuracy },
    mark: { type: 'line', color: '#54a24b', point: { color: '#54a24b' } },
    encoding: {
      x: epochAxis,
      y: { field: 'accuracy', type: 'quantitative', title: 'test accuracy', axis: { format: '.1%' }, scale: { zero: false } },
    },
  } as const;
  return renderSvg({ hconcat: [lossPanel, accuracyPanel], resolve: { legend: { color: 'independent' } } });
}

/**
 * Speedup against workers: the ideal y = x, measured points and predicted curves per series. On
 * log-log axes (base 2) once the workers span 16× or more, so 1…64 nodes stay readable.
 */
export function speedupSvg(rows: readonly SpeedupRow[]): Promise<string> {
  const points = rows.flatMap((r) => [
    { workers: r.workers, series: r.series, kind: 'measured', speedup: r.measured },
    { workers: r.workers, series: r.series, kind: 'predicted', speedup: r.predicted },
  ]).filter((p) => finite(p.workers) && p.workers > 0 && finite(p.speedup) && p.speedup > 0);
  const workers = points.map((p) => p.workers);
  const lo = workers.length ? Math.min(...workers) : 1;
  const hi = workers.length ? Math.max(...workers) : 2;
  const scale = hi / lo >= 16 ? ({ type: 'log', base: 2 } as const) : ({ type: 'linear', zero: true } as const);
  const x = { field: 'workers', type: 'quantitative', title: 'workers', scale } as const;
  const y = { field: 'speedup', type: 'quantitative', title: 'speedup', scale } as const;
  const color = { field: 'series', type: 'nominal', title: 'series' } as const;
  return renderSvg({
    width: 420,
    height: 300,
    layer: [
      {
        data: { values: [{ workers: lo, speedup: lo, kind: 'ideal (y = x)' }, { workers: hi, speedup: hi, kind: 'ideal (y = x)' }] },
        mark: { type: 'line', color: '#888', strokeDash: [2, 3] },
        encoding: { x, y, detail: { field: 'kind', type: 'nominal' } },
      },
      {
        data: { values: [{ workers: hi, speedup: hi, label: 'ideal' }] },
        mark: { type: 'text', align: 'right', dx: -4, dy: -6, color: '#888' },
        encoding: { x, y, text: { field: 'label', type: 'nominal' } },
      },
      {
        data: { values: points },
        transform: [{ filter: "datum.kind === 'predicted'" }],
        mark: 'line',
        encoding: {
          x, y, color,
          // An encoding rather than a mark property, so the legend shows the dash too.
          strokeDash: { field: 'kind', type: 'nominal', title: null, scale: { domain: ['predicted'], range: [[6, 3]] } },
        },
      },
      {
        data: { values: points },
        transform: [{ filter: "datum.kind === 'measured'" }],
        mark: { type: 'point', filled: true, size: 60 },
        encoding: { x, y, color, shape: { field: 'kind', type: 'nominal', title: null } },
      },
    ],
  });
}

/** The split of one step into its parts, one stacked bar per label, parts in the order given. */
export function stepSplitSvg(rows: readonly StepSplitRow[]): Promise<string> {
  const labels = [...new Set(rows.map((r) => r.label))];
  const parts = [...new Set(rows.map((r) => r.part))];
  const values = rows.filter((r) => finite(r.ms) && r.ms >= 0).map((r) => ({ ...r, order: parts.indexOf(r.part) }));
  return renderSvg({
    width: Math.max(240, 48 * labels.length),
    height: 260,
    data: { values },
    mark: 'bar',
    encoding: {
      x: { field: 'label', type: 'nominal', title: null, sort: labels, axis: { labelAngle: -30 } },
      y: { field: 'ms', type: 'quantitative', title: 'ms per step', stack: 'zero' },
      color: { field: 'part', type: 'nominal', title: 'part of the step', sort: parts },
      order: { field: 'order', type: 'quantitative' },
      tooltip: [{ field: 'label' }, { field: 'part' }, { field: 'ms', format: '.2f' }],
    },
  });
}

export function writeSvgAtomic(path: string, svg: string): void {
  writeFileAtomic(path, [Buffer.from(svg, 'utf8')]);
}
