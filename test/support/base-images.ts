/**
 * Offline base images for tests, built with independent tools (umoci, skopeo) and never with kiln itself,
 * so a bug in kiln's image code cannot hide in its own test fixtures.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rename, rm } from "node:fs/promises";
import * as path from "node:path";
import { promisify } from "node:util";
import { BUSYBOX_BINARY, makeBusyboxRoot } from "./busybox.js";
import { repoRoot } from "./tmp.js";

const execFileAsync = promisify(execFile);

/** An image in an OCI image layout directory, addressed as `oci:<dir>:<ref>`. */
export interface OciLayoutImage {
  /** Absolute path of the OCI layout directory (holds oci-layout, index.json, blobs/). */
  dir: string;
  /** The tag (org.opencontainers.image.ref.name) of the image inside the layout. */
  ref: string;
}

/** Bump when the recipe below changes, so cached layouts made by an older recipe are not reused. */
const BUSYBOX_RECIPE = "busybox-oci-v1";

/** Fixed creation time written into the busybox image's config and history. */
const CREATED = "2024-01-01T00:00:00Z";

/** The PATH the busybox image's config sets (Docker's default PATH). */
export const BUSYBOX_IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** Runs a command to completion, throwing an error that carries its stderr when it fails. */
async function run(cmd: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await execFileAsync(cmd, args, { maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  } catch (e) {
    const stderr = (e as { stderr?: unknown }).stderr;
    throw new Error(`${cmd} ${args.join(" ")} failed: ${typeof stderr === "string" ? stderr.trim() : String(e)}`, {
      cause: e,
    });
  }
}

/**
 * Returns an OCI layout holding a single-platform (linux/amd64) busybox image: one gzip layer with the root
 * made by {@link makeBusyboxRoot}, `Cmd ["sh"]`, `Env [PATH=...]`. Built with umoci the first time and cached
 * under `<repo>/.tmp/images/busybox-oci/<key>`, where the key is the sha256 of the busybox binary and the
 * recipe version; later calls (from any process) return the cached layout. Concurrent first calls are safe:
 * each builds privately and the first to finish publishes its layout with an atomic rename. Treat the
 * layout as read-only (copy it to modify it).
 */
export async function busyboxOciLayout(): Promise<OciLayoutImage> {
  const binary = await readFile(BUSYBOX_BINARY);
  const key = createHash("sha256").update(BUSYBOX_RECIPE).update("\0").update(binary).digest("hex").slice(0, 32);
  const cacheRoot = path.join(repoRoot(), ".tmp", "images", "busybox-oci");
  const final = path.join(cacheRoot, key);
  const image: OciLayoutImage = { dir: final, ref: "latest" };
  if (existsSync(path.join(final, "index.json"))) return image;

  await mkdir(cacheRoot, { recursive: true });
  const work = await mkdtemp(path.join(cacheRoot, ".build-"));
  try {
    const rootfs = path.join(work, "root");
    const layout = path.join(work, "oci");
    const bundle = path.join(work, "bundle");
    const img = `${layout}:${image.ref}`;
    await makeBusyboxRoot(rootfs);
    await run("umoci", ["init", "--layout", layout]);
    await run("umoci", ["new", "--image", img]);
    const rootless = process.getuid?.() === 0 ? [] : ["--rootless"];
    await run("umoci", ["unpack", ...rootless, "--image", img, bundle]);
    await run("cp", ["-a", `${rootfs}/.`, path.join(bundle, "rootfs")]);
    await run("umoci", [
      "repack",
      "--history.created",
      CREATED,
      "--history.created_by",
      "kiln test support: busybox root",
      "--image",
      img,
      bundle,
    ]);
    await run("umoci", [
      "config",
      "--no-history",
      "--created",
      CREATED,
      "--config.cmd",
      "sh",
      "--config.env",
      `PATH=${BUSYBOX_IMAGE_PATH}`,
      "--os",
      "linux",
      "--architecture",
      "amd64",
      "--image",
      img,
    ]);
    await run("umoci", ["gc", "--layout", layout]);
    try {
      await rename(layout, final);
    } catch (e) {
      // Another process published the same layout first: use theirs.
      if (!existsSync(path.join(final, "index.json"))) throw e;
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return image;
}

/** Registry credentials for {@link pushLayoutToRegistry} (TLS is never verified). */
export interface PushOptions {
  username?: string;
  password?: string;
}

/**
 * Copies the image `layout` into a registry as `<host>/<repoTag>` (e.g. host "127.0.0.1:5000", repoTag
 * "library/busybox:latest") with `skopeo copy`, without TLS verification and with an accept-anything
 * signature policy. Pass credentials for a registry with basic auth.
 */
export async function pushLayoutToRegistry(
  layout: OciLayoutImage,
  host: string,
  repoTag: string,
  opts: PushOptions = {},
): Promise<void> {
  const creds = opts.username !== undefined ? ["--dest-creds", `${opts.username}:${opts.password ?? ""}`] : [];
  await run("skopeo", [
    "--insecure-policy",
    "copy",
    "--quiet",
    "--dest-tls-verify=false",
    ...creds,
    `oci:${layout.dir}:${layout.ref}`,
    `docker://${host}/${repoTag}`,
  ]);
}

/**
 * Returns the Debian bookworm minbase image (one gzip layer, ~51 MB; ref "bookworm") in the OCI layout
 * `<repo>/.tmp/images/debian-oci`, building it first with scripts/make-debian-base.sh when it is missing
 * (needs root and the Debian archive; takes one to two minutes, so give the calling test a timeout to match).
 */
export async function debianOciLayout(): Promise<OciLayoutImage> {
  const root = repoRoot();
  const image: OciLayoutImage = { dir: path.join(root, ".tmp", "images", "debian-oci"), ref: "bookworm" };
  if (!existsSync(path.join(image.dir, "index.json"))) {
    await run("bash", [path.join(root, "scripts", "make-debian-base.sh")]);
  }
  return image;
}
