import { execFile, spawn } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";

const exec = promisify(execFile);

/** A podman set up for this machine (test-environment.md §5): runc, cgroupfs, file events, nofile 20000. */
export interface Podman {
  env: Record<string, string>;
  run(
    args: string[],
    opts?: { input?: string; timeoutMs?: number },
  ): Promise<{ code: number; stdout: string; stderr: string }>;
}

/** Writes containers.conf / storage.conf / registries.conf under `dir` and returns a runner using them. */
export async function setupPodman(dir: string, insecureRegistries: string[]): Promise<Podman> {
  await mkdir(dir, { recursive: true });
  const conf = path.join(dir, "containers.conf");
  const storage = path.join(dir, "storage.conf");
  const registries = path.join(dir, "registries.conf");
  await writeFile(
    conf,
    [
      "[containers]",
      'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]',
      "[engine]",
      'cgroup_manager = "cgroupfs"',
      'events_logger = "file"',
      'runtime = "runc"',
      "",
    ].join("\n"),
  );
  await writeFile(
    storage,
    [
      "[storage]",
      'driver = "vfs"',
      `graphroot = "${path.join(dir, "graph")}"`,
      `runroot = "${path.join(dir, "run")}"`,
      "",
    ].join("\n"),
  );
  await writeFile(
    registries,
    insecureRegistries.map((r) => `[[registry]]\nlocation = "${r}"\ninsecure = true\n`).join("\n"),
  );
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    CONTAINERS_CONF: conf,
    CONTAINERS_STORAGE_CONF: storage,
    CONTAINERS_REGISTRIES_CONF: registries,
  };
  return {
    env,
    run(args, opts = {}) {
      return new Promise((resolve, reject) => {
        const child = spawn("podman", args, { env, stdio: ["pipe", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
        child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
        const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 240_000);
        child.on("error", reject);
        child.on("close", (code) => {
          clearTimeout(timer);
          resolve({ code: code ?? 128, stdout, stderr });
        });
        child.stdin.end(opts.input ?? "");
      });
    },
  };
}

/** True when podman and runc are installed. */
export async function podmanAvailable(): Promise<boolean> {
  try {
    await exec("podman", ["--version"]);
    await exec("runc", ["--version"]);
    return true;
  } catch {
    return false;
  }
}
