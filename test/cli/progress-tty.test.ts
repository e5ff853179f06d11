import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import path from "node:path";
import { startBusyboxRegistry } from "../support/busybox-registry.js";
import { startFaultProxy, type FaultProxy } from "../support/fault-proxy.js";
import { runKiln } from "../support/kiln-cli.js";
import { type TestRegistry } from "../support/registry.js";
import { removeDir, repoRoot, tempDir } from "../support/tmp.js";
import { writeTree } from "../integration/helpers.js";

const ESC = "\x1b";
const CLEAR = `\r${ESC}[2K`;

/** Runs bin/kiln on a pseudo-terminal of `cols` columns (util-linux `script`); resolves with everything it printed. */
function runOnTty(
  args: string[],
  cols: number,
  env: Record<string, string | undefined>,
): Promise<{ code: number; output: string }> {
  const quote = (s: string): string => `'${s.replaceAll("'", "'\\''")}'`;
  const cmd = `stty cols ${cols}; exec ${[process.execPath, path.join(repoRoot(), "bin", "kiln"), ...args].map(quote).join(" ")}`;
  const childEnv: NodeJS.ProcessEnv = { ...process.env, TERM: "xterm" };
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete childEnv[k];
    else childEnv[k] = v;
  }
  return new Promise((resolve, reject) => {
    const child = spawn("script", ["-q", "-e", "-c", cmd, "/dev/null"], {
      env: childEnv,
      stdio: ["ignore", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => out.push(b));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? -1, output: Buffer.concat(out).toString("utf8") }));
  });
}

/** The status lines drawn: what follows a clear sequence without ending the line. */
function statusLines(output: string): string[] {
  return output
    .split(CLEAR)
    .slice(1)
    .filter((s) => !s.includes("\n")) // log lines written after a clear end in a newline; the status line never does
    .map((s) => s.replace(/\r$/, ""))
    .filter((s) => s !== "");
}

describe("progress on a terminal and in CI logs", () => {
  let reg: TestRegistry;
  let slow: FaultProxy;
  let base: string;
  let work: string;
  let ctx: string;
  before(async () => {
    ({ reg } = await startBusyboxRegistry());
    // The base image comes over a slow link (512 KiB/s), so its pull shows progress for a while.
    slow = await startFaultProxy({ target: reg.host, bytesPerSecond: 512 * 1024 });
    base = `${slow.host}/busybox:latest`;
    work = await tempDir("progress-tty");
    ctx = path.join(work, "ctx");
    await writeTree(ctx, { Dockerfile: "ARG BASE\nFROM ${BASE}\nRUN sleep 1\n" });
  });
  after(async () => {
    await slow?.stop();
    await reg?.stop();
    if (work) await removeDir(work);
  });

  const args = (name: string, extra: string[] = []): string[] => [
    "build",
    "--context",
    ctx,
    "--build-arg",
    `BASE=${base}`,
    "--insecure",
    "--insecure-pull",
    "--destination",
    `${reg.host}/progress:${name}`,
    "--kaniko-dir",
    path.join(work, `state-${name}`),
    ...extra,
  ];

  test("a TTY shows a live line with the pull's bytes and rate and the RUN step's elapsed time, within the width", async () => {
    const r = await runOnTty(args("tty"), 72, { CI: undefined, NO_COLOR: "1" });
    assert.equal(r.code, 0, r.output);
    const lines = statusLines(r.output);
    assert.ok(
      // The pull's segment, wherever it stands in the line (the RUN step that waits for it comes first).
      lines.some((l) => /(^| \| )pull (\d+ blobs )?[\d.]+ [KM]iB\/[\d.]+ [KM]iB [\d.]+ [KM]?i?B\/s/.test(l)),
      `a pull progress line in ${JSON.stringify(lines)}`,
    );
    assert.ok(
      lines.some((l) => /^RUN sleep 1 \d/.test(l)),
      `an elapsed-time line for RUN in ${JSON.stringify(lines)}`,
    );
    for (const l of lines) assert.ok([...l].length <= 71, `fits 72 columns: ${JSON.stringify(l)}`);
    // kaniko's INFO lines are still there, and NO_COLOR keeps them plain.
    assert.match(r.output, /INFO\[\d{4}\] Pushed /);
    assert.ok(!r.output.includes(`${ESC}[3`), "no colour codes");
  });

  test("--log-format=json on a TTY draws nothing: every line is JSON", async () => {
    const r = await runOnTty(args("json", ["--log-format=json"]), 100, { CI: undefined });
    assert.equal(r.code, 0, r.output);
    assert.ok(!r.output.includes(CLEAR), JSON.stringify(r.output.slice(0, 400)));
    for (const line of r.output.split(/\r?\n/).filter((l) => l.trim() !== "")) {
      assert.doesNotThrow(() => JSON.parse(line), line);
    }
  });

  test("without a TTY (CI logs) transfers become plain lines", async () => {
    const r = await runKiln(args("plain", ["--verbosity=debug"]), { env: { CI: undefined } });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!r.stderr.includes("\x1b[2K"));
    assert.match(r.stderr, /pull sha256:[0-9a-f]{12} from 127\.0\.0\.1:\d+\/busybox: [\d.]+ [KM]iB in [\d.]+ m?s/);
    assert.match(r.stderr, /push sha256:[0-9a-f]{12} to 127\.0\.0\.1:\d+\/progress: /);
    // The RUN needs the base extracted: that is a task of its own, with its size and rate.
    assert.match(r.stderr, /extract layer sha256:[0-9a-f]{12} of stage 0: [\d.]+ [KM]iB in [\d.]+ m?s/);
  });
});
