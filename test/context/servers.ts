/**
 * Loopback servers for build-context tests: a git smart-HTTP server (`git http-backend` behind node:http),
 * an HTTPS file server with redirects, a tiny GCS JSON-API server, s3rver and azurite.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { createReadStream } from "node:fs";
import { mkdir, readFile, stat, writeFile } from "node:fs/promises";
import * as http from "node:http";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import { repoRoot } from "../support/tmp.js";

/** A started server: its base URL and how to stop it. */
export interface TestServer {
  url: string;
  port: number;
  stop(): Promise<void>;
}

function listen(server: http.Server | https.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port)));
}

function closer(server: http.Server | https.Server): () => Promise<void> {
  return () =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
}

/** Runs a command, throwing with its stderr on failure; returns stdout. */
export function run(cmd: string, args: string[], cwd?: string): string {
  return execFileSync(cmd, args, {
    cwd,
    encoding: "utf8",
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: "t",
      GIT_AUTHOR_EMAIL: "t@example.com",
      GIT_COMMITTER_NAME: "t",
      GIT_COMMITTER_EMAIL: "t@example.com",
      GIT_CONFIG_NOSYSTEM: "1",
      HOME: cwd ?? process.env.HOME ?? "/",
    },
  });
}

/** A self-signed certificate for 127.0.0.1 (also usable as its own CA via NODE_EXTRA_CA_CERTS). */
export function selfSignedCert(dir: string): { cert: string; key: string; certFile: string } {
  const key = path.join(dir, "tls.key");
  const certFile = path.join(dir, "tls.pem");
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      key,
      "-out",
      certFile,
      "-days",
      "2",
      "-subj",
      "/CN=127.0.0.1",
      "-addext",
      "subjectAltName=IP:127.0.0.1",
      "-addext",
      "basicConstraints=critical,CA:TRUE",
    ],
    { stdio: "ignore" },
  );
  return {
    cert: execFileSync("cat", [certFile], { encoding: "utf8" }),
    key: execFileSync("cat", [key], { encoding: "utf8" }),
    certFile,
  };
}

/**
 * Serves `git http-backend` (smart HTTP) for the bare repositories under `projectRoot`. With `auth`, every
 * request must carry that Basic authorization, else 401. With `tlsDir`, serves HTTPS with a self-signed
 * certificate written there (not trusted by anyone: for insecure-skip-tls tests).
 */
export async function startGitServer(
  projectRoot: string,
  auth?: { user: string; pass: string },
  tlsDir?: string,
): Promise<TestServer> {
  const backend = path.join(execFileSync("git", ["--exec-path"], { encoding: "utf8" }).trim(), "git-http-backend");
  const expected = auth ? `Basic ${Buffer.from(`${auth.user}:${auth.pass}`).toString("base64")}` : undefined;
  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    if (expected && req.headers.authorization !== expected) {
      res.writeHead(401, { "WWW-Authenticate": 'Basic realm="git"' });
      res.end();
      return;
    }
    const u = new URL(req.url ?? "/", "http://x");
    const child = spawn(backend, [], {
      env: {
        GIT_PROJECT_ROOT: projectRoot,
        GIT_HTTP_EXPORT_ALL: "1",
        REQUEST_METHOD: req.method ?? "GET",
        PATH_INFO: decodeURIComponent(u.pathname),
        QUERY_STRING: u.search.slice(1),
        CONTENT_TYPE: req.headers["content-type"] ?? "",
        ...(req.headers["content-length"] ? { CONTENT_LENGTH: req.headers["content-length"] } : {}),
        ...(req.headers["git-protocol"] ? { GIT_PROTOCOL: String(req.headers["git-protocol"]) } : {}),
        REMOTE_ADDR: "127.0.0.1",
        HTTP_CONTENT_ENCODING: req.headers["content-encoding"] ?? "",
      },
      stdio: ["pipe", "pipe", "ignore"],
    });
    req.pipe(child.stdin);
    let head = Buffer.alloc(0);
    let headersDone = false;
    child.stdout.on("data", (chunk: Buffer) => {
      if (headersDone) {
        res.write(chunk);
        return;
      }
      head = Buffer.concat([head, chunk]);
      const sep = head.indexOf("\r\n\r\n");
      if (sep < 0) return;
      headersDone = true;
      let status = 200;
      const headers: Record<string, string> = {};
      for (const line of head.subarray(0, sep).toString("latin1").split("\r\n")) {
        const i = line.indexOf(":");
        if (i < 0) continue;
        const k = line.slice(0, i).trim();
        const v = line.slice(i + 1).trim();
        if (k.toLowerCase() === "status") status = Number(v.split(" ")[0]);
        else headers[k] = v;
      }
      res.writeHead(status, headers);
      res.write(head.subarray(sep + 4));
    });
    child.stdout.on("end", () => res.end());
  };
  const tls = tlsDir ? selfSignedCert(tlsDir) : undefined;
  const server = tls ? https.createServer({ cert: tls.cert, key: tls.key }, handler) : http.createServer(handler);
  const port = await listen(server);
  return { url: `${tls ? "https" : "http"}://127.0.0.1:${port}`, port, stop: closer(server) };
}

/**
 * An HTTPS file server over `root` (self-signed cert in `tlsDir`): `/redirect/<n>/<path>` answers 302
 * n times before the file, missing files are 404. Returns the cert file for NODE_EXTRA_CA_CERTS.
 */
export async function startHttpsFileServer(root: string, tlsDir: string): Promise<TestServer & { certFile: string }> {
  const tls = selfSignedCert(tlsDir);
  const server = https.createServer({ cert: tls.cert, key: tls.key }, (req, res) => {
    const u = new URL(req.url ?? "/", "https://x");
    const m = /^\/redirect\/(\d+)(\/.*)$/.exec(u.pathname);
    if (m) {
      const n = Number(m[1]);
      res.writeHead(302, { Location: n > 1 ? `/redirect/${n - 1}${m[2]}` : (m[2] as string) });
      res.end();
      return;
    }
    serveFile(path.join(root, decodeURIComponent(u.pathname)), res).catch(() => res.destroy());
  });
  const port = await listen(server);
  return { url: `https://127.0.0.1:${port}`, port, stop: closer(server), certFile: tls.certFile };
}

async function serveFile(file: string, res: http.ServerResponse): Promise<void> {
  const st = await stat(file).catch(() => undefined);
  if (!st?.isFile()) {
    res.writeHead(404, { "Content-Type": "text/plain" });
    res.end("not found\n");
    return;
  }
  res.writeHead(200, { "Content-Length": String(st.size), "Content-Type": "application/octet-stream" });
  createReadStream(file).pipe(res);
}

/**
 * A minimal GCS JSON API: `GET /storage/v1/b/<bucket>/o/<object>?alt=media` serves `<root>/<bucket>/<object>`;
 * with `token`, requests need `Authorization: Bearer <token>` (401 otherwise). Records the paths requested.
 */
export async function startGcsServer(root: string, token?: string): Promise<TestServer & { requests: string[] }> {
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    const u = new URL(req.url ?? "/", "http://x");
    requests.push(`${req.method} ${u.pathname}${u.search}`);
    if (token && req.headers.authorization !== `Bearer ${token}`) {
      res.writeHead(401, { "Content-Type": "application/json" });
      res.end('{"error":{"code":401,"message":"Anonymous caller"}}');
      return;
    }
    const m = /^\/storage\/v1\/b\/([^/]+)\/o\/([^/]+)$/.exec(u.pathname);
    if (req.method !== "GET" || !m || u.searchParams.get("alt") !== "media") {
      res.writeHead(400);
      res.end();
      return;
    }
    serveFile(path.join(root, decodeURIComponent(m[1] as string), decodeURIComponent(m[2] as string)), res).catch(() =>
      res.destroy(),
    );
  });
  const port = await listen(server);
  return { url: `http://127.0.0.1:${port}`, port, stop: closer(server), requests };
}

async function waitForPort(port: number, child: ChildProcess, what: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const r = http.get({ host: "127.0.0.1", port, path: "/" }, (res) => {
        res.resume();
        resolve(true);
      });
      r.on("error", () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not start listening on ${port}`);
}

async function freePort(): Promise<number> {
  const s = http.createServer();
  const port = await listen(s);
  await closer(s)();
  return port;
}

/** s3rver (npm) on loopback with `bucket` holding `files` (key → local file). */
export async function startS3(dir: string, bucket: string, files: Record<string, string>): Promise<TestServer> {
  const port = await freePort();
  const script = path.join(repoRoot(), "node_modules", "s3rver", "bin", "s3rver.js");
  await mkdir(dir, { recursive: true });
  const child = spawn(
    process.execPath,
    [script, "-d", dir, "-p", String(port), "-a", "127.0.0.1", "--silent", "--configure-bucket", bucket],
    {
      stdio: ["ignore", "ignore", "inherit"],
    },
  );
  await waitForPort(port, child, "s3rver");
  const url = `http://127.0.0.1:${port}`;
  for (const [key, file] of Object.entries(files)) {
    // s3rver accepts any credentials: an unsigned PUT is enough for the fixture.
    const body = await readFile(file);
    const res = await fetch(`${url}/${bucket}/${key}`, { method: "PUT", body });
    if (res.status !== 200) throw new Error(`s3rver PUT ${key}: ${res.status} ${await res.text()}`);
  }
  return {
    url,
    port,
    stop: async () => {
      child.kill("SIGTERM");
      if (child.exitCode === null) await new Promise((r) => child.once("exit", r));
    },
  };
}

/** azurite's well-known development account. */
export const AZURITE_ACCOUNT = "devstoreaccount1";
export const AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/** azurite's blob service on loopback; uploads `files` (container/blob → local file) with a shared-key PUT. */
export async function startAzurite(
  dir: string,
  files: Record<string, string>,
  sign: (url: URL, headers: Record<string, string>, contentLength: number) => string,
): Promise<TestServer & { endpoint: string }> {
  const port = await freePort();
  const script = path.join(repoRoot(), "node_modules", "azurite", "dist", "src", "blob", "main.js");
  await mkdir(dir, { recursive: true });
  const child = spawn(
    // azurite 3.34 runs on Node 20 and 24 alike: the test's own Node binary.
    process.execPath,
    [
      script,
      "--blobHost",
      "127.0.0.1",
      "--blobPort",
      String(port),
      "-l",
      dir,
      "--silent",
      "--skipApiVersionCheck",
      "--loose",
      "--disableTelemetry",
    ],
    { stdio: ["ignore", "ignore", "inherit"] },
  );
  await waitForPort(port, child, "azurite");
  const endpoint = `http://127.0.0.1:${port}/${AZURITE_ACCOUNT}`;
  const put = async (url: URL, body: Buffer | undefined, extra: Record<string, string>): Promise<void> => {
    const xms = { "x-ms-date": new Date().toUTCString(), "x-ms-version": "2021-08-06", ...extra };
    const res = await fetch(url, {
      method: "PUT",
      headers: { ...xms, Authorization: sign(url, xms, body?.length ?? 0) },
      ...(body ? { body } : {}),
    });
    if (res.status !== 201) throw new Error(`azurite PUT ${url.pathname}: ${res.status} ${await res.text()}`);
  };
  const containers = new Set(Object.keys(files).map((k) => k.split("/")[0] as string));
  for (const c of containers) await put(new URL(`${endpoint}/${c}?restype=container`), undefined, {});
  for (const [name, file] of Object.entries(files)) {
    await put(new URL(`${endpoint}/${name}`), await readFile(file), { "x-ms-blob-type": "BlockBlob" });
  }
  return {
    url: endpoint,
    endpoint,
    port,
    stop: async () => {
      child.kill("SIGTERM");
      if (child.exitCode === null) await new Promise((r) => child.once("exit", r));
    },
  };
}

/** Writes files (relative path → content) under `root`. */
export async function writeFiles(root: string, files: Record<string, string>): Promise<void> {
  for (const [rel, content] of Object.entries(files)) {
    const p = path.join(root, rel);
    await mkdir(path.dirname(p), { recursive: true });
    await writeFile(p, content);
  }
}
