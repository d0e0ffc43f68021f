#!/usr/bin/env node
// The dptrain command line (yargs): flags are declared and checked here, then handed to the
// commands as typed options. Every usage or config error is one line on stderr and exit code 2.

import { setFlagsFromString } from 'node:v8';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { isDptrainError, type DptrainError } from './core/errors.js';
import type { TrainFlags } from './coordinator/commands/train.js';
import type { WorkerFlags } from './coordinator/commands/worker.js';
import { KERNEL_CHOICES, type KernelChoice } from './core/kernels/index.js';
import { DEFAULT_CONFIG } from './core/io/package-files.js';
import type { BenchScalingFlags } from './coordinator/commands/bench.js';
import type { DashboardFlags } from './coordinator/commands/dashboard.js';

// A process on node links takes in a model's worth of fresh Buffers every step (socket reads, ws
// reassembly: V8 owns neither). On the CLI's small heap, V8's default growing factor keeps the next
// GC limit close above it, and those Buffers then start a full mark-compact every other step. A
// factor of 5 leaves room for them between collections (bench/RESULTS.md has the figures). V8 reads
// it at every GC, so it takes effect although set after start; the library leaves its host's flags alone.
setFlagsFromString('--heap-growing-percent=400');

const USAGE_ERROR = 2;

// Runtime failures (every node lost, a worker thread failing for good, a write failing mid-run) exit 1;
// bad input exits 2; a run stopped because its loss or weights became NaN or infinite exits 3.
const RUNTIME_ERRORS = new Set(['NO_EXECUTORS', 'WORKER_FAILED', 'WRITE_FAILED']);
const RUNTIME_ERROR = 1;
const DIVERGED = 3;

function fail(message: string, code = USAGE_ERROR): never {
  process.stderr.write(`dptrain: ${message}\n`);
  process.exit(code);
}

function failWith(e: DptrainError): never {
  fail(e.message, e.code === 'DIVERGED' ? DIVERGED : RUNTIME_ERRORS.has(e.code) ? RUNTIME_ERROR : USAGE_ERROR);
}

/**
 * A reader that went away (`dptrain train | head -1`) ends our output on that stream, quietly: a
 * run goes on to its end and its checkpoint, an eval finishes. Any other write error is a bug.
 */
function endOutputOnClosedPipe(stream: NodeJS.WriteStream): void {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE' && e.code !== 'ERR_STREAM_DESTROYED') throw e;
  });
}

// Each command's module is imported when that command runs: start-up pays only for what it uses.
async function main(): Promise<void> {
  endOutputOnClosedPipe(process.stdout);
  endOutputOnClosedPipe(process.stderr);
  await yargs(hideBin(process.argv))
    .scriptName('dptrain')
    .command(
      'train',
      'train a model on every core (default: the MNIST MLP on the embedded digits)',
      (y) =>
        y
          .option('config', { type: 'string', requiresArg: true, default: DEFAULT_CONFIG, describe: 'config JSON file' })
          .option('workers', { alias: 'threads', type: 'number', requiresArg: true, describe: 'worker threads (default: every core; --threads is the same flag)' })
          .option('epochs', { type: 'number', requiresArg: true, describe: 'passes over the training set (training.epochs)' })
          .option('batch-size', { type: 'number', requiresArg: true, describe: 'samples per optimizer step (training.batchSize)' })
          .option('lr', { type: 'number', requiresArg: true, describe: 'learning rate' })
          .option('seed', { type: 'number', requiresArg: true, describe: 'seed of weight init, shuffling and synthetic data (training.seed)' })
          .option('shuffle', { type: 'boolean', describe: 'shuffle every epoch (--no-shuffle: data order, last partial batch kept)' })
          .option('set', { type: 'string', requiresArg: true, array: true, describe: 'override any config field: --set optimizer.momentum=0.9' })
          .option('kernels', { choices: KERNEL_CHOICES, requiresArg: true, default: 'auto' as KernelChoice, describe: 'kernel backend' })
          .option('init-weights', { type: 'string', requiresArg: true, describe: 'start from these weights (safetensors)' })
          .option('save-weights', { type: 'string', requiresArg: true, describe: 'write the final weights (safetensors)' })
          .option('checkpoint-dir', { type: 'string', requiresArg: true, describe: 'folder for checkpoints (default: checkpoints/CONFIG-RUNID, one per run)' })
          .option('checkpoint-every', { type: 'number', requiresArg: true, default: 0, describe: 'steps between checkpoints (0: at the end and on Ctrl-C only)' })
          .option('resume', { type: 'boolean', default: false, describe: 'continue from the newest checkpoint of this run in --checkpoint-dir' })
          .option('metrics', { type: 'string', requiresArg: true, describe: 'write metrics as JSON lines to this file' })
          .option('plot', { type: 'string', requiresArg: true, describe: 'write loss and accuracy per epoch as an SVG chart at the end' })
          .option('metrics-every', { type: 'number', requiresArg: true, default: 10, describe: 'steps per metrics line' })
          .option('target-loss', { type: 'number', requiresArg: true, describe: 'stop once the epoch\'s train loss is at or below this' })
          .option('target-accuracy', { type: 'number', requiresArg: true, describe: 'stop once the test accuracy (0..1) is at or above this' })
          .option('max-steps', { type: 'number', requiresArg: true, describe: 'stop after this many optimizer steps (with a checkpoint)' })
          .option('quiet', { type: 'boolean', default: false, describe: 'print nothing but errors' })
          .option('listen', { type: 'string', requiresArg: true, describe: 'accept remote worker nodes on HOST:PORT, PORT (on 127.0.0.1) or HOST (on a free port, logged)' })
          .option('token-file', { type: 'string', requiresArg: true, describe: 'shared secret nodes must prove (required unless listening on loopback)' })
          .option('tls-cert', { type: 'string', requiresArg: true, describe: 'serve wss:// with this certificate (PEM)' })
          .option('tls-key', { type: 'string', requiresArg: true, describe: 'and this private key (PEM)' })
          .option('max-nodes', { type: 'number', requiresArg: true, default: 8, describe: 'remote nodes accepted at once' })
          .option('fanout', { type: 'number', requiresArg: true, describe: 'nodes form a reduction tree; the coordinator sends each step to at most this many (default: to every node)' })
          .option('step-deadline', { type: 'number', requiresArg: true, default: 30000, describe: 'ms a node may take for one step before it is dropped' })
          .option('heartbeat', { type: 'number', requiresArg: true, default: 1000, describe: 'ms between heartbeats; 3 missed drop a node' })
          .option('wire', { choices: ['f32', 'bf16'] as const, requiresArg: true, default: 'f32' as const, describe: 'float encoding of weights and gradients on node links: bf16 halves the bytes (sums and optimizer stay f32; changes the numerics)' })
          .option('min-nodes', { type: 'number', requiresArg: true, default: 0, describe: 'wait for this many nodes to join before the first step' })
          .option('max-node-failures', { type: 'number', requiresArg: true, default: 10, describe: 'node drops within one step before the run gives up' })
          .option('max-grad-ratio', { type: 'number', requiresArg: true, default: 100, describe: 'drop a node whose per-row gradient norm exceeds this many times the largest of the step\'s other shards, the recent steps and the run so far (0: off)' })
          .option('dashboard', { type: 'string', requiresArg: true, describe: 'serve a live dashboard and /metrics on [HOST:]PORT (default host 127.0.0.1; others need --token-file)' })
          .option('balance', { choices: ['static', 'measured'] as const, requiresArg: true, describe: 'shard sizes by thread count or by measured speed (default: measured with --listen)' })
          .option('fault', { type: 'string', requiresArg: true, hidden: true, describe: 'test hook STEP:SLOT:throw|exit' }),
      async (argv) => {
        process.exitCode = await (await import('./coordinator/commands/train.js')).runTrain(argv as unknown as TrainFlags);
      },
    )
    .command(
      'eval',
      'loss and accuracy (with a confusion matrix) of saved weights on the test split',
      (y) =>
        y
          .option('weights', { type: 'string', requiresArg: true, demandOption: true, describe: 'weights file or checkpoint (safetensors)' })
          .option('config', { type: 'string', requiresArg: true, describe: 'data to evaluate on (default: the data the weights were trained on), and the model for files without dptrain metadata' })
          .option('kernels', { choices: KERNEL_CHOICES, requiresArg: true, default: 'auto' as KernelChoice, describe: 'kernel backend' }),
      async (argv) => {
        (await import('./coordinator/commands/eval.js')).runEval({ weights: argv.weights, config: argv.config, kernels: argv.kernels });
      },
    )
    .command(
      'predict',
      'apply saved weights to a CSV or IDX file: CSV of the predicted class and probabilities, or the outputs',
      (y) =>
        y
          .option('weights', { type: 'string', requiresArg: true, demandOption: true, describe: 'weights file or checkpoint (safetensors)' })
          .option('input', { type: 'string', requiresArg: true, demandOption: true, describe: 'CSV with a header (target columns ignored) or IDX images (.gz too)' })
          .option('output', { type: 'string', requiresArg: true, describe: 'CSV file to write (default: stdout)' })
          .option('config', { type: 'string', requiresArg: true, describe: 'describes the model of a file without dptrain metadata' })
          .option('kernels', { choices: KERNEL_CHOICES, requiresArg: true, default: 'auto' as KernelChoice }),
      async (argv) => {
        (await import('./coordinator/commands/predict.js')).runPredict({ weights: argv.weights, input: argv.input, output: argv.output, config: argv.config, kernels: argv.kernels });
      },
    )
    .command(
      'worker',
      'join a training run as a remote worker node',
      (y) =>
        y
          .option('connect', { type: 'string', requiresArg: true, demandOption: true, describe: 'the coordinator, ws://HOST:PORT or wss://HOST:PORT' })
          .option('token-file', { type: 'string', requiresArg: true, describe: 'the shared secret' })
          .option('threads', { alias: 'workers', type: 'number', requiresArg: true, describe: 'worker threads (default: every core; --workers is the same flag)' })
          .option('tls-ca', { type: 'string', requiresArg: true, describe: 'trust this CA or self-signed certificate (PEM) for wss://' })
          .option('max-reconnects', { type: 'number', requiresArg: true, default: 0, describe: 'give up after this many failed connection attempts in a row (0: never)' })
          .option('max-auth-failures', { type: 'number', requiresArg: true, default: 5, describe: 'give up after the coordinator failed authentication or was refused this many times in a row' })
          .option('metrics-port', { type: 'string', requiresArg: true, describe: 'serve this node\'s Prometheus metrics on [HOST:]PORT (default host 127.0.0.1)' })
          .option('listen', { type: 'string', requiresArg: true, describe: 'take children in a reduction tree (train --fanout) on HOST:PORT, PORT or HOST; others need --token-file' })
          .option('tls-cert', { type: 'string', requiresArg: true, describe: 'with --listen: serve children wss:// with this certificate (PEM)' })
          .option('tls-key', { type: 'string', requiresArg: true, describe: 'with --listen: the certificate\'s private key (PEM)' })
          .option('advertise', { type: 'string', requiresArg: true, describe: 'with --listen: the ws:// or wss:// address children should connect to (default: the listening one), e.g. through a proxy' })
          .option('emulate-compute', { type: 'number', requiresArg: true, hidden: true, describe: 'benchmarks only: wait MS per sample instead of computing, answer a made-up gradient' })
          .option('exit-at-step', { type: 'number', hidden: true })
          .option('leave-after-step', { type: 'number', hidden: true }),
      async (argv) => {
        process.exitCode = await (await import('./coordinator/commands/worker.js')).runWorker(argv as unknown as WorkerFlags);
      },
    )
    .command(
      'dashboard',
      'the dashboard page of a finished run, from its --metrics file',
      (y) =>
        y
          .option('metrics', { type: 'string', requiresArg: true, demandOption: true, describe: 'the run\'s metrics file (JSON lines)' })
          .option('port', { type: 'string', requiresArg: true, default: '8787', describe: '[HOST:]PORT to serve on (default host 127.0.0.1; others need --token-file)' })
          .option('token-file', { type: 'string', requiresArg: true, describe: 'the token readers must show off loopback' }),
      async (argv) => {
        process.exitCode = await (await import('./coordinator/commands/dashboard.js')).runDashboard(argv as unknown as DashboardFlags);
      },
    )
    .command('bench', 'benchmarks: scaling over threads, worker nodes and emulated networks', (y) =>
      y
        .command(
          'scaling',
          'samples/s, speedup and the step split for threads × nodes × batch, with the scale-out model\'s predictions',
          (z) =>
            z
              .option('config', { type: 'string', requiresArg: true, default: DEFAULT_CONFIG, describe: 'config JSON file' })
              .option('threads', { type: 'string', requiresArg: true, default: '1,2', describe: 'threads of the local pool, and of each node' })
              .option('nodes', { type: 'string', requiresArg: true, default: '0,1,2', describe: 'worker node processes (0: a local row)' })
              .option('batch', { type: 'string', requiresArg: true, default: '128,512', describe: 'batch sizes' })
              .option('net', { type: 'string', requiresArg: true, default: 'loopback', describe: 'loopback, lan, wan or LATENCYms:BANDWIDTHmbit, per node and direction' })
              .option('steps', { type: 'number', requiresArg: true, default: 30, describe: 'measured steps per row' })
              .option('warmup', { type: 'number', requiresArg: true, default: 5, describe: 'steps before the measured ones' })
              .option('out', { type: 'string', requiresArg: true, describe: 'folder for results.json and the charts (default bench/results/scaling-NET)' })
              .option('kernels', { choices: KERNEL_CHOICES, requiresArg: true, default: 'auto' as KernelChoice, describe: 'kernel backend' })
              .option('wire', { choices: ['f32', 'bf16'] as const, requiresArg: true, default: 'f32' as const, describe: 'float encoding on node links, as train --wire' })
              .option('net-namespaces', { type: 'boolean', default: false, describe: 'a network namespace per node, tc tbf for bandwidth (root and iproute2)' })
              .option('scaling', { choices: ['strong', 'weak', 'both'] as const, requiresArg: true, default: 'strong' as const, describe: 'strong: --batch is the global batch; weak: --batch is each worker\'s, the global batch grows with the workers' })
              .option('emulate-compute', { type: 'boolean', default: false, describe: 'node rows only wait the measured compute time and send made-up gradients (benchmark only; labelled)' })
              .option('dilate', { type: 'number', requiresArg: true, describe: 'with --emulate-compute: links D× slower, compute D× longer, times ÷ D; rows stand for the --net link' })
              .option('shared-links', { type: 'boolean', default: false, describe: 'with --net: one emulated link per listener (the coordinator\'s, a parent node\'s), shared by all its peers like one NIC, instead of one per node' })
              .option('fanout', { type: 'string', requiresArg: true, describe: 'node rows once per value: nodes form a reduction tree with this fan-out (train --fanout); absent: the star only' })
              .option('model-only', { type: 'boolean', default: false, describe: 'print the scale-out model\'s table for 1-64 nodes (star vs tree, reference links, stated inputs) and measure nothing' }),
          async (argv) => {
            process.exitCode = await (await import('./coordinator/commands/bench.js')).runBenchScaling(argv as unknown as BenchScalingFlags);
          },
        )
        .demandCommand(1, 'name a benchmark: scaling'),
    )
    .demandCommand(1, 'name a command: train, eval, predict, worker, dashboard, bench')
    .strict()
    .help()
    .alias('help', 'h')
    .fail((msg, err) => {
      // Our own errors and yargs' usage errors (YError) are the user's to fix; anything else is a bug.
      if (err && isDptrainError(err)) failWith(err);
      if (err && err.name !== 'YError') throw err;
      // yargs spreads some messages over lines; the contract is one line per error.
      fail((err ? err.message : msg).replace(/\s*\n\s*/g, ' '));
    })
    .parseAsync();
}

main().catch((e: unknown) => {
  if (isDptrainError(e)) failWith(e);
  process.stderr.write(`dptrain: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
