import { readFile, writeFile } from "node:fs/promises";
import * as path from "node:path";

/** The file holding blob `digest` in the OCI image layout `dir`. */
export function layoutBlobFile(dir: string, digest: string): string {
  return path.join(dir, "blobs", "sha256", digest.slice("sha256:".length));
}

/** The blob file of the first (`which` = 0) or last (-1) layer of the first image in the layout `dir`. */
export async function layoutLayerFile(dir: string, which: 0 | -1): Promise<string> {
  const index = JSON.parse(await readFile(path.join(dir, "index.json"), "utf8")) as {
    manifests: { digest: string }[];
  };
  const manifest = JSON.parse(await readFile(layoutBlobFile(dir, index.manifests[0]?.digest ?? ""), "utf8")) as {
    layers: { digest: string }[];
  };
  const layer = which === 0 ? manifest.layers[0] : manifest.layers[manifest.layers.length - 1];
  if (!layer) throw new Error(`${dir}: the image has no layer`);
  return layoutBlobFile(dir, layer.digest);
}

/** Overwrites `file` from byte `from` on (same size: a damaged blob that still looks whole). */
export async function damageFile(file: string, from: number): Promise<void> {
  const bytes = await readFile(file);
  bytes.fill(0x55, from);
  await writeFile(file, bytes);
}
