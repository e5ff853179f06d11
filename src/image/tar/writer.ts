import { once } from "node:events";
import type { Readable, Writable } from "node:stream";
import { KilnError } from "../../common/errors.js";
import { BLOCK, F, octalMax, writeChecksum, writeOctal, writeString } from "./fields.js";
import { encodePax, formatPaxTime, type PaxRecord } from "./pax.js";
import type { TarEntryType, TarHeader } from "./types.js";

const STAGING_SIZE = 64 * 1024;
const SMALL_WRITE = 16 * 1024;

const TYPEFLAG: Record<TarEntryType, string> = {
  file: "0",
  hardlink: "1",
  symlink: "2",
  char: "3",
  block: "4",
  dir: "5",
  fifo: "6",
};

/** True when every char is 7-bit ASCII without NUL (fits a ustar text field as-is). */
function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0 || c > 0x7f) return false;
  }
  return true;
}

/**
 * Deterministic tar writer: a ustar header per entry, preceded by a PAX extended header only when
 * needed (long or non-ASCII names/links/owner names, ids or sizes beyond octal range, fractional
 * or negative mtime, atime/ctime, xattrs, extra PAX records). Same input, same bytes. Calls to
 * {@link TarWriter.add} are serialised, so they may be issued without awaiting each one.
 */
export class TarWriter {
  private readonly out: Writable;
  private chain: Promise<void> = Promise.resolve();
  private failed: Error | undefined;
  private finished = false;

  constructor(out: Writable) {
    this.out = out;
    out.on("error", (e: Error) => {
      this.failed ??= e;
    });
  }

  /** Appends one entry; `body` (files only) must be exactly `header.size` bytes. */
  add(header: TarHeader, body?: Readable | Uint8Array): Promise<void> {
    return this.enqueue(() => this.writeEntry(header, body));
  }

  /** Writes the two zero end-of-archive blocks, ends the output and waits until it has flushed. */
  finish(): Promise<void> {
    return this.enqueue(async () => {
      this.finished = true;
      await this.write(Buffer.alloc(2 * BLOCK));
      await this.flushStaging();
      const done = once(this.out, "finish");
      this.out.end();
      await done;
    });
  }

  private enqueue(step: () => Promise<void>): Promise<void> {
    const run = this.chain.then(() => {
      if (this.failed) throw this.failed;
      return step();
    });
    this.chain = run.catch((e: unknown) => {
      this.failed ??= e instanceof Error ? e : new Error(String(e));
    });
    return run;
  }

  /** Small writes are gathered here and written together (fewer syscalls for many small entries). */
  private staging = Buffer.allocUnsafe(STAGING_SIZE);
  private staged = 0;

  private async write(buf: Uint8Array): Promise<void> {
    if (this.failed) throw this.failed;
    if (buf.length < SMALL_WRITE) {
      if (this.staged + buf.length > STAGING_SIZE) await this.flushStaging();
      this.staging.set(buf, this.staged);
      this.staged += buf.length;
      return;
    }
    await this.flushStaging();
    await this.writeOut(buf);
  }

  private async flushStaging(): Promise<void> {
    if (this.staged === 0) return;
    const data = this.staging.subarray(0, this.staged);
    this.staging = Buffer.allocUnsafe(STAGING_SIZE); // the stream may still hold `data`
    this.staged = 0;
    await this.writeOut(data);
  }

  private async writeOut(buf: Uint8Array): Promise<void> {
    if (this.out.write(buf)) return;
    await new Promise<void>((resolve, reject) => {
      const cleanup = (): void => {
        this.out.off("drain", onDrain);
        this.out.off("close", onDrain);
        this.out.off("error", onError);
      };
      const onDrain = (): void => {
        cleanup();
        resolve();
      };
      const onError = (e: Error): void => {
        cleanup();
        reject(e);
      };
      this.out.on("drain", onDrain);
      this.out.on("close", onDrain);
      this.out.on("error", onError);
    });
    if (this.failed) throw this.failed;
  }

  private async writeEntry(h: TarHeader, body: Readable | Uint8Array | undefined): Promise<void> {
    if (this.finished) throw new KilnError("TAR_WRITE", `cannot add ${JSON.stringify(h.name)}: the tar was finished`);
    if (h.type !== "file" && h.size !== 0) {
      throw new KilnError("TAR_WRITE", `tar entry ${JSON.stringify(h.name)} of type ${h.type} must have size 0`);
    }
    if (!Number.isSafeInteger(h.size) || h.size < 0) {
      throw new KilnError("TAR_WRITE", `tar entry ${JSON.stringify(h.name)} has invalid size ${h.size}`);
    }
    const [block, pax] = encodeHeader(h);
    if (pax.length > 0) {
      const data = encodePax(pax);
      const paxHeader = paxHeaderBlock(h, data.length);
      await this.write(paxHeader);
      await this.write(data);
      await this.write(Buffer.alloc((BLOCK - (data.length % BLOCK)) % BLOCK));
    }
    await this.write(block);
    let written = 0;
    if (body !== undefined) {
      if (body instanceof Uint8Array) {
        if (body.length !== h.size) throw sizeMismatch(h, body.length);
        if (body.length > 0) await this.write(body);
        written = body.length;
      } else {
        for await (const chunk of body) {
          const buf = typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Buffer);
          written += buf.length;
          if (written > h.size) {
            body.destroy();
            throw sizeMismatch(h, written);
          }
          await this.write(buf);
        }
      }
    }
    if (written !== h.size) throw sizeMismatch(h, written);
    const pad = (BLOCK - (h.size % BLOCK)) % BLOCK;
    if (pad > 0) await this.write(Buffer.alloc(pad));
  }
}

function sizeMismatch(h: TarHeader, got: number): KilnError {
  return new KilnError(
    "TAR_WRITE",
    `body of tar entry ${JSON.stringify(h.name)} has ${got > h.size ? "more than" : ""} ${got} bytes but its header says ${h.size}`,
  );
}

/** Splits a name into ustar prefix/name when that is possible without PAX. */
function splitUstar(name: string): [prefix: string, rest: string] | undefined {
  if (!isAscii(name)) return undefined;
  if (name.length <= 100) return ["", name];
  if (name.length > 256) return undefined;
  for (let i = name.length - 1; i > 0; i--) {
    if (name[i] !== "/") continue;
    const prefix = name.slice(0, i);
    const rest = name.slice(i + 1);
    if (prefix.length <= 155 && rest.length <= 100 && rest.length > 0) return [prefix, rest];
    if (rest.length > 100) return undefined;
  }
  return undefined;
}

function encodeHeader(h: TarHeader): [Buffer, PaxRecord[]] {
  const block = Buffer.alloc(BLOCK);
  const pax: [string, Buffer][] = [];
  const text = (s: string): Buffer => Buffer.from(s, "utf8");

  const split = splitUstar(h.name);
  if (split) {
    writeString(block, F.name, split[1]);
    writeString(block, F.prefix, split[0]);
  } else {
    pax.push(["path", text(h.name)]);
    writeString(block, F.name, asciiFallback(h.name, 100));
  }
  if (isAscii(h.linkname) && h.linkname.length <= 100) {
    writeString(block, F.linkname, h.linkname);
  } else {
    pax.push(["linkpath", text(h.linkname)]);
    writeString(block, F.linkname, asciiFallback(h.linkname, 100));
  }
  const num = (field: readonly [number, number], key: string, v: number): void => {
    if (!Number.isSafeInteger(v) || v < 0) {
      throw new KilnError("TAR_WRITE", `tar entry ${JSON.stringify(h.name)} has invalid ${key} ${v}`);
    }
    if (v <= octalMax(field[1])) writeOctal(block, field, v);
    else {
      pax.push([key, text(String(v))]);
      writeOctal(block, field, 0);
    }
  };
  writeOctal(block, F.mode, h.mode & 0o7777);
  num(F.uid, "uid", h.uid);
  num(F.gid, "gid", h.gid);
  num(F.size, "size", h.size);
  num(F.devmajor, "SCHILY.devmajor", h.devmajor);
  num(F.devminor, "SCHILY.devminor", h.devminor);
  if (!Number.isFinite(h.mtime)) throw new KilnError("TAR_WRITE", `tar entry ${JSON.stringify(h.name)} has bad mtime`);
  if (Number.isInteger(h.mtime) && h.mtime >= 0 && h.mtime <= octalMax(12)) {
    writeOctal(block, F.mtime, h.mtime);
  } else {
    pax.push(["mtime", text(formatPaxTime(h.mtime))]);
    writeOctal(block, F.mtime, Math.min(Math.max(Math.floor(h.mtime), 0), octalMax(12)));
  }
  if (h.atime !== undefined) pax.push(["atime", text(formatPaxTime(h.atime))]);
  if (h.ctime !== undefined) pax.push(["ctime", text(formatPaxTime(h.ctime))]);
  for (const [key, field, value] of [
    ["uname", F.uname, h.uname],
    ["gname", F.gname, h.gname],
  ] as const) {
    if (isAscii(value) && value.length <= 32) writeString(block, field, value);
    else {
      pax.push([key, text(value)]);
      writeString(block, field, asciiFallback(value, 32));
    }
  }
  for (const [name, value] of h.xattrs) pax.push([`SCHILY.xattr.${name}`, Buffer.from(value)]);
  const seen = new Set(pax.map(([k]) => k));
  for (const [key, value] of h.pax) {
    if (seen.has(key)) {
      throw new KilnError(
        "TAR_WRITE",
        `extra PAX record ${key} of ${JSON.stringify(h.name)} duplicates a header field`,
      );
    }
    pax.push([key, Buffer.from(value)]);
  }
  pax.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

  block[156] = TYPEFLAG[h.type].charCodeAt(0);
  block.write("ustar\u000000", 257, 8, "latin1");
  writeChecksum(block);
  return [block, pax];
}

/** The ustar header of the PAX extended header describing `h`. */
function paxHeaderBlock(h: TarHeader, size: number): Buffer {
  const block = Buffer.alloc(BLOCK);
  const clean = h.name.replace(/\/+$/, "");
  const slash = clean.lastIndexOf("/");
  const dir = slash === -1 ? "" : clean.slice(0, slash + 1);
  const base = slash === -1 ? clean : clean.slice(slash + 1);
  writeString(block, F.name, asciiFallback(`${dir}PaxHeaders.0/${base}`, 100));
  writeOctal(block, F.mode, 0o644);
  writeOctal(block, F.uid, 0);
  writeOctal(block, F.gid, 0);
  writeOctal(block, F.size, size);
  writeOctal(block, F.mtime, Number.isFinite(h.mtime) ? Math.min(Math.max(Math.floor(h.mtime), 0), octalMax(12)) : 0);
  block[156] = "x".charCodeAt(0);
  block.write("ustar\u000000", 257, 8, "latin1");
  writeChecksum(block);
  return block;
}

/** A printable ASCII stand-in (for readers that ignore PAX), at most `max` bytes. */
function asciiFallback(s: string, max: number): string {
  let out = s.replace(/[^\x20-\x7e]/g, "_");
  if (out.length > max) out = out.slice(out.length - max);
  return out;
}
