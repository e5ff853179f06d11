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
): Promise<{ r: RunKilnResult; layout: string }> {
  const layout = path.join(out, "layout");
  const r = await runKiln([
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
  ]);
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
