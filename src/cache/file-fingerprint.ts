import { createHash } from "node:crypto";
import { createReadStream, type Stats } from "node:fs";
import { readlink } from "node:fs/promises";

function typeOf(st: Stats): string {
  if (st.isDirectory()) return "dir";
  if (st.isSymbolicLink()) return "symlink";
  if (st.isFile()) return "file";
  return "other";
}

/**
 * Fingerprint of one context entry for a COPY/ADD cache key: type, permission bits (with
 * setuid/setgid/sticky), owner, and the sha256 of the content (files) or the link target
 * (symlinks), framed unambiguously. Timestamps are left out (like kaniko and BuildKit) so a fresh
 * checkout of unchanged sources still hits. `st` is the entry's lstat (or stat when followed).
 */
export async function fileFingerprint(abs: string, st: Stats): Promise<string> {
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
  field(`${st.uid}:${st.gid}`);
  if (st.isSymbolicLink()) field(await readlink(abs));
  else if (st.isFile()) {
    const c = createHash("sha256");
    for await (const chunk of createReadStream(abs)) c.update(chunk as Buffer);
    field(c.digest("hex"));
  }
  return h.digest("hex");
}
