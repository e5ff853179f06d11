/**
 * Creating an inode usually costs a few microseconds, and then the cheapest way is a synchronous call on
 * the main thread: a round trip through libuv's thread pool costs more than the call itself (a Debian
 * base: 100,000 tiny files extract in ~6 s inline, ~10 s through the pool, on tmpfs). On some disks it
 * costs hundreds of microseconds (ext4 checking recently freed inodes, VM block layers); those calls
 * overlap well in the pool while the main thread keeps parsing the tar.
 *
 * The pacer measures inline creations and, once their moving average passes {@link SLOW_CREATE_MS},
 * sends the next {@link POOL_BATCH} creations to the pool, then measures inline again (starting the
 * average afresh), so it follows the disk as it gets slower or faster during one extraction.
 */
export const SLOW_CREATE_MS = 0.06;
/** Creations sent to the thread pool before the pacer measures an inline one again. */
export const POOL_BATCH = 256;

/** Decides, per creation, between an inline (measured) call and the thread pool. */
export class CreatePacer {
  readonly #slowMs: number;
  #averageMs = 0;
  #poolLeft = 0;
  #fresh = true;

  /** @param slowMs the average above which creations go to the pool (tests pass 0 to use the pool). */
  constructor(slowMs: number = SLOW_CREATE_MS) {
    this.#slowMs = slowMs;
  }

  /** True when the next creation should run inline (and be {@link record}ed). */
  inline(): boolean {
    if (this.#poolLeft === 0) return true;
    this.#poolLeft--;
    if (this.#poolLeft === 0) this.#fresh = true;
    return false;
  }

  /** Records how long an inline creation took. */
  record(ms: number): void {
    this.#averageMs = this.#fresh ? ms : this.#averageMs * 0.875 + ms * 0.125;
    this.#fresh = false;
    if (this.#averageMs > this.#slowMs) this.#poolLeft = POOL_BATCH;
  }
}
