/**
 * Starts a real registry (distribution 2.8, `/usr/bin/docker-registry`) on a free loopback port for
 * tests: plain HTTP by default, optionally TLS (a fresh CA + server cert for 127.0.0.1), htpasswd
 * Basic auth, or Bearer token auth via the test token issuer. Storage lives in a temp dir that
 * stop() removes.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { Readable } from "node:stream";
import { gzipSync } from "node:zlib";
import { assembleImage } from "../../src/image/assemble.js";
import { sha256Digest } from "../../src/image/digest.js";
import { MediaTypes } from "../../src/image/media-types.js";
import type { BlobOrigin, Image, Layer } from "../../src/image/types.js";
import { startTokenIssuer, type TokenIssuer, type TokenIssuerOptions } from "./token-issuer.js";

/** A running test registry. */
export interface TestRegistry {
  /** `127.0.0.1:PORT` */
  host: string;
  /** `http://127.0.0.1:PORT` or `https://…` */
  url: string;
  /** CA certificate (PEM file) that signed the TLS server certificate, when `tls`. */
  caFile?: string;
  /** Client certificate and key (PEM files) the registry demands, when `mtls`. */
  clientCert?: { cert: string; key: string };
  username?: string;
  password?: string;
  /** The token issuer, when `token`. */
  tokenIssuer?: TokenIssuer;
  /** The temp directory holding config, storage and certificates. */
  dir: string;
  stop(): Promise<void>;
}

/** Options of {@link startRegistry}. */
export interface StartRegistryOptions {
  tls?: boolean;
  /** With `tls`: demand a client certificate signed by the test CA (mutual TLS). */
  mtls?: boolean;
  /** Basic auth (htpasswd); with `token` these are the token issuer's user instead. */
  htpasswd?: { username: string; password: string };
  /** Bearer token auth through a test token issuer (extra issuer options may be given). */
  token?: boolean | Partial<Omit<TokenIssuerOptions, "dir">>;
}

const REGISTRY_BIN = "/usr/bin/docker-registry";

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

function openssl(args: string[], cwd: string): void {
  execFileSync("openssl", args, { cwd, stdio: "ignore" });
}

/**
 * A fresh test CA and a server certificate it signed, in `dir` (`ca.pem`; `<name>.pem`, `<name>.key`): by
 * default for 127.0.0.1 and localhost, or for the `server` names given (e.g. a registry host name a test
 * maps onto loopback).
 */
export function makeTls(
  dir: string,
  server: { name: string; cn: string; san: string } = {
    name: "server",
    cn: "127.0.0.1",
    san: "IP:127.0.0.1,DNS:localhost",
  },
): { caFile: string; cert: string; key: string } {
  const { name } = server;
  openssl(
    [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      "ca.key",
      "-out",
      "ca.pem",
      "-subj",
      "/CN=kiln-test-ca",
      "-days",
      "2",
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    ],
    dir,
  );
  openssl(
    [
      "req",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.csr`,
      "-subj",
      `/CN=${server.cn}`,
    ],
    dir,
  );
  writeFileSync(
    path.join(dir, `${name}.ext`),
    `subjectAltName=${server.san}\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n`,
  );
  openssl(
    [
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      `${name}.pem`,
      "-days",
      "2",
      "-extfile",
      `${name}.ext`,
    ],
    dir,
  );
  return { caFile: path.join(dir, "ca.pem"), cert: path.join(dir, `${name}.pem`), key: path.join(dir, `${name}.key`) };
}

function makeClientCert(dir: string): { cert: string; key: string } {
  openssl(
    ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "client.key", "-out", "client.csr", "-subj", "/CN=kiln-client"],
    dir,
  );
  writeFileSync(path.join(dir, "client.ext"), "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n");
  openssl(
    [
      "x509",
      "-req",
      "-in",
      "client.csr",
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      "client.pem",
      "-days",
      "2",
      "-extfile",
      "client.ext",
    ],
    dir,
  );
  return { cert: path.join(dir, "client.pem"), key: path.join(dir, "client.key") };
}

function probe(url: string, ca: Buffer | undefined, client?: { cert: Buffer; key: Buffer }): Promise<boolean> {
  return new Promise((resolve) => {
    const req = (url.startsWith("https:") ? httpsRequest : httpRequest)(
      `${url}/v2/`,
      { method: "GET", timeout: 1000, ...(ca ? { ca } : {}), ...(client ?? {}) },
      (res) => {
        res.resume();
        resolve(res.statusCode !== undefined);
      },
    );
    req.on("error", () => resolve(false));
    req.on("timeout", () => {
      req.destroy();
      resolve(false);
    });
    req.end();
  });
}

function waitExit(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once("exit", () => resolve());
  });
}

/** Starts a registry and resolves once `GET /v2/` answers. */
export async function startRegistry(opts: StartRegistryOptions = {}): Promise<TestRegistry> {
  const dir = mkdtempSync(path.join(tmpdir(), "kiln-registry-"));
  const tls = opts.tls === true || opts.mtls === true ? makeTls(dir) : undefined;
  const clientCert = opts.mtls === true ? makeClientCert(dir) : undefined;
  let issuer: TokenIssuer | undefined;
  if (opts.token) {
    const extra = typeof opts.token === "object" ? opts.token : {};
    issuer = await startTokenIssuer({
      dir,
      ...(opts.htpasswd ? { users: { [opts.htpasswd.username]: opts.htpasswd.password } } : {}),
      ...extra,
    });
  } else if (opts.htpasswd) {
    execFileSync("htpasswd", ["-Bbc", path.join(dir, "htpasswd"), opts.htpasswd.username, opts.htpasswd.password], {
      stdio: "ignore",
    });
  }
  let lastLog = "";
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const lines = [
      "version: 0.1",
      "log: { level: error, accesslog: { disabled: true } }",
      "storage:",
      `  filesystem: { rootdirectory: ${JSON.stringify(path.join(dir, "storage"))} }`,
      "  delete: { enabled: true }",
      "  maintenance: { uploadpurging: { enabled: false } }",
      "http:",
      `  addr: 127.0.0.1:${port}`,
      `  secret: ${randomBytes(16).toString("hex")}`,
      ...(tls ? ["  tls:", `    certificate: ${JSON.stringify(tls.cert)}`, `    key: ${JSON.stringify(tls.key)}`] : []),
      ...(tls && clientCert ? [`    clientcas: [${JSON.stringify(tls.caFile)}]`] : []),
    ];
    if (issuer) {
      lines.push(
        "auth:",
        "  token:",
        `    realm: ${JSON.stringify(issuer.realm)}`,
        `    service: ${JSON.stringify(issuer.service)}`,
        `    issuer: ${JSON.stringify(issuer.issuer)}`,
        `    rootcertbundle: ${JSON.stringify(issuer.certFile)}`,
      );
    } else if (opts.htpasswd) {
      lines.push(
        "auth:",
        "  htpasswd:",
        "    realm: basic-realm",
        `    path: ${JSON.stringify(path.join(dir, "htpasswd"))}`,
      );
    }
    const cfg = path.join(dir, "config.yml");
    writeFileSync(cfg, `${lines.join("\n")}\n`);
    const child = spawn(REGISTRY_BIN, ["serve", cfg], { stdio: ["ignore", "pipe", "pipe"] });
    let log = "";
    child.stdout?.on("data", (b: Buffer) => (log += b.toString()));
    child.stderr?.on("data", (b: Buffer) => (log += b.toString()));
    const url = `${tls ? "https" : "http"}://127.0.0.1:${port}`;
    const ca = tls ? readFileSync(tls.caFile) : undefined;
    const deadline = Date.now() + 15_000;
    let ready = false;
    while (Date.now() < deadline && child.exitCode === null) {
      const cc = clientCert ? { cert: readFileSync(clientCert.cert), key: readFileSync(clientCert.key) } : undefined;
      if (await probe(url, ca, cc)) {
        ready = true;
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    if (ready) {
      const host = `127.0.0.1:${port}`;
      return {
        host,
        url,
        dir,
        ...(tls ? { caFile: tls.caFile } : {}),
        ...(clientCert ? { clientCert } : {}),
        ...(opts.htpasswd ? { username: opts.htpasswd.username, password: opts.htpasswd.password } : {}),
        ...(issuer ? { tokenIssuer: issuer } : {}),
        stop: async () => {
          child.kill("SIGTERM");
          await waitExit(child);
          await issuer?.stop();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    }
    lastLog = log;
    child.kill("SIGKILL");
    await waitExit(child);
  }
  await issuer?.stop();
  rmSync(dir, { recursive: true, force: true });
  throw new Error(`docker-registry did not start: ${lastLog.slice(-2000)}`);
}

// ---- Tiny test images (no other kiln parts needed) -------------------------------------------

/** A small in-memory layer: a gzip'd tar made with `tar` from `files` (path → content). */
export function testLayer(files: Record<string, string | Buffer>, origins?: BlobOrigin[]): Layer & { gz: Buffer } {
  const dir = mkdtempSync(path.join(tmpdir(), "kiln-layer-"));
  try {
    for (const [name, content] of Object.entries(files)) {
      const p = path.join(dir, "root", name);
      mkdirSync(path.dirname(p), { recursive: true });
      writeFileSync(p, content);
    }
    const tar = execFileSync(
      "tar",
      [
        "--sort=name",
        "--mtime=@0",
        "--owner=0",
        "--group=0",
        "--numeric-owner",
        "-cf",
        "-",
        "-C",
        path.join(dir, "root"),
        ".",
      ],
      {
        maxBuffer: 256 * 1024 * 1024,
      },
    );
    const gz = gzipSync(tar);
    return {
      mediaType: MediaTypes.ociLayerGzip,
      digest: sha256Digest(gz),
      diffId: sha256Digest(tar),
      size: gz.length,
      gz,
      ...(origins ? { origins } : {}),
      openCompressed: () => Promise.resolve(Readable.from([gz])),
      openUncompressed: () => Promise.resolve(Readable.from([tar])),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** An image of the given layers with a minimal linux/amd64 config. */
export function testImage(layers: Layer[], family: "oci" | "docker" = "oci", cmd = ["/bin/sh"]): Image {
  return assembleImage({
    family,
    config: {
      architecture: "amd64",
      os: "linux",
      created: "1970-01-01T00:00:00Z",
      config: { Cmd: cmd, Env: ["PATH=/bin"] },
      rootfs: { type: "layers", diff_ids: [] },
      history: layers.map(() => ({ created_by: "kiln test" })),
    },
    layers,
  });
}

/** Reads a whole stream into a Buffer. */
export async function readAllStream(s: NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(Buffer.isBuffer(c) ? c : Buffer.from(c as string));
  return Buffer.concat(parts);
}
