import { createHash } from "node:crypto";
import { createReadStream, type Stats } from "node:fs";
import { readlink } from "node:fs/promises";

function typeOf(st: Stats): string {
  if (st.isDirectory()) return "dir";
  if (st.isSymbolicLink()) return "symlink";
  if (st.isFile()) return "file";
  return "other";
}

/** What {@link fileFingerprint} leaves out. */
export interface FingerprintOptions {
  /**
   * Key the entry's uid:gid (default true). False where the copy never carries the owner over: COPY/ADD
   * from the build context writes 0:0 or the `--chown` owner, so a checkout by another user must still hit.
   */
  owner?: boolean;
}

/**
 * Fingerprint of one context entry for a COPY/ADD cache key: type, permission bits (with
 * setuid/setgid/sticky), owner (unless `opts.owner` is false), and the sha256 of the content (files)
 * or the link target (symlinks), framed unambiguously. Timestamps are left out (like kaniko and
 * BuildKit) so a fresh checkout of unchanged sources still hits. `st` is the entry's lstat (or stat
 * when followed).
 */
export async function fileFingerprint(abs: string, st: Stats, opts: FingerprintOptions = {}): Promise<string> {
  const h = createHash("sha256");
  const field = (v: string): void => {
    const b = Buffer.from(v, "utf8");
    const len = Buffer.alloc(4);
    len.writeUInt32BE(b.length);
    h.update(len);
    h.update(b);
  };
  field(typeOf(st));
  field((st.mode & 0o7777).toString(8));
  // A fixed placeholder keeps the framing (and so every other field's position) the same either way.
  field(opts.owner === false ? "-" : `${st.uid}:${st.gid}`);
  if (st.isSymbolicLink()) field(await readlink(abs));
  else if (st.isFile()) {
    const c = createHash("sha256");
    for await (const chunk of createReadStream(abs)) c.update(chunk as Buffer);
    field(c.digest("hex"));
  }
  return h.digest("hex");
}
