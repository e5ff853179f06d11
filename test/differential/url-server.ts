/**
 * A loopback HTTP server standing in for the public URLs that kaniko's corpus ADDs (github.com releases,
 * raw.githubusercontent.com, httpstat.us): `https://HOST/PATH` is rewritten to `http://127.0.0.1:PORT/HOST/PATH`
 * for both builders (normalization "url-rewrite"). Paths ending in `.tar.gz` get one fixed gzip tarball,
 * paths containing `/404` get a 404, everything else a small text naming the path. The same bytes for
 * every request, with a fixed Last-Modified.
 */
import { execFile } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import { promisify } from "node:util";
import { removeDir, tempDir } from "../support/tmp.js";

const execFileAsync = promisify(execFile);
const LAST_MODIFIED = "Mon, 01 Jan 2024 00:00:00 GMT";

/** A running URL stand-in server. */
export interface UrlServer {
  /** `http://127.0.0.1:PORT` */
  base: string;
  stop(): Promise<void>;
}

/** Starts the server on a free loopback port. */
export async function startUrlServer(): Promise<UrlServer> {
  const dir = await tempDir("diff-urls");
  await mkdir(path.join(dir, "src", "release"), { recursive: true });
  await writeFile(path.join(dir, "src", "release", "README"), "a release tarball served locally\n");
  await execFileAsync("tar", [
    "-C",
    path.join(dir, "src"),
    "--mtime=2024-01-01 00:00:00",
    "--owner=0",
    "--group=0",
    "-czf",
    path.join(dir, "release.tar.gz"),
    "release",
  ]);
  const tarball = await readFile(path.join(dir, "release.tar.gz"));
  const server: Server = createServer((req, res) => {
    const url = req.url ?? "/";
    if (url.includes("/404")) {
      res.writeHead(404, { "content-type": "text/plain" });
      res.end("not found\n");
      return;
    }
    const body = url.endsWith(".tar.gz") ? tarball : Buffer.from(`served locally for ${url}\n`);
    res.writeHead(200, {
      "content-type": url.endsWith(".tar.gz") ? "application/gzip" : "text/plain",
      "content-length": String(body.length),
      "last-modified": LAST_MODIFIED,
    });
    res.end(req.method === "HEAD" ? undefined : body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    base: `http://127.0.0.1:${port}`,
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await removeDir(dir);
    },
  };
}
