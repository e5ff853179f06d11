import { setTimeout as sleep } from "node:timers/promises";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { request } from "undici";
import { KilnError } from "../common/errors.js";
import type { Digest } from "../image/digest.js";
import { writeDockerArchive, writeOciLayout } from "../image/index.js";
import type { Image } from "../image/types.js";
import { parseReference, type RegistryClient } from "../registry/index.js";
import type { Reporter } from "./events.js";
import type { BuildOptions } from "./options.js";

/** kaniko's placeholder tag for a tarball written without any --destination. */
const UNSET_TAG = "docker.io/unset-repo/unset-image-name:latest";

/**
 * A destination as kaniko's tarball names it (go-containerregistry keeps the reference as typed): the
 * user's spelling, with `:latest` when it names no tag.
 */
function tarTag(dest: string): string {
  const ref = parseReference(dest);
  if (ref.tag !== undefined || ref.digest !== undefined) return dest;
  return `${dest}:latest`;
}

/**
 * A text output (`--digest-file` …) as messages show it: an https:// URL by its host only (`https://host/…`),
 * since its path, query and user info may be credentials (a pre-signed URL's signature); a path as given.
 */
export function textOutputShown(target: string): string {
  if (!/^https:\/\//i.test(target)) return target;
  try {
    return `https://${new URL(target).host}/…`;
  } catch {
    return "https://<url>";
  }
}

/**
 * Writes a text output the way kaniko does: a local path (parent dirs created), or an HTTP PUT when
 * the value is an https:// URL (pre-signed URL support).
 */
export async function writeTextOutput(target: string, content: string): Promise<void> {
  if (/^https:\/\//i.test(target)) {
    const res = await request(target, { method: "PUT", body: content, headers: { "content-type": "text/plain" } });
    await res.body.dump();
    if (res.statusCode >= 300) {
      throw new KilnError("OUTPUT_FAILED", `writing digest to ${textOutputShown(target)}: HTTP ${res.statusCode}`);
    }
    return;
  }
  await mkdir(path.dirname(path.resolve(target)), { recursive: true });
  await writeFile(target, content);
}

/** Runs one file output; a system error (ENOSPC, EACCES …) becomes OUTPUT_FAILED naming the output and path. */
async function fileOutput(what: string, target: string, write: () => Promise<void>): Promise<void> {
  try {
    await write();
  } catch (e) {
    if (e instanceof KilnError || !(e instanceof Error)) throw e;
    const full =
      (e as NodeJS.ErrnoException).code === "ENOSPC" ? "; the disk is full: free space or write elsewhere" : "";
    throw new KilnError("OUTPUT_FAILED", `writing ${what} to ${target}: ${e.message}${full}`, { cause: e });
  }
}

/** Repository name of a destination without tag/digest, as kaniko writes it (`registry/repo`). */
function repoOf(dest: string): { repo: string; tag: string } {
  const ref = parseReference(dest);
  return { repo: ref.name, tag: ref.tag ?? "latest" };
}

/**
 * Writes every requested output of a finished build: OCI layout, docker-archive, the pushes to each
 * destination, then the digest files (kaniko writes those first; last means a failed output never
 * leaves a digest file naming an image that does not exist).
 */
export async function writeOutputs(
  image: Image,
  opts: Readonly<BuildOptions>,
  registry: RegistryClient,
  report: Reporter,
  signal?: AbortSignal,
): Promise<{ pushed: { ref: string; digest: Digest }[] }> {
  const digest = image.digest;
  if (opts.ociLayoutPath) {
    const t0 = Date.now();
    const layout = opts.ociLayoutPath;
    await fileOutput("the OCI layout (--oci-layout-path)", layout, () =>
      writeOciLayout(layout, image, { onlyThisImage: true, ...(signal ? { signal } : {}) }),
    );
    report({ kind: "phase", phase: "write", ms: Date.now() - t0 });
    report({ kind: "image-written", sink: "oci-layout", target: opts.ociLayoutPath, digest });
  }
  if (opts.tarPath) {
    const t0 = Date.now();
    const tags = opts.destinations.length > 0 ? opts.destinations.map(tarTag) : [UNSET_TAG];
    const tarPath = opts.tarPath;
    await fileOutput("the image tarball (--tar-path)", tarPath, () =>
      writeDockerArchive(tarPath, image, tags, { followLinks: true, ...(signal ? { signal } : {}) }),
    );
    report({ kind: "phase", phase: "write", ms: Date.now() - t0 });
    report({ kind: "image-written", sink: "docker-archive", target: opts.tarPath, digest });
  }
  const pushed: { ref: string; digest: Digest }[] = [];
  if (opts.noPush && opts.destinations.length > 0)
    report({ kind: "info", message: "Skipping push to container registry due to --no-push flag" });
  if (!opts.noPush) {
    for (const dest of opts.destinations) {
      const ref = parseReference(dest);
      report({ kind: "info", message: `Pushing image to ${ref.toString()}` });
      const t0 = Date.now();
      let attempt = 0;
      for (;;) {
        try {
          const d = await registry.pushImage(ref, image, { signal });
          pushed.push({ ref: ref.toString(), digest: d });
          break;
        } catch (e) {
          // ECR answers TAG_INVALID / "tag … is immutable", GAR "… is immutable": kaniko's opt-in success.
          if (opts.pushIgnoreImmutableTagErrors && /TAG_INVALID|immutable/i.test((e as Error).message)) {
            report({
              kind: "warning",
              code: "PUSH_IMMUTABLE_TAG",
              message: `${ref.toString()}: the tag is immutable; not overwritten`,
            });
            break;
          }
          if (attempt >= opts.registry.pushRetry || signal?.aborted) throw e;
          const wait = 1000 * 2 ** attempt++;
          report({
            kind: "warning",
            code: "PUSH_RETRY",
            message: `push to ${ref.toString()} failed, retrying in ${wait / 1000}s: ${(e as Error).message}`,
          });
          await sleep(wait, undefined, signal ? { signal } : {}); // a cancelled build does not wait it out
        }
      }
      report({ kind: "phase", phase: "push", ms: Date.now() - t0 });
      report({ kind: "info", message: `Pushed ${ref.name}@${digest}` });
      report({ kind: "image-written", sink: "registry", target: ref.toString(), digest });
    }
  }
  // kaniko's BUILDER_OUTPUT (Tekton-style results): every destination as typed, once all were pushed.
  if (opts.builderOutput !== undefined && !opts.noPush && opts.destinations.length > 0) {
    const file = path.join(opts.builderOutput, "images");
    const lines = opts.destinations.map((d) => `${JSON.stringify({ name: d, digest })}\n`).join("");
    await fileOutput("the pushed images (BUILDER_OUTPUT)", file, () => writeTextOutput(file, lines));
  }
  // Digest files last: when an output fails, no digest file names an image that was not written.
  if (opts.digestFile) await writeTextOutput(opts.digestFile, digest);
  if (opts.imageNameWithDigestFile) {
    await writeTextOutput(
      opts.imageNameWithDigestFile,
      opts.destinations.map((d) => `${repoOf(d).repo}@${digest}\n`).join(""),
    );
  }
  if (opts.imageNameTagWithDigestFile) {
    const lines = opts.destinations.map((d) => {
      const r = repoOf(d);
      return `${r.repo}:${r.tag}@${digest}\n`;
    });
    await writeTextOutput(opts.imageNameTagWithDigestFile, lines.join(""));
  }
  return { pushed };
}
