/**
 * The peers' environment: a dockerd started by hand (test-environment.md §5 config) and the
 * containers.conf / registries.conf / policy.json buildah needs on this machine.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";

/** A running dockerd. */
export interface Dockerd {
  /** `unix:///…/docker.sock` for DOCKER_HOST. */
  host: string;
  /** Pids of dockerd and its containerd (for CPU/RSS accounting). */
  pids(): number[];
  stop(): Promise<void>;
}

/** The Debian docker client (a newer client without the classic builder may come first in PATH). */
export const DOCKER_CLI = "/usr/bin/docker";

function childPids(pid: number): number[] {
  try {
    const text = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim();
    return text === "" ? [] : text.split(/\s+/).map(Number);
  } catch {
    return [];
  }
}

function commOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return "";
  }
}

/** Starts dockerd with data under `dir`, trusting `registryHost` as insecure; resolves when it answers. */
export async function startDockerd(dir: string, registryHost: string): Promise<Dockerd> {
  mkdirSync(dir, { recursive: true });
  const sock = path.join(dir, "docker.sock");
  const config = {
    "data-root": path.join(dir, "data"),
    "exec-root": path.join(dir, "exec"),
    pidfile: path.join(dir, "docker.pid"),
    hosts: [`unix://${sock}`],
    "storage-driver": "overlay2",
    iptables: false,
    "ip-forward": false,
    "ip-masq": false,
    bridge: "none",
    "insecure-registries": [registryHost],
    "default-ulimits": { nofile: { Name: "nofile", Hard: 20000, Soft: 20000 } },
  };
  const cfg = path.join(dir, "daemon.json");
  writeFileSync(cfg, JSON.stringify(config, null, 2));
  const log = path.join(dir, "dockerd.log");
  const fd = openSync(log, "a");
  const proc: ChildProcess = spawn("dockerd", ["--config-file", cfg], { stdio: ["ignore", fd, fd], detached: false });
  const host = `unix://${sock}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`dockerd exited (${proc.exitCode}); see ${log}`);
    if (existsSync(sock)) {
      const ok = await new Promise<boolean>((resolve) => {
        const p = spawn(DOCKER_CLI, ["version"], { env: { ...process.env, DOCKER_HOST: host }, stdio: "ignore" });
        p.on("close", (c) => resolve(c === 0));
      });
      if (ok) break;
    }
    if (Date.now() > deadline) throw new Error(`dockerd did not answer within 60 s; see ${log}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  const pid = proc.pid as number;
  return {
    host,
    pids: () => [pid, ...childPids(pid).filter((c) => commOf(c).startsWith("containerd"))],
    stop: () =>
      new Promise<void>((resolve) => {
        if (proc.exitCode !== null) return resolve();
        proc.on("close", () => resolve());
        proc.kill("SIGTERM");
      }),
  };
}

/** Environment for buildah (containers.conf etc. written under `dir`). */
export function buildahEnv(dir: string, registryHost: string): NodeJS.ProcessEnv {
  mkdirSync(dir, { recursive: true });
  const conf = path.join(dir, "containers.conf");
  writeFileSync(
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
  const reg = path.join(dir, "registries.conf");
  writeFileSync(reg, `[[registry]]\nlocation = "${registryHost}"\ninsecure = true\n`);
  const storage = path.join(dir, "storage.conf");
  writeFileSync(storage, `[storage]\ndriver = "vfs"\n`);
  const policy = path.join(dir, "policy.json");
  writeFileSync(policy, JSON.stringify({ default: [{ type: "insecureAcceptAnything" }] }));
  return {
    ...process.env,
    CONTAINERS_CONF: conf,
    CONTAINERS_REGISTRIES_CONF: reg,
    CONTAINERS_STORAGE_CONF: storage,
    BUILDAH_ISOLATION: "chroot",
    BENCH_POLICY: policy,
  };
}
