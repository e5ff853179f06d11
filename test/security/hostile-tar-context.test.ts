/**
 * Hostile tar build contexts through whole builds (`--context tar://<file>` and `tar://stdin`): compression
 * bombs, a declared-size bomb, an endless stream of entries, deep nesting, over-long names, `..` and absolute
 * names, hardlinks and symlinks out of the context. Every refused archive must fail with a one-line error,
 * in bounded time and memory (peak RSS of the kiln process), and leave no unpacked context on disk; the
 * accepted ones must keep every write inside the context and let no outside byte into the image.
 */
import assert from "node:assert/strict";
import { createWriteStream, existsSync } from "node:fs";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import * as path from "node:path";
import { PassThrough, Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { describe, test } from "node:test";
import { createGzip, gunzipSync } from "node:zlib";
import { emptyHeader, TarWriter, type TarHeader } from "../../src/image/index.js";
import { useSuiteFixture } from "../support/suite-fixture.js";
import { Figures, runKilnMeasured } from "../reliability/support.js";

const figures = new Figures("hostile tar contexts (whole builds)");
const MAX_RSS_KB = 512 * 1024;

/** One archive entry; `body` may be a lazy stream of `size` bytes. */
interface Spec {
  name: string;
  type?: TarHeader["type"];
  linkname?: string;
  body?: Buffer | (() => Readable);
  size?: number;
}

/** Zeros, produced lazily in 1 MiB chunks. */
function zeros(total: number): Readable {
  const chunk = Buffer.alloc(1024 * 1024);
  let left = total;
  return new Readable({
    read() {
      if (left <= 0) {
        this.push(null);
        return;
      }
      const n = Math.min(left, chunk.length);
      left -= n;
      this.push(chunk.subarray(0, n));
    },
  });
}

/** A gzip'd tar of `entries` (an iterable, so it may be lazy and long), as a stream. */
function tarGz(entries: Iterable<Spec>): Readable {
  const raw = new PassThrough();
  const gz = createGzip({ level: 1 });
  raw.pipe(gz);
  const w = new TarWriter(raw);
  void (async () => {
    for (const e of entries) {
      if (gz.destroyed) return;
      const type = e.type ?? (e.linkname !== undefined ? "symlink" : e.body !== undefined ? "file" : "dir");
      const h = emptyHeader(e.name, type);
      if (e.linkname !== undefined) h.linkname = e.linkname;
      const body = typeof e.body === "function" ? e.body() : e.body;
      if (body !== undefined) h.size = e.size ?? (body as Buffer).length;
      await w.add(h, body);
    }
    await w.finish();
  })().catch(() => gz.destroy());
  return gz;
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await filesUnder(p)));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

describe("hostile tar contexts", { timeout: 600_000 }, () => {
  let outside: string;
  const secret = `outside-${randomBytes(12).toString("hex")}`;
  const fx = useSuiteFixture("hostile-tar-ctx", {
    setup: async ({ work }) => {
      outside = path.join(work, "outside");
      await mkdir(outside);
      await writeFile(path.join(outside, "secret.txt"), `${secret}\n`);
    },
    teardown: () => figures.flush(),
  });

  const dockerfile = (body: string): Spec => ({ name: "Dockerfile", body: Buffer.from(body) });

  interface Case {
    name: string;
    via: "file" | "stdin";
    entries: () => Iterable<Spec>;
    env?: Record<string, string>;
    /** A refused archive: the error the log must show. */
    refuse?: RegExp;
  }
  const cases: Case[] = [
    {
      name: "gzip bomb: 256 MiB of zeros (≈1000:1), 16 MiB limit",
      via: "file",
      env: { KILN_CONTEXT_MAX_BYTES: String(16 * 1024 * 1024) },
      entries: () => [
        dockerfile("FROM scratch\nCOPY . /\n"),
        { name: "zeros", body: () => zeros(256 * 1024 * 1024), size: 256 * 1024 * 1024 },
      ],
      refuse: /expands to more than 16777216 bytes.*archive bomb/,
    },
    {
      name: "declared 20 GiB entry, default limits",
      via: "stdin",
      entries: () => [
        dockerfile("FROM scratch\nCOPY . /\n"),
        { name: "huge", body: () => zeros(20 * 1024 ** 3), size: 20 * 1024 ** 3 },
      ],
      refuse: /expands to more than 17179869184 bytes/,
    },
    {
      name: "2,000,000 entries streamed, 5,000 limit",
      via: "stdin",
      env: { KILN_CONTEXT_MAX_ENTRIES: "5000" },
      entries: function* () {
        yield dockerfile("FROM scratch\nCOPY . /\n");
        for (let i = 0; i < 2_000_000; i++) yield { name: `f${i}`, body: Buffer.alloc(0) };
      },
      refuse: /more than 5000 entries.*archive bomb/,
    },
    {
      name: "nested 300 levels deep, default limits",
      via: "file",
      entries: () => [dockerfile("FROM scratch\nCOPY . /\n"), { name: "d/".repeat(300) + "f", body: Buffer.from("x") }],
      refuse: /nested 301 levels deep, more than the limit of 256/,
    },
    {
      name: "entry name of 8 KiB",
      via: "file",
      entries: () => [
        dockerfile("FROM scratch\nCOPY . /\n"),
        { name: "n/".repeat(4096) + "f", body: Buffer.from("x") },
      ],
      refuse: /more than 4096/,
    },
    {
      name: "`../` entry name",
      via: "stdin",
      entries: () => [dockerfile("FROM scratch\nCOPY . /\n"), { name: "../../escape.txt", body: Buffer.from("x") }],
      refuse: /has a "\.\." component/,
    },
    {
      name: "hardlink out of the context",
      via: "file",
      entries: () => [
        dockerfile("FROM scratch\nCOPY . /\n"),
        { name: "pw", type: "hardlink", linkname: "../../../../etc/passwd" },
      ],
      refuse: /hardlink "pw" points to .*outside the context/,
    },
    {
      name: "absolute hardlink to a host file",
      via: "file",
      entries: () => [
        dockerfile("FROM scratch\nCOPY . /\n"),
        { name: "sec", type: "hardlink", linkname: "__OUTSIDE__/secret.txt" },
      ],
      refuse: /hardlink "sec" points to .*not a file earlier in the archive/,
    },
  ];

  const tarFile = async (file: string, entries: Iterable<Spec>): Promise<void> => {
    await pipeline(tarGz(entries), createWriteStream(file));
  };

  for (const [i, c] of cases.entries()) {
    test(`${c.name} (tar://${c.via}): refused, bounded, nothing left on disk`, async () => {
      const state = path.join(fx.work, `state-${i}`);
      const entries = (): Iterable<Spec> => {
        const list = c.entries();
        return (function* () {
          for (const e of list) yield e.linkname ? { ...e, linkname: e.linkname.replace("__OUTSIDE__", outside) } : e;
        })();
      };
      let ctxArg = "tar://stdin";
      let stdin: Readable | undefined;
      if (c.via === "file") {
        const file = path.join(fx.work, `ctx-${i}.tar.gz`);
        await tarFile(file, entries());
        ctxArg = `tar://${file}`;
      } else stdin = tarGz(entries());
      const t0 = Date.now();
      const r = await runKilnMeasured(["build", "-c", ctxArg, "--no-push", "--insecure-pull", "--kaniko-dir", state], {
        env: c.env ?? {},
        timeoutMs: 300_000,
        ...(stdin ? { stdin } : {}),
      });
      const secs = (Date.now() - t0) / 1000;
      const leftover = existsSync(path.join(state, "buildcontext"))
        ? (await readdir(path.join(state, "buildcontext"))).length
        : 0;
      const line = (r.stderr.match(/(ERRO|error).*$/m)?.[0] ?? r.stderr.trim().split("\n").pop() ?? "").slice(0, 120);
      const ok =
        r.code === 1 &&
        c.refuse !== undefined &&
        c.refuse.test(r.stderr) &&
        !/\n\s+at /.test(r.stderr) &&
        r.maxRssKb < MAX_RSS_KB &&
        leftover === 0 &&
        (await readdir(outside)).length === 1;
      figures.add(
        `tar context (${c.via}): ${c.name}`,
        1,
        ok ? 1 : 0,
        `exit ${r.code} in ${secs.toFixed(1)} s, max RSS ${(r.maxRssKb / 1024).toFixed(0)} MiB: ${line}`,
      );
      assert.equal(r.code, 1, r.stderr.slice(-1500));
      assert.match(r.stderr, c.refuse ?? /never/);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
      assert.ok(r.maxRssKb < MAX_RSS_KB, `peak RSS ${r.maxRssKb} kB`);
      assert.equal(leftover, 0, "the refused context was removed");
      assert.deepEqual(await readdir(outside), ["secret.txt"]);
    });
  }

  test("symlinks out, absolute names and writes through links stay inside the context (tar://file)", async () => {
    const file = path.join(fx.work, "links.tar.gz");
    await tarFile(file, [
      dockerfile(`FROM ${fx.reg.host}/busybox:latest\nCOPY . /ctx/\nRUN ls -R /ctx > /listing\n`),
      { name: "esc", linkname: outside },
      { name: "esc/planted", body: Buffer.from("planted through a symlink\n") },
      { name: "up", linkname: "../../../../../../../../" + outside.slice(1) },
      { name: "up/planted2", body: Buffer.from("planted through a relative symlink\n") },
      { name: `${outside}/planted3`, body: Buffer.from("absolute name\n") },
      { name: "abs-secret", linkname: path.join(outside, "secret.txt") },
    ]);
    const layout = path.join(fx.work, "links-layout");
    const t0 = Date.now();
    const r = await runKilnMeasured([
      "build",
      "-c",
      `tar://${file}`,
      "--no-push",
      "--insecure-pull",
      "--oci-layout-path",
      layout,
      "--kaniko-dir",
      path.join(fx.work, "state-links"),
    ]);
    const secs = (Date.now() - t0) / 1000;
    const leaks: string[] = [];
    if (r.code === 0) {
      for (const f of await filesUnder(layout)) {
        const b = await readFile(f);
        const all = b[0] === 0x1f && b[1] === 0x8b ? [b, gunzipSync(b)] : [b];
        if (all.some((x) => x.includes(Buffer.from(secret)))) leaks.push(`${f} holds the outside secret`);
      }
    }
    const outsideNow = await readdir(outside);
    const ok = r.code === 0 && leaks.length === 0 && outsideNow.length === 1 && r.maxRssKb < MAX_RSS_KB;
    figures.add(
      "tar context (file): symlinks out, writes through them, absolute names",
      1,
      ok ? 1 : 0,
      `exit ${r.code} in ${secs.toFixed(1)} s; outside dir untouched; no outside byte in any blob`,
    );
    assert.equal(r.code, 0, r.stderr.slice(-1500));
    assert.deepEqual(outsideNow, ["secret.txt"]);
    assert.deepEqual(leaks, []);
  });
});
