/**
 * Starts a real Docker daemon (Debian's docker.io 20.10) for differential tests, per
 * test-environment.md §5: everything (data root, exec root, pid file, unix socket) under one temp dir, no
 * bridge/iptables, overlay2 storage, runc, the default nofile ulimit this VM allows. Registries on 127.0.0.1
 * are insecure by default in dockerd (127.0.0.0/8), so a test registry on a random loopback port works
 * without extra configuration. Use the Debian client `/usr/bin/docker` (a newer client without buildx may
 * come first in PATH); BuildKit builds need `--network host`.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { existsSync, openSync, closeSync, readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { promisify } from "node:util";
import { removeDir, tempDir, mountsUnder } from "./tmp.js";

const execFileAsync = promisify(execFile);

/** The Debian docker client (never whatever `docker` comes first in PATH). */
export const DOCKER_CLIENT = "/usr/bin/docker";
const DOCKERD = "/usr/sbin/dockerd";

/** A running dockerd. */
export interface TestDockerd {
  /** `unix:///…/docker.sock` */
  host: string;
  /** The temp directory holding config, data root, exec root and logs. */
  dir: string;
  /** Runs `/usr/bin/docker ARGS` against this daemon; never rejects on a non-zero exit. */
  docker(args: string[], opts?: { env?: Record<string, string>; timeoutMs?: number }): Promise<DockerResult>;
  stop(): Promise<void>;
}

/** Outcome of one docker client run. */
export interface DockerResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** True when this machine can run the reference daemon (dockerd, containerd, runc and the Debian client). */
export function dockerdAvailable(): boolean {
  return [DOCKERD, DOCKER_CLIENT, "/usr/bin/containerd", "/usr/sbin/runc"].every((p) => existsSync(p));
}

/**
 * Starts dockerd with its state in a fresh temp dir and waits (up to 60 s) until `docker version` answers.
 * The daemon's own output goes to `<dir>/dockerd.log`.
 */
export async function startDockerd(): Promise<TestDockerd> {
  const dir = await tempDir("dockerd");
  const sock = path.join(dir, "docker.sock");
  const host = `unix://${sock}`;
  await mkdir(path.join(dir, "data"), { recursive: true });
  await mkdir(path.join(dir, "exec"), { recursive: true });
  const config = {
    "data-root": path.join(dir, "data"),
    "exec-root": path.join(dir, "exec"),
    pidfile: path.join(dir, "dockerd.pid"),
    hosts: [host],
    "storage-driver": "overlay2",
    iptables: false,
    "ip-forward": false,
    "ip-masq": false,
    bridge: "none",
    "default-runtime": "runc",
    "default-ulimits": { nofile: { Name: "nofile", Hard: 20000, Soft: 20000 } },
    features: { buildkit: true },
  };
  const configFile = path.join(dir, "daemon.json");
  await writeFile(configFile, JSON.stringify(config, null, 2));
  const logFd = openSync(path.join(dir, "dockerd.log"), "a");
  let child: ChildProcess;
  try {
    // containerd is started by dockerd itself (its state lives under exec-root/data-root).
    child = spawn(DOCKERD, ["--config-file", configFile], { stdio: ["ignore", logFd, logFd], detached: false });
  } finally {
    closeSync(logFd);
  }
  let exited = false;
  child.on("exit", () => {
    exited = true;
  });

  const docker = async (
    args: string[],
    opts: { env?: Record<string, string>; timeoutMs?: number } = {},
  ): Promise<DockerResult> => {
    try {
      const { stdout, stderr } = await execFileAsync(DOCKER_CLIENT, ["--host", host, ...args], {
        env: { ...process.env, DOCKER_CONFIG: path.join(dir, "client"), ...opts.env },
        maxBuffer: 256 * 1024 * 1024,
        timeout: opts.timeoutMs ?? 300_000,
      });
      return { code: 0, stdout, stderr };
    } catch (e) {
      const err = e as { code?: unknown; stdout?: unknown; stderr?: unknown };
      return {
        code: typeof err.code === "number" ? err.code : 1,
        stdout: typeof err.stdout === "string" ? err.stdout : "",
        stderr: typeof err.stderr === "string" ? err.stderr : String(e),
      };
    }
  };

  const stop = async (): Promise<void> => {
    if (!exited) {
      child.kill("SIGTERM");
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          child.kill("SIGKILL");
          resolve();
        }, 20_000);
        child.once("exit", () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    // dockerd unmounts its overlays on a clean shutdown; detach whatever a crash left behind.
    for (const m of await mountsUnder(dir)) {
      await execFileAsync("umount", ["-l", m]).catch(() => undefined);
    }
    await removeDir(dir);
  };

  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exited) {
      const log = readFileSync(path.join(dir, "dockerd.log"), "utf8");
      await removeDir(dir).catch(() => undefined);
      throw new Error(`dockerd exited during start-up; its log ends:\n${log.slice(-2000)}`);
    }
    if (existsSync(sock)) {
      const r = await docker(["version", "--format", "{{.Server.Version}}"], { timeoutMs: 10_000 });
      if (r.code === 0) break;
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error("dockerd did not answer within 60 s");
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { host, dir, docker, stop };
}
