// The package as a user gets it: `npm pack`, then `npm install <tarball>` in a fresh ESM project,
// a script that imports `dptrain` and trains XOR on 2 threads from its own arrays, and TypeScript
// files type-checked against the installed declarations (a misuse must fail). Needs `npm run build`.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..');
const TSC = join(realpathSync(join(ROOT, 'node_modules', 'typescript')), 'bin', 'tsc');

let project = '';
let packed: string[] = [];

function npm(args: string[], cwd: string): { code: number | null; out: string } {
  const r = spawnSync('npm', args, { cwd, encoding: 'utf8', timeout: 240_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

beforeAll(() => {
  if (!existsSync(join(ROOT, 'dist', 'src', 'index.d.ts'))) throw new Error('dist/ is not built: run npm run build first');
  const dir = mkdtempSync(join(tmpdir(), 'dptrain-consumer-'));
  // dist/ is already built: packing skips `prepare` (a second full build).
  const pack = npm(['pack', '--ignore-scripts', '--pack-destination', dir, '--json'], ROOT);
  expect(pack.code, pack.out).toBe(0);
  const info = JSON.parse(pack.out.slice(pack.out.indexOf('['))) as { filename: string; files: { path: string }[] }[];
  packed = info[0].files.map((f) => f.path);
  project = join(dir, 'consumer');
  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  const tarball = join(dir, info[0].filename);
  // The dependencies come from the npm cache; --prefer-offline only if one is missing from it.
  let install = npm(['install', tarball, '--offline', '--no-audit', '--no-fund'], project);
  if (install.code !== 0) install = npm(['install', tarball, '--prefer-offline', '--no-audit', '--no-fund'], project);
  expect(install.code, install.out).toBe(0);
}, 300_000);

describe('the packed package', () => {
  it('ships what it needs at run time', () => {
    for (const f of ['dist/src/index.js', 'dist/src/index.d.ts', 'dist/src/cli.js', 'dist/src/worker/thread.js', 'dist/wasm/kernels.wasm', 'dist/data/mnist-digits.bin', 'config/mnist-mlp.json'])
      expect(packed, f).toContain(f);
    // The native kernels ship where this machine could build them.
    if (existsSync(join(ROOT, 'dist', 'native', 'dptrain_kernels.node'))) expect(packed).toContain('dist/native/dptrain_kernels.node');
  });

  it('an ESM script imports dptrain, trains XOR on 2 threads from its arrays, predicts 100 %, saves and reloads, and exits on its own', () => {
    writeFileSync(join(project, 'xor.mjs'), `
      import { train, loadModel, DptrainError } from 'dptrain';
      const x = new Float32Array([0, 0, 0, 1, 1, 0, 1, 1]);
      const y = new Int32Array([0, 1, 1, 0]);
      const { model, history } = await train({
        config: { model: { layers: [2, 8, 2], hidden: 'tanh' }, loss: 'cross-entropy', optimizer: { name: 'adam', lr: 0.05 },
                  training: { epochs: 300, batchSize: 4, shuffle: false } },
        data: { train: { x, y, rows: 4 } },
        workers: 2,
      });
      const p = model.predict(x, 4);
      const fromProbabilities = [0, 1, 2, 3].map((r) => (p[2 * r + 1] > p[2 * r] ? 1 : 0));
      model.save('xor.safetensors');
      const again = loadModel('xor.safetensors');
      let code = null;
      try { loadModel('missing.safetensors'); } catch (e) { code = e instanceof DptrainError ? e.code : 'not a DptrainError'; }
      console.log(JSON.stringify({ epochs: history.length, classify: [...model.classify(x, 4)], fromProbabilities, reloaded: [...again.classify(x, 4)], code }));
    `);
    const r = spawnSync(process.execPath, ['xor.mjs'], { cwd: project, encoding: 'utf8', timeout: 120_000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ epochs: 300, classify: [0, 1, 1, 0], fromProbabilities: [0, 1, 1, 0], reloaded: [0, 1, 1, 0], code: 'FILE_UNREADABLE' });
  });

  it('TypeScript using the API type-checks against the installed declarations; a wrong option name does not', () => {
    // TypeScript and Node's types as a user has them installed (linked from this checkout: no download).
    mkdirSync(join(project, 'node_modules', '@types'), { recursive: true });
    if (!existsSync(join(project, 'node_modules', '@types', 'node'))) symlinkSync(realpathSync(join(ROOT, 'node_modules', '@types', 'node')), join(project, 'node_modules', '@types', 'node'));
    const tsconfig = (file: string): object => ({
      compilerOptions: { strict: true, module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', lib: ['ES2022'], types: ['node'], noEmit: true, skipLibCheck: false },
      files: [file],
    });
    writeFileSync(join(project, 'tsconfig.good.json'), JSON.stringify(tsconfig('good.ts')));
    writeFileSync(join(project, 'tsconfig.bad.json'), JSON.stringify(tsconfig('bad.ts')));
    writeFileSync(join(project, 'good.ts'), `
      import { train, loadModel, DptrainError, type Model, type TrainOptions, type EpochRecord, type StepRecord } from 'dptrain';
      const options: TrainOptions = {
        config: { model: { layers: [2, 4, 2], hidden: 'relu', output: 'softmax' }, loss: 'cross-entropy', optimizer: { name: 'sgd', lr: 0.1, momentum: 0.9 } },
        data: { source: 'synthetic', name: 'spirals', n: 100 },
        workers: 2,
        kernels: 'wasm',
        signal: new AbortController().signal,
        onStep: (r: StepRecord) => { const loss: number = r.loss; void loss; },
        onEpoch: (r: EpochRecord) => { const acc: number | null = r.test.accuracy; void acc; },
      };
      export async function run(): Promise<number> {
        const { model, history } = await train(options);
        const p: Float32Array = model.predict(new Float32Array(4), 2);
        const c: Int32Array = model.classify(new Float32Array(4), 2);
        const m: Model = loadModel('w.safetensors', { kernels: 'ts' });
        try { m.save('x.safetensors'); } catch (e) { if (e instanceof DptrainError) return e.code.length; }
        return p.length + c.length + history.length + model.evaluate({ source: 'synthetic', name: 'xor' }).n;
      }
    `);
    writeFileSync(join(project, 'bad.ts'), `
      import { train } from 'dptrain';
      await train({ config: { model: { layers: [2, 2] }, loss: 'mse', optimizer: { name: 'sgd', lr: 0.1 } }, wrokers: 2 });
    `);
    const good = spawnSync(process.execPath, [TSC, '-p', 'tsconfig.good.json'], { cwd: project, encoding: 'utf8', timeout: 120_000 });
    expect(good.stdout + good.stderr).toBe('');
    expect(good.status).toBe(0);
    const bad = spawnSync(process.execPath, [TSC, '-p', 'tsconfig.bad.json'], { cwd: project, encoding: 'utf8', timeout: 120_000 });
    expect(bad.status).not.toBe(0);
    // That one mistake, and nothing else.
    expect(bad.stdout).toMatch(/^bad\.ts\(3,\d+\): error TS2561: Object literal may only specify known properties, but 'wrokers' does not exist in type 'TrainOptions'\. Did you mean to write 'workers'\?\n$/);
  });

  it('the public declarations hold no `any`', () => {
    const dts = readdirSync(join(project, 'node_modules', 'dptrain', 'dist', 'src'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.d.ts'));
    const offenders = dts.flatMap((f) => {
      const text = readFileSync(join(project, 'node_modules', 'dptrain', 'dist', 'src', f), 'utf8');
      // Code only: comments may say "any".
      return text.replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '').match(/\bany\b/) ? [f] : [];
    });
    expect(offenders).toEqual([]);
  });
});
