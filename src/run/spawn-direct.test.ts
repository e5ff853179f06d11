import { spawn, spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { describe, it } from "node:test";
import * as assert from "node:assert/strict";
import { hasCode } from "../common/errors.js";
import { runDirect } from "./spawn-direct.js";

const env = ["PATH=/usr/bin:/bin"];
const me = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };

describe("in-place without the helper (runDirect)", () => {
  it("runs in cwd, propagates the exit code and kills leftovers", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "kiln-direct-"));
    try {
      let out = "";
      const r = await runDirect(
        { argv: ["sh", "-c", "pwd; sleep 4244000 & exit 42"], env, cwd: dir, ...me },
        { stdout: (c) => (out += c.toString()), stderr: () => undefined },
      );
      assert.equal(r.exitCode, 42);
      assert.equal(out, `${dir}\n`);
      assert.notEqual(spawnSync("pgrep", ["-f", "sleep 4244000"]).status, 0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("a missing binary is RUN_SETUP_FAILED", async () => {
    const io = { stdout: () => undefined, stderr: () => undefined };
    await assert.rejects(runDirect({ argv: ["/no/such/tool"], env, cwd: "/", ...me }, io), (e: unknown) => {
      assert.ok(hasCode(e, "RUN_SETUP_FAILED"));
      assert.match(e.message, /\/no\/such\/tool: no such file or directory/);
      return true;
    });
  });

  it("abort ends the command's group with a signal", async () => {
    const ac = new AbortController();
    const r = await runDirect(
      { argv: ["sh", "-c", "echo ready; sleep 4245000"], env, cwd: "/", ...me },
      { stdout: () => ac.abort(), stderr: () => undefined },
      ac.signal,
    );
    assert.equal(r.signal, "SIGTERM");
    assert.equal(r.exitCode, 143);
  });

  it("kiln exiting mid-step (a second Ctrl-C) kills the step's group", async () => {
    // A separate Node process runs a step that ignores SIGTERM, then calls process.exit as main.ts does.
    const module = new URL("./spawn-direct.js", import.meta.url).href;
    const script = [
      `const { runDirect } = await import(${JSON.stringify(module)});`,
      `const io = { stdout: () => process.exit(0), stderr: () => undefined };`,
      `await runDirect({ argv: ["sh", "-c", "trap '' TERM; echo ready; sleep 4246000"], env: ${JSON.stringify(env)}, cwd: "/", uid: ${me.uid}, gid: ${me.gid} }, io);`,
    ].join("\n");
    const child = spawn(process.execPath, [...process.execArgv, "--input-type=module", "-e", script], {
      stdio: ["ignore", "ignore", "inherit"],
    });
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    assert.equal(code, 0);
    // SIGKILL is sent as the child exits; the sleep is gone once the kernel has run it (within 2 s on a
    // loaded machine; without the exit listener it would keep running).
    const deadline = Date.now() + 2000;
    while (spawnSync("pgrep", ["-f", "^sleep 4246000"]).status === 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    assert.notEqual(spawnSync("pgrep", ["-f", "^sleep 4246000"]).status, 0, "the step's sleep is still running");
  });
});
