import * as assert from "node:assert/strict";
import { Readable } from "node:stream";
import { test } from "node:test";
import type { Layer } from "../image/types.js";
import type { BuildEvent } from "./events.js";
import { lazyExtractProgress, withExtractProgress } from "./extract-progress.js";

// Only the digest of a layer names its task.
const layer = { digest: `sha256:${"ab".repeat(32)}` } as Layer;

async function drain(s: Readable): Promise<number> {
  let n = 0;
  for await (const c of s) n += (c as Buffer).length;
  return n;
}

test("an extraction is a transfer task of the extract phase that ends with every byte read", async () => {
  const events: BuildEvent[] = [];
  const read = await withExtractProgress(
    (e) => events.push(e),
    layer,
    2,
    "/root-a",
    () => Promise.resolve(Readable.from([Buffer.alloc(1000), Buffer.alloc(24)])),
    drain,
  );
  assert.equal(read, 1024);
  const last = events.at(-1);
  assert.deepEqual(last, {
    kind: "transfer",
    id: `extract ${layer.digest} into /root-a`,
    phase: "extract",
    label: `layer sha256:${"ab".repeat(6)} of stage 2`,
    bytes: 1024,
    done: true,
  });
  assert.ok(events.every((e) => e.kind === "transfer" && e.phase === "extract"));
});

test("a failed extraction ends its task as failed, and one that never opened reports nothing", async () => {
  const events: BuildEvent[] = [];
  await assert.rejects(
    withExtractProgress(
      (e) => events.push(e),
      layer,
      0,
      "/root-b",
      () => Promise.resolve(Readable.from([Buffer.alloc(10)])),
      async (tar) => {
        await drain(tar);
        throw new Error("disk full");
      },
    ),
    /disk full/,
  );
  const last = events.at(-1);
  assert.ok(last?.kind === "transfer" && last.done && last.failed === true && last.bytes === 10);

  const quiet: BuildEvent[] = [];
  const lazy = lazyExtractProgress(
    (e) => quiet.push(e),
    layer,
    0,
    "/store",
    () => Promise.resolve(Readable.from([])),
  );
  lazy.end("done"); // the store held the layer: open was never called
  assert.deepEqual(quiet, []);
});
