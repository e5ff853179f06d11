/**
 * A docker-registry that can be stopped and started again on the same port with the same storage and the
 * same HTTP secret (so upload sessions a client holds survive the restart, as they do on a real registry
 * behind a load balancer). For the "registry restart in the middle of a push" scenario.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { request } from "node:http";
import { createServer, type AddressInfo } from "node:net";
import * as path from "node:path";

/** A registry process that can be restarted. */
export interface RestartableRegistry {
  host: string;
  /** How many times it was restarted. */
  restarts: number;
  /** Stops the process (SIGTERM) and starts it again; resolves once `/v2/` answers. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

function ping(host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(`http://${host}/v2/`, { timeout: 1000 }, (res) => {
      res.resume();
      resolve(true);
    });
    req.on("error", () => resolve(false));
    req.on("timeout", () => {
      req.destroy();
      resolve(false);
    });
    req.end();
  });
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once("exit", () => resolve());
  });
}

/** Starts `docker-registry` with storage under `dir` (which the caller owns and removes). */
export async function startRestartableRegistry(dir: string): Promise<RestartableRegistry> {
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const cfg = path.join(dir, "config.yml");
  await writeFile(
    cfg,
    [
      "version: 0.1",
      "log: { level: error, accesslog: { disabled: true } }",
      "storage:",
      `  filesystem: { rootdirectory: ${JSON.stringify(path.join(dir, "storage"))} }`,
      "  maintenance: { uploadpurging: { enabled: false } }",
      "http:",
      `  addr: ${host}`,
      `  secret: ${randomBytes(16).toString("hex")}`,
      "",
    ].join("\n"),
  );
  let child: ChildProcess | undefined;
  const start = async (): Promise<void> => {
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      child = spawn("/usr/bin/docker-registry", ["serve", cfg], { stdio: "ignore" });
      while (Date.now() < deadline && child.exitCode === null) {
        if (await ping(host)) return;
        await new Promise((r) => setTimeout(r, 25));
      }
      // The port may still be held by the old process's socket for a moment: try again.
    }
    throw new Error(`docker-registry did not come back on ${host}`);
  };
  await start();
  const reg: RestartableRegistry = {
    host,
    restarts: 0,
    restart: async () => {
      if (child) {
        child.kill("SIGTERM");
        await exited(child);
      }
      await start();
      reg.restarts++;
    },
    stop: async () => {
      if (child) {
        child.kill("SIGTERM");
        await exited(child);
      }
    },
  };
  return reg;
}
