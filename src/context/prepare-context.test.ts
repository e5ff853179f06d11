import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { after, describe, it } from "node:test";
import { KilnError } from "../common/errors.js";
import { prepareContext } from "./prepare-context.js";

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function tmp(): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), "kiln-prep-"));
  dirs.push(d);
  return d;
}

describe("prepareContext", () => {
  it("uses a plain directory in place and ignores --context-sub-path for it (kaniko)", async () => {
    const d = await tmp();
    const r = await prepareContext({
      spec: { kind: "dir", path: d, scheme: false },
      subPath: "nope",
      workDir: "/unused",
    });
    assert.deepEqual(r, { dir: d, source: d, fetched: false });
  });

  it("applies --context-sub-path to dir:// inside the context, and fails clearly when it is missing", async () => {
    const d = await tmp();
    await mkdir(path.join(d, "sub"));
    const r = await prepareContext({
      spec: { kind: "dir", path: d, scheme: true },
      subPath: "sub",
      workDir: "/unused",
    });
    assert.equal(r.dir, path.join(d, "sub"));
    // ".." is clamped at the context root: never a directory outside it.
    const up = await prepareContext({
      spec: { kind: "dir", path: d, scheme: true },
      subPath: "../..",
      workDir: "/unused",
    });
    assert.equal(up.dir, d);
    await assert.rejects(
      prepareContext({ spec: { kind: "dir", path: d, scheme: true }, subPath: "missing", workDir: "/unused" }),
      /--context-sub-path missing is not a directory/,
    );
  });

  it("refuses a terminal on stdin", async () => {
    const tty = Object.assign(Readable.from([]), { isTTY: true });
    await assert.rejects(
      prepareContext({ spec: { kind: "stdin" }, workDir: path.join(await tmp(), "bc"), stdin: tty }),
      (e: unknown) => e instanceof KilnError && e.code === "CONTEXT_STDIN_TTY" && /docker run -i/.test(e.message),
    );
  });

  it("empties the work dir before unpacking a new context", async () => {
    const root = await tmp();
    const work = path.join(root, "bc");
    await mkdir(work);
    await writeFile(path.join(work, "stale"), "x");
    const empty = Buffer.alloc(1024);
    const r = await prepareContext({ spec: { kind: "stdin" }, workDir: work, stdin: Readable.from([empty]) });
    assert.equal(r.dir, work);
    assert.equal(r.fetched, true);
    await assert.rejects(import("node:fs/promises").then((fs) => fs.stat(path.join(work, "stale"))));
  });
});
