import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { PassThrough, Readable } from "node:stream";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { BuildEvent } from "../../build/index.js";
import type { Digest } from "../../image/digest.js";
import { TarWriter, emptyHeader } from "../../image/tar/index.js";
import type { Layer } from "../../image/types.js";
import { redactor } from "../render/redact.js";
import { createReportCollector } from "./collector.js";
import { layerContents } from "./contents.js";
import { formatBytes, formatMs } from "./format.js";
import { renderReportHtml } from "./html.js";
import { reportFormat, writeReport } from "./write.js";

async function tarOf(files: Record<string, number>): Promise<Buffer> {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on("data", (c: Buffer) => chunks.push(c));
  const ended = new Promise((r) => out.on("end", r));
  const w = new TarWriter(out);
  for (const [name, size] of Object.entries(files)) {
    if (name.endsWith("/")) {
      await w.add(emptyHeader(name, "dir"));
      continue;
    }
    const h = emptyHeader(name, "file");
    h.size = size;
    await w.add(h, Buffer.alloc(size, 1));
  }
  await w.finish();
  await ended;
  return Buffer.concat(chunks);
}

const D1 = `sha256:${"1".repeat(64)}` as Digest;
const D2 = `sha256:${"2".repeat(64)}` as Digest;
const D3 = `sha256:${"3".repeat(64)}` as Digest;

function fakeLayer(digest: Digest, tar: Buffer): Layer {
  return {
    mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
    digest,
    diffId: digest,
    size: tar.length,
    openCompressed: () => Promise.resolve(Readable.from([tar])),
    openUncompressed: () => Promise.resolve(Readable.from([tar])),
  } as unknown as Layer;
}

describe("layerContents", () => {
  test("sums file bytes by path prefix, biggest first, limited", async () => {
    const tar = await tarOf({
      "usr/": 0,
      "usr/lib/x86_64-linux-gnu/libbig.so": 5000,
      "usr/lib/x86_64-linux-gnu/libsmall.so": 1000,
      "usr/bin/tool": 3000,
      "./etc/conf": 10,
      "root.txt": 7,
    });
    const c = await layerContents(Readable.from([tar]), { limit: 3 });
    assert.equal(c.entries, 6);
    assert.equal(c.fileBytes, 9017);
    assert.deepEqual(c.top, [
      { path: "/usr/lib/x86_64-linux-gnu", bytes: 6000, files: 2 },
      { path: "/usr/bin/tool", bytes: 3000, files: 1 },
      { path: "/etc/conf", bytes: 10, files: 1 },
    ]);
  });
});

describe("report collector", () => {
  const events = (layer: Layer): BuildEvent[] => [
    { kind: "stage-start", stage: 0, name: "build", base: "busybox:latest" },
    { kind: "base-resolved", stage: 0, ref: "busybox:latest", digest: D3 },
    { kind: "step-start", stage: 0, step: 1, total: 2, instruction: "RUN make", location: "Dockerfile:2" },
    { kind: "step-output", stage: 0, step: 1, stream: "stdout", data: Buffer.from("hello\n") },
    { kind: "phase", phase: "run", ms: 40, stage: 0 },
    { kind: "phase", phase: "snapshot", ms: 10, stage: 0 },
    { kind: "layer-created", stage: 0, step: 1, layer },
    {
      kind: "step-done",
      stage: 0,
      step: 1,
      layer: { digest: layer.digest, diffId: layer.diffId, size: 123 },
      ms: 50,
      cache: { status: "miss", reason: "no entry for key sha256:abc" },
    },
    { kind: "step-start", stage: 0, step: 2, total: 2, instruction: "ENV A=b", location: "Dockerfile:3" },
    { kind: "step-done", stage: 0, step: 2, ms: 1 },
    { kind: "phase", phase: "snapshot", ms: 5, stage: 0 },
    { kind: "image-written", sink: "registry", target: "reg/app:v1", digest: D2 },
    { kind: "warning", code: "W", message: "careful <b>" },
    { kind: "isolation", isolation: "chroot", reason: "auto-detected" },
  ];

  test("stages, steps, cache verdicts, phases, outputs and layer contents", async () => {
    let t = 1000;
    const c = createReportCollector({ kilnVersion: "0.0.0", startedAt: new Date(0), clock: () => (t += 10) });
    const layer = fakeLayer(D1, await tarOf({ "app/bin": 100 }));
    for (const e of events(layer)) c.reporter(e);
    const r = await c.finish({ exitCode: 0, digest: D2 });
    assert.equal(r.schema, "kiln.build-report/v1");
    assert.equal(r.status, "succeeded");
    assert.equal(r.digest, D2);
    assert.equal(r.stages.length, 1);
    const st = r.stages[0]!;
    assert.equal(st.baseDigest, D3);
    assert.equal(st.name, "build");
    const [s1, s2] = st.steps;
    assert.equal(s1?.status, "done");
    assert.equal(s1?.outputBytes, 6);
    assert.deepEqual(s1?.cache, { status: "miss", reason: "no entry for key sha256:abc" });
    assert.deepEqual(s1?.layer?.contents?.top, [{ path: "/app/bin", bytes: 100, files: 1 }]);
    assert.ok((s2?.startMs ?? 0) > (s1?.startMs ?? 0), "timeline is ordered");
    // No verdict from the build: the cache was off, and the report says so.
    assert.deepEqual(s2?.cache, { status: "disabled", reason: "cache disabled" });
    assert.deepEqual(r.phases, [
      { phase: "run", ms: 40, count: 1 },
      { phase: "snapshot", ms: 15, count: 2 },
    ]);
    assert.deepEqual(r.outputs, [{ sink: "registry", target: "reg/app:v1", digest: D2 }]);
    assert.deepEqual(r.isolation, { backend: "chroot", reason: "auto-detected" });
    assert.equal(r.durationMs > 0, true);
  });

  test("a failed build marks the running step failed; missing layers are explained or read from a source", async () => {
    const c = createReportCollector({ kilnVersion: "0", startedAt: new Date(0), clock: () => 0 });
    const tar = await tarOf({ "x/y": 9 });
    c.reporter({ kind: "stage-start", stage: 0, base: "scratch" });
    c.reporter({ kind: "step-start", stage: 0, step: 1, total: 2, instruction: "COPY a /", location: "Dockerfile:2" });
    c.reporter({ kind: "step-done", stage: 0, step: 1, ms: 3, layer: { digest: D1, diffId: D1, size: 9 } });
    c.reporter({ kind: "step-start", stage: 0, step: 2, total: 2, instruction: "RUN false", location: "Dockerfile:3" });
    const r = await c.finish({ exitCode: 1, error: "boom" }, (d) =>
      Promise.resolve(d === D1 ? fakeLayer(D1, tar) : undefined),
    );
    assert.equal(r.status, "failed");
    assert.equal(r.error, "boom");
    assert.equal(r.stages[0]?.steps[1]?.status, "failed");
    assert.equal(r.stages[0]?.steps[0]?.layer?.contents?.fileBytes, 9);

    const c2 = createReportCollector({ kilnVersion: "0", startedAt: new Date(0), clock: () => 0 });
    c2.reporter({ kind: "step-start", stage: 0, step: 1, total: 1, instruction: "COPY a /", location: "D:1" });
    c2.reporter({ kind: "step-done", stage: 0, step: 1, ms: 3, layer: { digest: D1, diffId: D1, size: 9 } });
    const r2 = await c2.finish({ exitCode: 0 });
    assert.match(r2.stages[0]?.steps[0]?.layer?.contentsNote ?? "", /not available/);
  });

  test("the HTML page is self-contained, escapes text and embeds the JSON", async () => {
    const c = createReportCollector({ kilnVersion: "0", startedAt: new Date(0), clock: () => 5 });
    for (const e of events(fakeLayer(D1, await tarOf({ "a/b": 1 })))) c.reporter(e);
    c.reporter({
      kind: "step-start",
      stage: 0,
      step: 3,
      total: 3,
      instruction: "RUN echo '</script><img src=x>'",
      location: "Dockerfile:4",
    });
    const r = await c.finish({ exitCode: 0, digest: D2 });
    const html = renderReportHtml(r);
    assert.doesNotMatch(html, /<img/);
    assert.doesNotMatch(html, /(src|href)=["']?(https?:)?\/\//i, "no network references");
    assert.doesNotMatch(html, /<link\b/i);
    const m = /<script type="application\/json" id="kiln-report">([\s\S]*?)<\/script>/.exec(html);
    assert.ok(m);
    assert.deepEqual(JSON.parse(m[1] ?? ""), JSON.parse(JSON.stringify(r)));
    assert.match(html, /careful &lt;b&gt;/);
    assert.match(html, /class="cache disabled" title="cache disabled"/);
  });
});

describe("report files", () => {
  test("format follows the extension; written atomically", async () => {
    assert.equal(reportFormat("x/build.html"), "html");
    assert.equal(reportFormat("b.HTM"), "html");
    assert.equal(reportFormat("b.json"), "json");
    assert.equal(reportFormat("report"), "json");
    const dir = await mkdtemp(path.join(tmpdir(), "kiln-report-"));
    try {
      const c = createReportCollector({ kilnVersion: "0", startedAt: new Date(0), clock: () => 0 });
      const r = await c.finish({ exitCode: 0 });
      await writeReport(path.join(dir, "r.json"), r);
      assert.deepEqual(JSON.parse(await readFile(path.join(dir, "r.json"), "utf8")), r);
      await writeReport(path.join(dir, "r.html"), r);
      assert.match(await readFile(path.join(dir, "r.html"), "utf8"), /^<!DOCTYPE html>/);
      // A missing directory is created (as for the digest files); a path below a file cannot be written.
      await writeReport(path.join(dir, "missing", "r.json"), r);
      assert.deepEqual(JSON.parse(await readFile(path.join(dir, "missing", "r.json"), "utf8")), r);
      await assert.rejects(writeReport(path.join(dir, "r.html", "r.json"), r), /cannot write the build report/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("every string the report holds goes through the redactor: parts of secrets, URL user info", async () => {
    const TOKEN = "ghp_SUPERSECRETVALUE123";
    const c = createReportCollector({
      kilnVersion: "0",
      startedAt: new Date(0),
      clock: () => 0,
      redact: redactor([], { partial: [TOKEN] }),
    });
    c.reporter({
      kind: "stage-start",
      stage: 0,
      name: "b-SUPERSECRETVALUE",
      base: "reg.example/app:SUPERSECRETVALUE123",
    });
    c.reporter({
      kind: "step-start",
      stage: 0,
      step: 1,
      total: 2,
      instruction: "ADD --checksum=sha256:00 http://alice:S3CRETPW@127.0.0.1:8081/f.txt /f",
      location: "Dockerfile:2",
    });
    c.reporter({
      kind: "step-done",
      stage: 0,
      step: 1,
      ms: 1,
      cache: { status: "uncacheable", reason: "the text holds SECRETVALUE123" },
    });
    c.reporter({ kind: "step-start", stage: 0, step: 2, total: 2, instruction: "COPY ${T2}.txt /x", location: "D:3" });
    c.reporter({ kind: "warning", code: "W", message: "Dockerfile:3: /SUPERSECRETVALUE123.txt is empty" });
    const r = await c.finish({ exitCode: 1, error: '"/SUPERSECRETVALUE123.txt": not found in the build context' });
    const text = JSON.stringify(r);
    assert.doesNotMatch(text, /SUPERSEC|SECRETVALUE|CRETVALU|S3CRETPW|alice/);
    assert.equal(r.stages[0]?.base, "reg.example/app:***");
    assert.equal(r.stages[0]?.steps[0]?.instruction, "ADD --checksum=sha256:00 http://***@127.0.0.1:8081/f.txt /f");
    assert.equal(r.stages[0]?.steps[1]?.instruction, "COPY ${T2}.txt /x");
    assert.equal(r.warnings[0]?.message, "Dockerfile:3: /***.txt is empty");
    assert.equal(r.error, '"/***.txt": not found in the build context');
    assert.equal(r.schema, "kiln.build-report/v1");
  });

  test("human units", () => {
    assert.equal(formatBytes(512), "512 B");
    assert.equal(formatBytes(1536), "1.5 KiB");
    assert.equal(formatBytes(300 * 1024 * 1024), "300 MiB");
    assert.equal(formatMs(850), "850 ms");
    assert.equal(formatMs(12_400), "12.4 s");
    assert.equal(formatMs(185_000), "3m05s");
  });
});
