import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { chromium, type Browser } from "playwright-core";
import type { BuildReport } from "../../src/cli/report/index.js";
import { runKiln } from "../support/kiln-cli.js";
import { type TestRegistry } from "../support/registry.js";
import { removeDir, repoRoot, tempDir } from "../support/tmp.js";
import { writeTree } from "../integration/helpers.js";
import { startBusyboxRegistry } from "../support/busybox-registry.js";

const CHROMIUM = "/usr/bin/chromium";
// Flags for a browser that touches nothing beyond the page it is given.
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

// A real build (RUN, COPY, metadata) pushed to the real registry and written to an OCI layout, with
// --report: the JSON report is checked field by field and the HTML page is opened in headless Chromium.
describe("build report (--report)", () => {
  let reg: TestRegistry;
  let base: string;
  let work: string;
  let ctx: string;
  before(async () => {
    ({ reg, base } = await startBusyboxRegistry());
    work = await tempDir("report");
    ctx = path.join(work, "ctx");
    await writeTree(ctx, {
      Dockerfile: [
        "ARG BASE",
        "FROM ${BASE} AS app",
        "ENV APP=/srv/app",
        "RUN mkdir -p /opt/data && dd if=/dev/zero of=/opt/data/blob bs=1024 count=3072 2>/dev/null && echo built",
        "COPY files/ /srv/app/",
        "WORKDIR /srv/app",
        'CMD ["/bin/sh"]',
        "",
      ].join("\n"),
      "files/a.txt": "a\n".repeat(5000),
      "files/b.txt": "b\n",
      "Dockerfile.fail": "ARG BASE\nFROM ${BASE}\nRUN echo about to fail && exit 3\n",
    });
  });
  after(async () => {
    await reg?.stop();
    if (work) await removeDir(work);
  });

  const buildWith = (report: string, dockerfile = "Dockerfile", extra: string[] = []) =>
    runKiln([
      "build",
      "--dockerfile",
      path.join(ctx, dockerfile),
      "--context",
      ctx,
      "--destination",
      `${reg.host}/app:v1`,
      "--insecure",
      "--insecure-pull",
      "--build-arg",
      `BASE=${base}`,
      `--report=${report}`,
      ...extra,
    ]);

  test("JSON: stages, steps with timing, cache verdicts, layers and their biggest paths, digests, phases", async () => {
    const file = path.join(work, "build.json");
    const r = await buildWith(file, "Dockerfile", ["--oci-layout-path", path.join(work, "oci")]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /Wrote build report /);
    const rep = JSON.parse(await readFile(file, "utf8")) as BuildReport;
    assert.equal(rep.schema, "kiln.build-report/v1");
    assert.equal(rep.status, "succeeded");
    assert.match(rep.digest ?? "", /^sha256:[0-9a-f]{64}$/);
    assert.equal(rep.stages.length, 1);
    const st = rep.stages[0]!;
    assert.equal(st.name, "app");
    assert.match(st.baseDigest ?? "", /^sha256:/);
    assert.deepEqual(
      st.steps.map((s) => s.instruction.split(" ")[0]),
      ["ENV", "RUN", "COPY", "WORKDIR", "CMD"],
    );
    let last = -1;
    for (const s of st.steps) {
      assert.equal(s.status, "done");
      assert.ok(typeof s.ms === "number" && s.ms >= 0);
      assert.ok(s.startMs >= last, "steps are in timeline order");
      last = s.startMs;
      assert.deepEqual(s.cache, { status: "disabled", reason: "cache disabled" });
    }
    const run = st.steps[1]!;
    assert.ok(run.outputBytes >= "built\n".length);
    assert.ok(run.layer, "RUN made a layer");
    assert.equal(run.layer.contents?.top[0]?.path, "/opt/data/blob");
    assert.equal(run.layer.contents?.top[0]?.bytes, 3072 * 1024);
    const copy = st.steps[2]!;
    assert.deepEqual(
      copy.layer?.contents?.top.map((c) => c.path),
      ["/srv/app/a.txt", "/srv/app/b.txt"],
    );
    const phases = new Set(rep.phases.map((p) => p.phase));
    for (const p of ["pull", "run", "snapshot", "push"]) assert.ok(phases.has(p as never), `phase ${p}`);
    const pushed = rep.outputs.find((o) => o.sink === "registry");
    assert.equal(pushed?.digest, rep.digest);
    assert.ok(rep.outputs.some((o) => o.sink === "oci-layout"));
  });

  test("a failing RUN still writes the report, with the failed step and its exit code", async () => {
    const file = path.join(work, "fail.json");
    const r = await buildWith(file, "Dockerfile.fail");
    assert.equal(r.code, 3, r.stderr);
    const rep = JSON.parse(await readFile(file, "utf8")) as BuildReport;
    assert.equal(rep.status, "failed");
    assert.equal(rep.exitCode, 3);
    assert.match(rep.error ?? "", /exit|3/);
    const steps = rep.stages[0]?.steps ?? [];
    assert.equal(steps[steps.length - 1]?.status, "failed");
  });

  test("HTML: self-contained page that headless Chromium renders with the timeline, steps, phases and layers", async (t) => {
    if (!existsSync(CHROMIUM)) {
      t.skip(`${CHROMIUM} is missing (Debian package chromium; scripts/install-deps.sh installs it)`);
      return;
    }
    const file = path.join(work, "build.html");
    const r = await buildWith(file, "Dockerfile", ["--oci-layout-path", path.join(work, "oci-html")]);
    assert.equal(r.code, 0, r.stderr);
    let browser: Browser | undefined;
    try {
      browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
      const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
      const requests: string[] = [];
      page.on("request", (req) => requests.push(req.url()));
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(e.message));
      await page.goto(`file://${file}`);
      assert.deepEqual(
        requests.filter((u) => !u.startsWith("file://")),
        [],
        "the page loads nothing from the network",
      );
      assert.deepEqual(errors, []);
      assert.equal(await page.locator("h1").innerText(), "kiln build report");
      assert.equal(await page.locator(".status").innerText(), "succeeded");
      // Timeline: one visible bar per step, each with a positive width.
      const bars = page.locator("#timeline .tl-bar");
      assert.equal(await bars.count(), 5);
      for (const box of await Promise.all((await bars.all()).map((b) => b.boundingBox()))) {
        assert.ok(box && box.width >= 1 && box.height > 0);
      }
      const steps = await page.locator("#steps").innerText();
      assert.match(steps, /RUN mkdir -p \/opt\/data/);
      assert.match(steps, /disabled/);
      assert.equal(await page.locator("#steps .cache.disabled").count(), 5);
      assert.match(await page.locator("#phases").innerText(), /snapshot/);
      const layers = await page.locator("#layers").innerText();
      assert.match(layers, /\/opt\/data\/blob/);
      assert.match(layers, /3\.0 MiB/);
      const summary = await page.locator(".summary").innerText();
      const rep = JSON.parse((await page.locator("#kiln-report").textContent()) ?? "{}") as BuildReport;
      assert.ok(rep.digest && summary.includes(rep.digest));
      // Clicking a timeline bar selects its step row (the page's only script).
      await page.locator("#timeline .tl-row").nth(1).click();
      assert.equal(await page.locator("tr.sel").count(), 1);
      if (process.env.KILN_UPDATE_DOCS === "1") {
        await page.screenshot({ path: path.join(repoRoot(), "docs", "report.png"), fullPage: true });
      }
    } finally {
      await browser?.close();
    }
  });
});
