import { KilnError } from "../../common/errors.js";
import type { PaxRecord } from "./pax.js";

/** Most distinct keys the global PAX headers of one archive may have in force at once. */
export const MAX_GLOBAL_KEYS = 1000;

/** Keys mapped onto header fields by the reader; a global record of any other key changes no entry. */
const ENTRY_KEYS: ReadonlySet<string> = new Set([
  "path",
  "linkpath",
  "size",
  "uid",
  "gid",
  "uname",
  "gname",
  "mtime",
  "atime",
  "ctime",
  "SCHILY.devmajor",
  "SCHILY.devminor",
]);

/** True when a PAX record of `key` changes what the reader makes of an entry. */
export function affectsEntry(key: string): boolean {
  return (
    ENTRY_KEYS.has(key) ||
    key.startsWith("SCHILY.xattr.") ||
    key.startsWith("LIBARCHIVE.xattr.") ||
    key.startsWith("GNU.sparse.")
  );
}

/**
 * The records of the global (`g`) PAX headers in force. Globals apply to every later entry, so what they
 * cost is paid once per entry: the keys in force are capped (count and bytes, TAR_INVALID beyond), and
 * only keys that change an entry ({@link affectsEntry}) are handed on. Without this, 16 MiB of globals
 * (1.4 million keys) were copied into each of 100,000 entries' maps.
 */
export class PaxGlobals {
  private readonly values = new Map<string, Buffer>();
  private bytes = 0;
  private applied: PaxRecord[] = [];

  constructor(private readonly maxBytes: number) {}

  /** Records to apply before each entry's own: the globals in force that affect entries. */
  get records(): readonly PaxRecord[] {
    return this.applied;
  }

  /** Takes in one global header's records (an empty value removes a key); `where` names the header. */
  update(records: readonly PaxRecord[], where: string): void {
    for (const [k, v] of records) {
      const old = this.values.get(k);
      if (old !== undefined) this.bytes -= Buffer.byteLength(k) + old.length;
      if (v.length === 0) {
        this.values.delete(k);
        continue;
      }
      this.values.set(k, v);
      this.bytes += Buffer.byteLength(k) + v.length;
      if (this.values.size > MAX_GLOBAL_KEYS) {
        throw new KilnError(
          "TAR_INVALID",
          `global PAX headers up to ${JSON.stringify(where)} set more than ${MAX_GLOBAL_KEYS} keys`,
        );
      }
      if (this.bytes > this.maxBytes) {
        throw new KilnError(
          "TAR_INVALID",
          `global PAX headers up to ${JSON.stringify(where)} hold more than ${this.maxBytes} bytes of records`,
        );
      }
    }
    this.applied = [...this.values].filter(([k]) => affectsEntry(k));
  }
}
