// A strict reader of Prometheus' text exposition format (0.0.4) for the tests: every sample must
// belong to a family declared by # TYPE before it, names and labels must be well formed, values
// numbers, and a histogram's buckets cumulative and closed by le="+Inf" equal to its _count.

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface Family {
  readonly name: string;
  readonly type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
  help: string;
  readonly samples: Sample[];
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const SAMPLE = new RegExp(`^(${NAME})(?:\\{(.*)\\})? (\\S+)(?: -?\\d+)?$`);
const LABEL = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(?:,|$)/;

function parseValue(text: string, line: number): number {
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  if (text === 'NaN') return NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new Error(`line ${line}: bad value ${text}`);
  return Number(text);
}

function parseLabels(text: string, line: number): Record<string, string> {
  const labels: Record<string, string> = {};
  let rest = text;
  while (rest.length > 0) {
    const m = LABEL.exec(rest);
    if (!m) throw new Error(`line ${line}: bad labels {${text}}`);
    if (m[1] in labels) throw new Error(`line ${line}: label ${m[1]} twice`);
    labels[m[1]] = m[2].replace(/\\n/g, '\n').replace(/\\(["\\])/g, '$1');
    rest = rest.slice(m[0].length);
  }
  return labels;
}

export function parsePrometheusText(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const familyOf = (name: string): Family | undefined => {
    const exact = families.get(name);
    if (exact) return exact;
    const base = /^(.*)_(bucket|sum|count)$/.exec(name)?.[1];
    const f = base ? families.get(base) : undefined;
    return f && (f.type === 'histogram' || f.type === 'summary') ? f : undefined;
  };
  if (!text.endsWith('\n')) throw new Error('the exposition must end with a newline');
  text.split('\n').forEach((raw, i) => {
    const line = i + 1;
    if (raw === '') return;
    if (raw.startsWith('#')) {
      const help = new RegExp(`^# HELP (${NAME}) (.*)$`).exec(raw);
      const type = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`).exec(raw);
      if (type) {
        if (families.get(type[1])?.samples.length) throw new Error(`line ${line}: TYPE after samples of ${type[1]}`);
        families.set(type[1], { name: type[1], type: type[2] as Family['type'], help: families.get(type[1])?.help ?? '', samples: [] });
      } else if (help) {
        const f = families.get(help[1]);
        if (f) f.help = help[2];
        else families.set(help[1], { name: help[1], type: 'untyped', help: help[2], samples: [] });
      } else if (/^# (HELP|TYPE) /.test(raw)) {
        throw new Error(`line ${line}: malformed ${raw}`);
      }
      return;
    }
    const m = SAMPLE.exec(raw);
    if (!m) throw new Error(`line ${line}: not a sample: ${raw}`);
    const f = familyOf(m[1]);
    if (!f) throw new Error(`line ${line}: ${m[1]} has no # TYPE before it`);
    f.samples.push({ name: m[1], labels: m[2] ? parseLabels(m[2], line) : {}, value: parseValue(m[3], line) });
  });
  for (const f of families.values()) {
    if (f.type === 'counter') for (const s of f.samples) if (!(s.value >= 0)) throw new Error(`${s.name}: counter value ${s.value}`);
    if (f.type !== 'histogram') continue;
    // Group the buckets of each label set (without le), check them cumulative and closed by +Inf = _count.
    const groups = new Map<string, { buckets: [number, number][]; count?: number }>();
    for (const s of f.samples) {
      const { le, ...rest } = s.labels;
      const key = JSON.stringify(rest);
      const g = groups.get(key) ?? { buckets: [] };
      groups.set(key, g);
      if (s.name.endsWith('_bucket')) {
        if (le === undefined) throw new Error(`${s.name}: bucket without le`);
        g.buckets.push([parseValue(le, 0), s.value]);
      } else if (s.name.endsWith('_count')) g.count = s.value;
    }
    for (const [key, g] of groups) {
      for (let i = 1; i < g.buckets.length; i++) {
        if (!(g.buckets[i][0] > g.buckets[i - 1][0] && g.buckets[i][1] >= g.buckets[i - 1][1])) throw new Error(`${f.name}${key}: buckets not cumulative`);
      }
      const last = g.buckets.at(-1);
      if (!last || last[0] !== Infinity || last[1] !== g.count) throw new Error(`${f.name}${key}: no +Inf bucket equal to _count`);
    }
  }
  return families;
}

/** The value of one sample, by name and (some of) its labels. */
export function sampleValue(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const f of families.values()) {
    for (const s of f.samples) {
      if (s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)) return s.value;
    }
  }
  return undefined;
}
