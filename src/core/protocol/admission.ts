// Who may knock, and how loudly refusals are logged: a token bucket per source address for the
// challenge and upgrade requests (a bounded map, least recently seen evicted first), and a log that
// writes the first few refusals of an interval in full and the rest as one summary line.

export interface BucketOptions {
  /** Requests an address may make at once. */
  readonly burst: number;
  /** Requests per second it regains. */
  readonly perSecond: number;
  /** Addresses tracked; beyond that the least recently seen is forgotten (it starts afresh). */
  readonly maxAddresses: number;
}

export const DEFAULT_BUCKETS: BucketOptions = { burst: 20, perSecond: 5, maxAddresses: 4096 };

/** A token bucket per source address. */
export class SourceLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  constructor(private readonly o: BucketOptions = DEFAULT_BUCKETS) {}

  /** True when `address` may make one more request now (and spends it). */
  take(address: string, now = Date.now()): boolean {
    const b = this.buckets.get(address) ?? { tokens: this.o.burst, at: now };
    // Re-inserted on every request: the map's order is then least recently seen first.
    this.buckets.delete(address);
    b.tokens = Math.min(this.o.burst, b.tokens + ((now - b.at) / 1000) * this.o.perSecond);
    b.at = now;
    const ok = b.tokens >= 1;
    if (ok) b.tokens -= 1;
    this.buckets.set(address, b);
    if (this.buckets.size > this.o.maxAddresses) this.buckets.delete(this.buckets.keys().next().value!);
    return ok;
  }
}

const INTERVAL_MS = 10_000;
const IN_FULL_PER_INTERVAL = 5;

/** Refusal lines, at most IN_FULL_PER_INTERVAL in full plus one summary per interval. */
export class RefusalLog {
  private inFull = 0;
  private counted = 0;
  private readonly addresses = new Set<string>();
  private since = Date.now();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly log: (line: string) => void) {
    this.timer = setInterval(() => this.flush(), INTERVAL_MS);
    this.timer.unref();
  }

  refused(host: string, line: string): void {
    if (this.inFull < IN_FULL_PER_INTERVAL) {
      this.inFull++;
      this.log(line);
      return;
    }
    this.counted++;
    // Bounded like the limiter's map: past that, the count of addresses is a lower bound.
    if (this.addresses.size < DEFAULT_BUCKETS.maxAddresses) this.addresses.add(host);
  }

  /** Writes the interval's summary (if anything was counted) and starts a new interval. */
  flush(): void {
    const now = Date.now();
    if (this.counted > 0) {
      const m = this.addresses.size;
      const seconds = Math.max(1, Math.round((now - this.since) / 1000));
      this.log(`refused ${this.counted} more unauthenticated request${this.counted > 1 ? 's' : ''} from ${m} address${m > 1 ? 'es' : ''} in the last ${seconds} s`);
    }
    this.since = now;
    this.inFull = 0;
    this.counted = 0;
    this.addresses.clear();
  }

  close(): void {
    clearInterval(this.timer);
    this.flush();
  }
}
