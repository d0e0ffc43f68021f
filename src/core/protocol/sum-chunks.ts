// A gradient sum that arrives as grad chunks, in any order: a node sends each chunk as soon as
// backward has made it final (the last layer first) and its children's same chunk is in. Tracks
// which chunks are in and their sum of squares, and refuses a chunk that is not one of the sum's.

import { CHUNK_FLOATS, chunkAt, WireError, type GradChunk } from './wire.js';

export class SumChunks {
  private readonly seen: Uint8Array;
  private count = 0;
  /** Σ g² of the chunks landed so far (the gradient guard's norm, measured while landing). */
  squares = 0;

  constructor(readonly total: number) {
    this.seen = new Uint8Array(Math.ceil(total / CHUNK_FLOATS));
  }

  /** Checks a chunk against the sum (a chunk of the chunking, not in before) and counts it in; throws WireError naming `peer`. */
  claim(c: GradChunk, peer: string): void {
    const k = c.at / CHUNK_FLOATS;
    if (!Number.isInteger(k) || k >= this.seen.length || c.count !== chunkAt(this.total, c.at))
      throw new WireError('WIRE_MALFORMED', `${peer}: sum chunk [${c.at}, +${c.count}) is not a chunk of ${CHUNK_FLOATS} values of a sum of ${this.total}`);
    if (this.seen[k]) throw new WireError('WIRE_MALFORMED', `${peer}: sum chunk [${c.at}, +${c.count}) came twice`);
    this.seen[k] = 1;
    this.count++;
  }

  /** Whether chunk k (values [k·CHUNK_FLOATS, …)) is in. */
  has(k: number): boolean {
    return this.seen[k] === 1;
  }

  get complete(): boolean {
    return this.count === this.seen.length;
  }

  get received(): number {
    return this.count;
  }
}
