import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdir, readFile } from "node:fs/promises";
import path from "node:path";
import { runKiln, type RunKilnResult } from "../support/kiln-cli.js";
import { sh } from "../integration/helpers.js";

/** A loopback HTTP server for ADD <url> tests: fixed paths → bodies with a fixed Last-Modified. */
export interface FileServer {
  url: string;
  requests: string[];
  stop(): Promise<void>;
}

/** Serves `files` (URL path → body); any other path answers 404. */
export async function startFileServer(files: Record<string, Buffer | string>, lastModified: Date): Promise<FileServer> {
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    requests.push(`${req.method ?? "?"} ${req.url ?? ""}`);
    const body = files[req.url ?? ""];
    if (body === undefined) {
      res.writeHead(404).end("not found");
      return;
    }
    res.writeHead(200, { "Last-Modified": lastModified.toUTCString(), "Content-Length": Buffer.byteLength(body) });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Builds a context dir with kiln into an OCI layout (no push); returns the CLI result and the layout path. */
export async function buildToLayout(
  ctx: string,
  out: string,
  extra: string[] = [],
  env?: Record<string, string | undefined>,
): Promise<{ r: RunKilnResult; layout: string }> {
  const layout = path.join(out, "layout");
  const r = await runKiln(
    [
      "build",
      "--dockerfile",
      path.join(ctx, "Dockerfile"),
      "--context",
      ctx,
      "--no-push",
      "--insecure-pull",
      "--oci-layout-path",
      layout,
      ...extra,
    ],
    env ? { env } : {},
  );
  return { r, layout };
}

/** Unpacks kiln's OCI layout with skopeo + umoci (independent of kiln); returns the rootfs path. */
export async function unpackLayout(layout: string, work: string): Promise<string> {
  await mkdir(work, { recursive: true });
  const copy = path.join(work, "copy");
  await sh("skopeo", ["copy", `oci:${layout}`, `oci:${copy}:img`]);
  const bundle = path.join(work, "bundle");
  await sh("umoci", ["unpack", "--image", `${copy}:img`, bundle]);
  return path.join(bundle, "rootfs");
}

/** The uncompressed tar listings (`tar -tv`-like names) of every layer in kiln's layout, in order. */
export async function layerListings(layout: string): Promise<string[][]> {
  const index = JSON.parse(await readFile(path.join(layout, "index.json"), "utf8")) as {
    manifests: { digest: string }[];
  };
  const blob = (d: string) => path.join(layout, "blobs", "sha256", d.slice(7));
  const manifest = JSON.parse(await readFile(blob(index.manifests[0]!.digest), "utf8")) as {
    layers: { digest: string }[];
  };
  const out: string[][] = [];
  for (const l of manifest.layers) out.push((await sh("tar", ["-tzf", blob(l.digest)])).split("\n").filter(Boolean));
  return out;
}

/** A loopback smart-HTTP git server (`git http-backend` as CGI) serving the repositories under `projectRoot`. */
export async function startGitServer(projectRoot: string): Promise<FileServer> {
  const { spawn } = await import("node:child_process");
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    requests.push(`${req.method ?? "?"} ${req.url ?? ""}`);
    const u = new URL(req.url ?? "/", "http://x");
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const child = spawn("git", ["http-backend"], {
        env: {
          PATH: process.env.PATH ?? "/usr/bin:/bin",
          GIT_PROJECT_ROOT: projectRoot,
          GIT_HTTP_EXPORT_ALL: "1",
          REQUEST_METHOD: req.method ?? "GET",
          PATH_INFO: decodeURIComponent(u.pathname),
          QUERY_STRING: u.search.slice(1),
          CONTENT_TYPE: req.headers["content-type"] ?? "",
          CONTENT_LENGTH: String(body.length),
          ...(req.headers["content-encoding"] ? { HTTP_CONTENT_ENCODING: req.headers["content-encoding"] } : {}),
        },
      });
      const out: Buffer[] = [];
      child.stdout.on("data", (c: Buffer) => out.push(c));
      child.on("close", () => {
        const all = Buffer.concat(out);
        let sep = all.indexOf("\r\n\r\n");
        let skip = 4;
        if (sep < 0) {
          sep = all.indexOf("\n\n");
          skip = 2;
        }
        const head = all.subarray(0, sep).toString("latin1");
        let status = 200;
        const headers: Record<string, string> = {};
        for (const line of head.split(/\r?\n/)) {
          const i = line.indexOf(":");
          if (i < 0) continue;
          const k = line.slice(0, i).trim();
          const v = line.slice(i + 1).trim();
          if (k.toLowerCase() === "status") status = parseInt(v, 10);
          else headers[k] = v;
        }
        res.writeHead(status, headers);
        res.end(all.subarray(sep + skip));
      });
      // A GET's http-backend may exit before it reads its (empty) stdin: EPIPE there is not an error.
      child.stdin.on("error", () => undefined);
      child.stdin.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
