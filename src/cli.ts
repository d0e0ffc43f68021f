#!/usr/bin/env node
// The dptrain command line (yargs): flags are declared and checked here, then handed to the
// commands as typed options. Every usage or config error is one line on stderr and exit code 2.

import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { isDptrainError } from './core/errors.js';
import { runTrain, type TrainFlags } from './coordinator/run-train.js';
import { runEval } from './coordinator/run-eval.js';
import { KERNEL_CHOICES, type KernelChoice } from './core/kernels/index.js';
import { DEFAULT_CONFIG } from './coordinator/paths.js';

const USAGE_ERROR = 2;

function fail(message: string): never {
  process.stderr.write(`dptrain: ${message}\n`);
  process.exit(USAGE_ERROR);
}

async function main(): Promise<void> {
  await yargs(hideBin(process.argv))
    .scriptName('dptrain')
    .command(
      'train',
      'train a model on every core (default: the MNIST MLP on the embedded digits)',
      (y) =>
        y
          .option('config', { type: 'string', requiresArg: true, default: DEFAULT_CONFIG, describe: 'config JSON file' })
          .option('workers', { type: 'number', requiresArg: true, describe: 'worker threads (default: every core)' })
          .option('epochs', { type: 'number', requiresArg: true })
          .option('batch-size', { type: 'number', requiresArg: true })
          .option('lr', { type: 'number', requiresArg: true, describe: 'learning rate' })
          .option('seed', { type: 'number', requiresArg: true })
          .option('shuffle', { type: 'boolean', describe: 'shuffle every epoch (--no-shuffle: data order, last partial batch kept)' })
          .option('set', { type: 'string', requiresArg: true, array: true, describe: 'override any config field: --set optimizer.momentum=0.9' })
          .option('kernels', { choices: KERNEL_CHOICES, requiresArg: true, default: 'auto' as KernelChoice, describe: 'kernel backend' })
          .option('init-weights', { type: 'string', requiresArg: true, describe: 'start from these weights (safetensors)' })
          .option('save-weights', { type: 'string', requiresArg: true, describe: 'write the final weights (safetensors)' })
          .option('checkpoint-dir', { type: 'string', requiresArg: true, default: 'checkpoints', describe: 'folder for checkpoints' })
          .option('checkpoint-every', { type: 'number', requiresArg: true, default: 0, describe: 'steps between checkpoints (0: at the end and on Ctrl-C only)' })
          .option('resume', { type: 'boolean', default: false, describe: 'continue from the newest checkpoint in --checkpoint-dir' })
          .option('metrics', { type: 'string', requiresArg: true, describe: 'write metrics as JSON lines to this file' })
          .option('metrics-every', { type: 'number', requiresArg: true, default: 10, describe: 'steps per metrics line' })
          .option('target-loss', { type: 'number', requiresArg: true, describe: 'stop once the epoch\'s train loss is at or below this' })
          .option('target-accuracy', { type: 'number', requiresArg: true, describe: 'stop once the test accuracy (0..1) is at or above this' })
          .option('max-steps', { type: 'number', requiresArg: true, describe: 'stop after this many optimizer steps (with a checkpoint)' })
          .option('quiet', { type: 'boolean', default: false, describe: 'print nothing but errors' })
          .option('fault', { type: 'string', requiresArg: true, hidden: true, describe: 'test hook STEP:SLOT:throw|exit' }),
      async (argv) => {
        const code = await runTrain(argv as unknown as TrainFlags);
        process.exitCode = code;
      },
    )
    .command(
      'eval',
      'loss and accuracy (with a confusion matrix) of saved weights on the test split',
      (y) =>
        y
          .option('weights', { type: 'string', requiresArg: true, demandOption: true, describe: 'weights file (safetensors)' })
          .option('config', { type: 'string', requiresArg: true, default: DEFAULT_CONFIG })
          .option('kernels', { choices: KERNEL_CHOICES, requiresArg: true, default: 'auto' as KernelChoice }),
      (argv) => {
        runEval({ weights: argv.weights, config: argv.config, kernels: argv.kernels });
      },
    )
    .demandCommand(1, 'name a command: train, eval')
    .strict()
    .help()
    .fail((msg, err) => {
      // Our own errors and yargs' usage errors (YError) are the user's to fix; anything else is a bug.
      if (err && !isDptrainError(err) && err.name !== 'YError') throw err;
      // yargs spreads some messages over lines; the contract is one line per error.
      fail((err ? err.message : msg).replace(/\s*\n\s*/g, ' '));
    })
    .parseAsync();
}

main().catch((e: unknown) => {
  if (isDptrainError(e)) fail(e.message);
  process.stderr.write(`dptrain: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
