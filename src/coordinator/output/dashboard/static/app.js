// The dashboard page's script: keeps the run's history as the server pushes it (a snapshot on
// connect, deltas after), and draws it with uPlot. It only listens: nothing it does reaches the run.
// The message shapes are Snapshot and Delta in ../history.ts.

import uPlot from '/vendor/uPlot.esm.js';

const COLORS = { a: '#1f6feb', b: '#d97706', c: '#16a34a', faint: '#9aa4b2' };

// The last snapshot with the deltas since applied (the shape of Snapshot).
const run = { info: null, status: null, stride: 1, points: [], epochs: [], executors: [], log: [] };

const $ = (id) => document.getElementById(id);

// Each chart: its series and how to read them from the history.
const CHARTS = [
  {
    id: 'chart-loss-step', x: 'step', source: () => run.points,
    series: [
      { label: 'batch loss', stroke: COLORS.faint, width: 1, value: (p) => p.batchLoss },
      { label: 'epoch mean so far', stroke: COLORS.a, width: 2, value: (p) => p.loss },
    ],
  },
  {
    id: 'chart-loss-epoch', x: 'epoch', source: () => run.epochs,
    series: [
      { label: 'train', stroke: COLORS.a, width: 2, value: (e) => e.trainLoss },
      { label: 'test', stroke: COLORS.b, width: 2, value: (e) => e.testLoss },
    ],
  },
  {
    id: 'chart-accuracy', x: 'epoch', source: () => run.epochs,
    series: [{ label: 'test accuracy %', stroke: COLORS.c, width: 2, value: (e) => (e.testAccuracy === null ? null : 100 * e.testAccuracy) }],
  },
  {
    id: 'chart-rate', x: 'step', source: () => run.points,
    series: [{ label: 'samples/s', stroke: COLORS.a, width: 1.5, value: (p) => p.samplesPerSec }],
  },
  {
    id: 'chart-split', x: 'step', source: () => run.points,
    series: [
      { label: 'compute', stroke: COLORS.a, width: 1.5, value: (p) => p.computeMs },
      { label: 'communication', stroke: COLORS.b, width: 1.5, value: (p) => p.commMs },
      { label: 'reduce + update', stroke: COLORS.c, width: 1.5, value: (p) => p.updateMs },
    ],
  },
];

const plots = new Map();

/** Axis ticks in few characters: 120000 → 120k. */
function compact(v) {
  if (v === null) return '';
  const a = Math.abs(v);
  if (a >= 1e6) return `${+(v / 1e6).toFixed(2)}M`;
  if (a >= 1e4) return `${+(v / 1e3).toFixed(1)}k`;
  return String(+v.toFixed(4));
}

function plotWidth(fig) {
  return Math.max(300, fig.clientWidth - 18);
}

function createPlots() {
  for (const c of CHARTS) {
    const fig = $(c.id);
    const opts = {
      width: plotWidth(fig),
      height: 220,
      scales: { x: { time: false } },
      series: [{ label: c.x }, ...c.series.map((s) => ({ label: s.label, stroke: s.stroke, width: s.width, spanGaps: true, points: { show: false } }))],
      axes: [{ label: c.x }, { size: 56, values: (u, vals) => vals.map(compact) }],
      legend: { live: true },
    };
    plots.set(c.id, new uPlot(opts, [[], ...c.series.map(() => [])], fig.querySelector('.plot')));
  }
  window.addEventListener('resize', () => {
    for (const c of CHARTS) {
      const fig = $(c.id);
      plots.get(c.id).setSize({ width: plotWidth(fig), height: 220 });
    }
  });
}

function drawPlots() {
  for (const c of CHARTS) {
    const rows = c.source();
    const data = [rows.map((r) => r[c.x]), ...c.series.map((s) => rows.map((r) => {
      const v = s.value(r);
      return v === null || v === undefined || !Number.isFinite(v) ? null : v;
    }))];
    plots.get(c.id).setData(data);
    const fig = $(c.id);
    fig.dataset.points = String(rows.length);
    fig.dataset.firstStep = rows.length ? String(rows[0].step) : '';
    fig.dataset.lastStep = rows.length ? String(rows[rows.length - 1].step) : '';
  }
}

const fmt = {
  num: (v, digits = 0) => (v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })),
  duration(s) {
    if (s === null || s === undefined || !Number.isFinite(s)) return '–';
    const t = Math.round(s);
    const h = Math.floor(t / 3600);
    const m = Math.floor((t % 3600) / 60);
    const sec = t % 60;
    return h ? `${h} h ${m} min` : m ? `${m} min ${sec} s` : `${sec} s`;
  },
  bytes: (b) => (b === null || b === undefined ? '–' : b < 1e6 ? `${(b / 1e3).toFixed(1)} kB` : `${(b / 1e6).toFixed(1)} MB`),
};

function drawSummary() {
  const { info, status } = run;
  const mode = $('mode');
  if (!info.live) {
    mode.textContent = 'not live: a finished run from its metrics file';
    mode.className = 'badge replay';
  } else if (status.finished) {
    mode.textContent = 'finished';
    mode.className = 'badge finished';
  } else {
    mode.textContent = 'live';
    mode.className = 'badge live';
  }
  $('source').textContent = info.live ? '' : info.source;
  const epochs = info.stop ? info.stop.epochs : null;
  $('s-step').textContent = fmt.num(status.step);
  $('s-epoch').textContent = epochs ? `${status.epoch} / ${epochs}` : String(status.epoch || '–');
  $('s-elapsed').textContent = fmt.duration(status.elapsedS);
  $('s-eta').textContent = status.finished ? 'done' : fmt.duration(status.etaS);
  const last = run.points[run.points.length - 1];
  $('s-rate').textContent = last ? fmt.num(last.samplesPerSec) : '–';
  const lastEpoch = run.epochs[run.epochs.length - 1];
  $('s-acc').textContent = lastEpoch && lastEpoch.testAccuracy !== null ? `${fmt.num(100 * lastEpoch.testAccuracy, 2)} %` : '–';
  const stop = info.stop;
  $('s-stop').textContent = stop
    ? [
      `${stop.epochs} epochs`,
      stop.maxSteps !== null ? `${stop.maxSteps} steps` : null,
      stop.targetLoss !== null ? `train loss ≤ ${stop.targetLoss}` : null,
      stop.targetAccuracy !== null ? `test accuracy ≥ ${100 * stop.targetAccuracy} %` : null,
    ].filter(Boolean).join(', whichever comes first: ')
    : 'not recorded in the metrics file';
  $('s-model').textContent = info.params !== null
    ? `${fmt.num(info.params)} parameters · ${info.train} train / ${info.test} test samples · batch ${info.batchSize} · ${info.threads} local threads · kernels ${info.backend}${info.resumedAt !== null ? ` · resumed at step ${info.resumedAt}` : ''}`
    : '–';
  $('config').textContent = info.config === null ? 'not recorded in the metrics file' : JSON.stringify(info.config, null, 2);
}

function cell(text) {
  const td = document.createElement('td');
  td.textContent = text;
  return td;
}

function drawExecutors() {
  const body = $('executors').querySelector('tbody');
  const rows = run.executors.map((x) => {
    const tr = document.createElement('tr');
    tr.dataset.id = x.id;
    tr.dataset.state = x.state;
    const state = x.state === 'active' ? 'active' : `${x.state}: ${x.reason}`;
    const seen = x.kind === 'local' ? '–' : x.state === 'active' ? `${fmt.num(x.lastSeenMsAgo)} ms ago` : '–';
    tr.append(
      cell(x.id), cell(x.address), cell(x.threads ? String(x.threads) : '–'), cell(fmt.num(x.samplesPerSec)),
      cell(x.kind === 'local' ? '–' : fmt.bytes(x.bytesSent)), cell(x.kind === 'local' ? '–' : fmt.bytes(x.bytesReceived)), cell(seen), cell(state),
    );
    return tr;
  });
  body.replaceChildren(...rows);
}

function drawLog() {
  const pre = $('log');
  pre.textContent = run.log.map((l) => (l.t === null ? l.text : `[${fmt.duration(l.t)}] ${l.text}`)).join('\n');
  pre.scrollTop = pre.scrollHeight;
}

let frame = 0;
function redraw() {
  if (frame) return;
  frame = requestAnimationFrame(() => {
    frame = 0;
    drawSummary();
    drawPlots();
    drawExecutors();
    drawLog();
  });
}

function applySnapshot(s) {
  Object.assign(run, { info: s.info, status: s.status, stride: s.stride, points: s.points.slice(), epochs: s.epochs.slice(), executors: s.executors, log: s.log.slice() });
}

function applyDelta(d) {
  // A delta of another grain (the server merged points meanwhile) is followed by a snapshot.
  if (d.stride !== run.stride) return;
  if (d.pointsFrom <= run.points.length) run.points.push(...d.points.slice(run.points.length - d.pointsFrom));
  if (d.epochsFrom <= run.epochs.length) run.epochs.push(...d.epochs.slice(run.epochs.length - d.epochsFrom));
  run.log.push(...d.log);
  if (run.log.length > 200) run.log.splice(0, run.log.length - 200);
  run.status = d.status;
  run.executors = d.executors;
}

function connect() {
  const events = new EventSource('/api/events');
  events.addEventListener('snapshot', (e) => {
    applySnapshot(JSON.parse(e.data));
    redraw();
    if (run.status.finished) events.close();
  });
  events.addEventListener('delta', (e) => {
    if (!run.info) return;
    applyDelta(JSON.parse(e.data));
    redraw();
    // Finished: the server stops; a reconnecting EventSource would only fill the console with errors.
    if (run.status.finished) events.close();
  });
  events.addEventListener('error', () => {
    if (run.status && run.status.finished) return;
    const mode = $('mode');
    mode.textContent = 'connection lost: retrying';
    mode.className = 'badge lost';
  });
}

createPlots();
connect();
