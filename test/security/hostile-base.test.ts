/**
 * Hostile base images through whole builds: a layer with `..` names, absolute names, a symlink followed
 * by a write through it, a hardlink out of the root, and whiteouts of `..` is pushed to a real registry
 * and built FROM with `bin/kiln`. A canary directory outside the build root must stay untouched, and a
 * refused layer must fail the build with a one-line error (no stack trace).
 */
import assert from "node:assert/strict";
import { mkdir, readdir, readFile, stat, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { PassThrough } from "node:stream";
import { describe, test } from "node:test";
import { gzipSync } from "node:zlib";
import { sha256Digest } from "../../src/image/digest.js";
import { MediaTypes } from "../../src/image/media-types.js";
import { TarWriter, type TarHeader } from "../../src/image/index.js";
import { parseReference, RegistryClient, anonymousKeychain } from "../../src/registry/index.js";
import { Readable } from "node:stream";
import { testImage } from "../support/registry.js";
import { useSuiteFixture } from "../support/suite-fixture.js";
import { Figures, runKilnMeasured } from "../reliability/support.js";

const figures = new Figures("hostile base-image layers (whole builds)");

type Entry = Partial<TarHeader> & { name: string; body?: string };

async function makeTar(entries: Entry[]): Promise<Buffer> {
  const out = new PassThrough();
  const parts: Buffer[] = [];
  out.on("data", (b: Buffer) => parts.push(b));
  const w = new TarWriter(out);
  for (const e of entries) {
    const body = e.body !== undefined ? Buffer.from(e.body) : undefined;
    await w.add(
      {
        type: "file",
        mode: 0o644,
        uid: 0,
        gid: 0,
        size: body?.length ?? 0,
        mtime: 0,
        linkname: "",
        uname: "",
        gname: "",
        devmajor: 0,
        devminor: 0,
        xattrs: new Map(),
        pax: new Map(),
        ...e,
      },
      body,
    );
  }
  await w.finish();
  return Buffer.concat(parts);
}

describe("hostile base-image layers through whole builds", { timeout: 600_000 }, () => {
  let canary: string;
  const canaryFiles = { "victim.txt": "canary-victim\n", "target.txt": "canary-target\n" };
  const fx = useSuiteFixture("hostile", {
    registry: "empty",
    setup: async ({ work }) => {
      canary = path.join(work, "canary");
      await mkdir(canary, { recursive: true });
      for (const [n, c] of Object.entries(canaryFiles)) await writeFile(path.join(canary, n), c);
    },
    teardown: () => figures.flush(),
  });

  const up = "../".repeat(24);
  const rel = (p: string): string => p.replace(/^\//, "");
  const cases = (): { name: string; entries: Entry[] }[] => [
    { name: "dot-dot file name", entries: [{ name: `${up}${rel(canary)}/dotdot.txt`, body: "pwned" }] },
    { name: "absolute file name", entries: [{ name: `${canary}/absolute.txt`, body: "pwned" }] },
    {
      name: "symlink then write through it",
      entries: [
        { name: "lnk", type: "symlink", linkname: canary },
        { name: "lnk/through-symlink.txt", body: "pwned" },
      ],
    },
    {
      name: "relative symlink then write through it",
      entries: [
        { name: "rl", type: "symlink", linkname: `${up}${rel(canary)}` },
        { name: "rl/through-relative.txt", body: "pwned" },
      ],
    },
    {
      name: "hardlink out of the root",
      entries: [{ name: "hl", type: "hardlink", linkname: `${up}${rel(canary)}/target.txt` }],
    },
    {
      name: "hardlink to an absolute path",
      entries: [{ name: "hl2", type: "hardlink", linkname: `${canary}/target.txt` }],
    },
    {
      name: "whiteout of .. and a whiteout climbing out",
      entries: [
        { name: "sub/", type: "dir", mode: 0o755 },
        { name: "sub/.wh..", body: "" },
        { name: `${up}${rel(canary)}/.wh.victim.txt`, body: "" },
      ],
    },
  ];

  test("every hostile layer is refused or contained; the canary outside stays untouched", async () => {
    const client = new RegistryClient({
      env: {},
      hostOptions: () => ({ insecure: true }),
      keychain: anonymousKeychain,
    });
    const problems: string[] = [];
    let passed = 0;
    const all = cases();
    try {
      for (const [i, c] of all.entries()) {
        const tar = await makeTar(c.entries);
        const gz = gzipSync(tar);
        const layer = {
          mediaType: MediaTypes.ociLayerGzip,
          digest: sha256Digest(gz),
          diffId: sha256Digest(tar),
          size: gz.length,
          openCompressed: () => Promise.resolve(Readable.from([gz])),
          openUncompressed: () => Promise.resolve(Readable.from([tar])),
        };
        await client.pushImage(parseReference(`${fx.reg.host}/evil:${i}`), testImage([layer]));
        const ctx = path.join(fx.work, `ctx-${i}`);
        await mkdir(ctx, { recursive: true });
        await writeFile(path.join(ctx, "Dockerfile"), `FROM ${fx.reg.host}/evil:${i}\nCOPY f /f\n`);
        await writeFile(path.join(ctx, "f"), "f\n");
        const r = await runKilnMeasured([
          "build",
          "-f",
          path.join(ctx, "Dockerfile"),
          "-c",
          ctx,
          "--no-push",
          "--insecure-pull",
          "--kaniko-dir",
          path.join(fx.work, `state-${i}`),
          "--tar-path",
          path.join(fx.work, `out-${i}.tar`),
        ]);
        const names = (await readdir(canary)).sort();
        const bad: string[] = [];
        if (names.join(",") !== Object.keys(canaryFiles).sort().join(","))
          bad.push(`canary dir now holds ${names.join(", ")}`);
        for (const [n, content] of Object.entries(canaryFiles)) {
          const p = path.join(canary, n);
          try {
            if ((await readFile(p, "utf8")) !== content) bad.push(`${n} changed`);
            if ((await stat(p)).nlink !== 1) bad.push(`${n} got a hard link (nlink ${(await stat(p)).nlink})`);
          } catch {
            bad.push(`${n} was removed`);
          }
        }
        if (r.code !== 0 && /\n\s+at /.test(r.stderr)) bad.push(`failed with a stack trace:\n${r.stderr.slice(-800)}`);
        if (r.code !== 0 && r.stderr.trim() === "") bad.push("failed without an error message");
        if (bad.length === 0) passed++;
        else problems.push(`${c.name}: ${bad.join("; ")}`);
        const outcome =
          r.code === 0 ? "built (contained)" : `refused: ${(r.stderr.match(/ERRO.*$/m)?.[0] ?? "").slice(0, 100)}`;
        figures.add(`layer: ${c.name}`, 1, bad.length === 0 ? 1 : 0, outcome);
      }
    } finally {
      await client.close();
    }
    assert.equal(passed, all.length, problems.join("\n"));
  });
});
