/**
 * Load and lifecycle of whole builds through `bin/kiln`: concurrent builds sharing one state directory,
 * and SIGTERM/SIGINT in the middle of a RUN, a pull and a push (kiln stops within 5 s, kills the step's
 * processes, pushes no manifest, leaves no mounts under its state dir).
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { request } from "node:http";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { type TestRegistry } from "../support/registry.js";
import { mountsUnder, removeDir, tempDir } from "../support/tmp.js";
import { startChaosProxy, type ChaosAction } from "./chaos-proxy.js";
import { Figures, runKilnMeasured } from "./support.js";
import { startBusyboxRegistry } from "../support/busybox-registry.js";

const figures = new Figures("load and lifecycle (whole builds through bin/kiln)");

function manifestStatus(host: string, repo: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      `http://${host}/v2/${repo}/manifests/v`,
      { method: "HEAD", headers: { accept: "application/vnd.oci.image.manifest.v1+json" } },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on("error", reject);
    req.end();
  });
}

/** Pids of processes whose command line contains `marker` (pgrep -f). */
function pgrep(marker: string): string[] {
  try {
    return execFileSync("pgrep", ["-f", marker], { encoding: "utf8" }).split("\n").filter(Boolean);
  } catch {
    return [];
  }
}

describe("load and lifecycle", { timeout: 600_000 }, () => {
  let reg: TestRegistry;
  let work: string;
  before(async () => {
    ({ reg } = await startBusyboxRegistry());
    work = await tempDir("lifecycle");
  });
  after(async () => {
    await figures.flush();
    await reg?.stop();
    if (work) await removeDir(work);
  });

  test("8 concurrent builds sharing one --kaniko-dir all succeed with valid images", async () => {
    const shared = path.join(work, "shared-state");
    const ctx = path.join(work, "ctx-conc");
    await mkdir(ctx, { recursive: true });
    await writeFile(
      path.join(ctx, "Dockerfile"),
      `FROM ${reg.host}/busybox:latest\nARG N\nRUN echo build-$N > /n && seq 1 5000 > /seq\nCOPY data.txt /data.txt\n`,
    );
    await writeFile(path.join(ctx, "data.txt"), "shared context\n");
    const runs = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        runKilnMeasured(
          [
            "build",
            "-f",
            path.join(ctx, "Dockerfile"),
            "-c",
            ctx,
            "--destination",
            `${reg.host}/conc:${i}`,
            "--insecure",
            "--insecure-pull",
            "--build-arg",
            `N=${i}`,
            "--kaniko-dir",
            shared,
            "--cache=true",
            "--cache-dir",
            path.join(work, "shared-cache"),
            "--cache-repo",
            `${reg.host}/conc-cache`,
          ],
          { timeoutMs: 300_000 },
        ),
      ),
    );
    let valid = 0;
    const problems: string[] = [];
    for (const [i, r] of runs.entries()) {
      if (r.code !== 0) {
        problems.push(`build ${i}: exit ${r.code}\n${r.stderr.slice(-1200)}`);
        continue;
      }
      try {
        execFileSync("skopeo", ["inspect", "--tls-verify=false", `docker://${reg.host}/conc:${i}`], { stdio: "pipe" });
        const layout = path.join(work, `conc-layout-${i}`);
        execFileSync(
          "skopeo",
          ["copy", "--src-tls-verify=false", `docker://${reg.host}/conc:${i}`, `oci:${layout}:img`],
          {
            stdio: "pipe",
          },
        );
        const bundle = path.join(work, `conc-bundle-${i}`);
        execFileSync("umoci", ["unpack", "--image", `${layout}:img`, bundle], { stdio: "pipe" });
        const n = await readFile(path.join(bundle, "rootfs", "n"), "utf8");
        if (n !== `build-${i}\n`) problems.push(`build ${i}: /n is ${JSON.stringify(n)}`);
        else valid++;
      } catch (e) {
        problems.push(`build ${i}: image check failed: ${String(e)}`);
      }
    }
    const rss = Math.max(...runs.map((r) => r.maxRssKb));
    figures.add("8 concurrent builds, shared state + cache", 8, valid, `max RSS ${(rss / 1024).toFixed(0)} MiB each`);
    assert.deepEqual(problems, []);
    assert.deepEqual(await mountsUnder(shared), [], "no mounts left under the shared state dir");
  });

  /** Starts a build, sends `sig` once `ready(output)` holds, and checks how kiln stopped. */
  async function interrupt(
    name: string,
    sig: "SIGTERM" | "SIGINT",
    dockerfile: string,
    pushHost: string,
    ready: (output: string) => boolean,
    marker?: string,
    twice = false,
  ): Promise<string[]> {
    const dir = await tempDir(`sig-${name}`);
    const ctx = path.join(dir, "ctx");
    await mkdir(ctx, { recursive: true });
    await writeFile(path.join(ctx, "Dockerfile"), dockerfile);
    const state = path.join(dir, "state");
    const repo = `sig-${name}-${sig.toLowerCase()}`;
    let sentAt = 0;
    const problems: string[] = [];
    const r = await runKilnMeasured(
      [
        "build",
        "-f",
        path.join(ctx, "Dockerfile"),
        "-c",
        ctx,
        "--destination",
        `${pushHost}/${repo}:v`,
        "--insecure",
        "--insecure-pull",
        "--kaniko-dir",
        state,
        "-v",
        "debug",
      ],
      {
        timeoutMs: 120_000,
        onSpawn: (pid, output) => {
          const poll = setInterval(() => {
            if (ready(output())) {
              clearInterval(poll);
              sentAt = Date.now();
              process.kill(pid, sig);
              // The second signal comes on the next poll, while the step still ignores the first.
              if (twice) setTimeout(() => process.kill(pid, sig), 50).unref();
            }
          }, 50);
          setTimeout(() => clearInterval(poll), 110_000).unref();
        },
      },
    );
    const took = Date.now() - sentAt;
    if (sentAt === 0) problems.push(`${name}/${sig}: never reached the interruption point:\n${r.stderr.slice(-800)}`);
    else {
      if (took > 5_000) problems.push(`${name}/${sig}: took ${took} ms to stop`);
      const want = sig === "SIGINT" ? 130 : 143;
      if (r.code !== want) problems.push(`${name}/${sig}: exit ${r.code}, want ${want}\n${r.stderr.slice(-800)}`);
    }
    if (twice && !r.stderr.includes(`second ${sig}: exiting now`))
      problems.push(`${name}/${sig}: no "second ${sig}" line:\n${r.stderr.slice(-800)}`);
    if (marker !== undefined) {
      // After a second signal kiln does not wait for the helper, which ends the step as kiln goes: give
      // it up to 1 s (its own escalation, the old behaviour, takes 2 s).
      const deadline = Date.now() + (twice ? 1000 : 0);
      let left = pgrep(marker);
      while (left.length > 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
        left = pgrep(marker);
      }
      if (left.length > 0) problems.push(`${name}/${sig}: step processes still running: ${left.join(" ")}`);
    }
    const m = await manifestStatus(reg.host, repo);
    if (m !== 404) problems.push(`${name}/${sig}: manifest HEAD answered ${m} (a manifest was pushed)`);
    const mounts = await mountsUnder(state);
    if (mounts.length > 0) problems.push(`${name}/${sig}: mounts left: ${mounts.join(", ")}`);
    figures.add(`${sig} during ${name}`, 1, problems.length === 0 ? 1 : 0, sentAt ? `stopped in ${took} ms` : "");
    await removeDir(dir).catch((e: unknown) => problems.push(String(e)));
    return problems;
  }

  for (const sig of ["SIGTERM", "SIGINT"] as const) {
    test(`${sig} during a RUN stops kiln within 5 s and kills the step's process tree`, async () => {
      // Unusual sleep lengths mark the step's processes (busybox sh has no `exec -a`).
      const n = sig === "SIGTERM" ? 31 : 32;
      const marker = `sleep 3${n}[12]`;
      const problems = await interrupt(
        "run",
        sig,
        `FROM ${reg.host}/busybox:latest\nRUN (sh -c 'sleep 3${n}1' &) ; sleep 3${n}2\n`,
        reg.host,
        () => pgrep(marker).length >= 2,
        marker,
      );
      assert.deepEqual(problems, []);
    });

    test(`a second ${sig} during a RUN that ignores the first exits at once and kills the step`, async () => {
      const n = sig === "SIGTERM" ? 33 : 34;
      const marker = `sleep 3${n}[12]`;
      const problems = await interrupt(
        "run-twice",
        sig,
        `FROM ${reg.host}/busybox:latest\nRUN trap '' TERM INT; (sh -c 'sleep 3${n}1' &) ; sleep 3${n}2\n`,
        reg.host,
        () => pgrep(marker).length >= 2,
        marker,
        true,
      );
      assert.deepEqual(problems, []);
    });

    test(`${sig} during a pull (slow link) stops kiln within 5 s`, async () => {
      const proxy = await startChaosProxy({ target: reg.host, bytesPerSecond: 8 * 1024 });
      let blobGets = 0;
      const slow = await startChaosProxy({
        target: proxy.host,
        decide: (method, p): ChaosAction => {
          if (method === "GET" && p.includes("/blobs/")) blobGets++;
          return "forward";
        },
      });
      try {
        const problems = await interrupt(
          "pull",
          sig,
          `FROM ${slow.host}/busybox:latest\nRUN true\n`,
          reg.host,
          () => blobGets > 0,
        );
        assert.deepEqual(problems, []);
      } finally {
        await slow.stop();
        await proxy.stop();
      }
    });

    test(`${sig} during a push stops kiln within 5 s and pushes no manifest`, async () => {
      let stalled = 0;
      const proxy = await startChaosProxy({
        target: reg.host,
        decide: async (method, p): Promise<ChaosAction> => {
          if ((method === "PUT" || method === "PATCH") && p.includes("/blobs/uploads/")) {
            stalled++;
            await new Promise((r) => setTimeout(r, 60_000).unref());
          }
          return "forward";
        },
      });
      try {
        const problems = await interrupt(
          "push",
          sig,
          `FROM ${reg.host}/busybox:latest\nRUN echo x > /x\n`,
          proxy.host,
          () => stalled > 0,
        );
        assert.deepEqual(problems, []);
      } finally {
        await proxy.stop();
      }
    });
  }
});
