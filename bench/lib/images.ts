/**
 * Reference base images for the benchmarks, made with independent tools (umoci, skopeo) and pushed to the
 * bench registry: busybox, Debian bookworm minbase, and Debian plus 100,000 small files (one extra layer).
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { promisify } from "node:util";
import {
  busyboxOciLayout,
  debianOciLayout,
  pushLayoutToRegistry,
  type OciLayoutImage,
} from "../../test/support/base-images.js";

const run = promisify(execFile);

/** Repositories (under the bench registry) of the reference bases. */
export const BASES = { busybox: "bench/busybox:latest", debian: "bench/debian:bookworm", big: "bench/big100k:latest" };

/** Debian plus a layer of 100,000 small files under /data (cached in `<cacheDir>/big100k-oci`). */
async function big100kLayout(cacheDir: string): Promise<OciLayoutImage> {
  const image: OciLayoutImage = { dir: path.join(cacheDir, "big100k-oci"), ref: "latest" };
  if (existsSync(path.join(image.dir, "index.json"))) return image;
  const debian = await debianOciLayout();
  const work = path.join(cacheDir, ".big100k-build");
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  const layout = path.join(work, "oci");
  await run("cp", ["-a", debian.dir, layout]);
  const img = `${layout}:${debian.ref}`;
  const bundle = path.join(work, "bundle");
  await run("umoci", ["unpack", "--image", img, bundle]);
  const data = path.join(bundle, "rootfs", "data");
  for (let d = 0; d < 100; d++) {
    const dir = path.join(data, `d${String(d).padStart(2, "0")}`);
    await mkdir(dir, { recursive: true });
    const writes: Promise<void>[] = [];
    for (let f = 0; f < 1000; f++) writes.push(writeFile(path.join(dir, `f${f}`), `file ${d}/${f}\n`));
    await Promise.all(writes);
  }
  await run(
    "umoci",
    [
      "repack",
      "--history.created_by",
      "kiln bench: 100,000 small files",
      "--image",
      `${img}`,
      "--refresh-bundle",
      bundle,
    ],
    { maxBuffer: 64 << 20 },
  );
  await run("umoci", ["tag", "--image", img, image.ref]);
  await run("umoci", ["gc", "--layout", layout]);
  await rename(layout, image.dir);
  await rm(work, { recursive: true, force: true });
  return image;
}

/** Builds (once) and pushes the three bases to `host`; returns their `host/repo:tag` references. */
export async function prepareBases(host: string, cacheDir: string): Promise<typeof BASES> {
  await mkdir(cacheDir, { recursive: true });
  const busybox = await busyboxOciLayout();
  const debian = await debianOciLayout();
  const big = await big100kLayout(cacheDir);
  await pushLayoutToRegistry(busybox, host, BASES.busybox);
  await pushLayoutToRegistry(debian, host, BASES.debian);
  await pushLayoutToRegistry(big, host, BASES.big);
  return {
    busybox: `${host}/${BASES.busybox}`,
    debian: `${host}/${BASES.debian}`,
    big: `${host}/${BASES.big}`,
  };
}
