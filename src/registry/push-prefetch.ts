import { isDigest, sha256Digest, type Digest } from "../image/digest.js";
import { MediaTypes } from "../image/media-types.js";
import { header, readLimited, type RegistryHost } from "./host.js";
import { MAX_MANIFEST_BYTES } from "./manifest.js";
import { blobsOfManifest } from "./push-state.js";

/** Accept header of the prefetch: image manifests only (an index names no blobs to skip checks for). */
const IMAGE_MANIFEST_ACCEPT = [MediaTypes.ociManifest, MediaTypes.dockerManifest].join(", ");

/**
 * Reads the manifest a destination tag holds now (one GET, authenticated with the push scope
 * `pull,push` so it shares the push's token) and answers the blobs the repository therefore holds:
 * its config and layers. Best effort and never throws: no tag (404), an index, an unreadable or
 * oversized answer, a refused or failed request → none (the push then checks every blob).
 */
export async function tagBlobs(
  host: RegistryHost,
  repository: string,
  tag: string,
  signal?: AbortSignal,
): Promise<Digest[]> {
  try {
    const res = await host.request({
      operation: "reading the destination tag of",
      method: "GET",
      url: `/v2/${repository}/manifests/${tag}`,
      scopes: [`repository:${repository}:pull,push`],
      repository,
      headers: { accept: IMAGE_MANIFEST_ACCEPT },
      followRedirects: true,
      ...(signal ? { signal } : {}),
    });
    if (res.status !== 200) {
      await res.body.dump();
      return [];
    }
    if (Number(header(res.headers, "content-length") ?? "0") > MAX_MANIFEST_BYTES) {
      res.body.destroy();
      return [];
    }
    const raw = await readLimited(res.body, MAX_MANIFEST_BYTES, () => new Error("manifest too large"));
    const claimed = header(res.headers, "docker-content-digest");
    if (claimed !== undefined && isDigest(claimed) && claimed !== sha256Digest(raw)) return [];
    return blobsOfManifest(raw, header(res.headers, "content-type"));
  } catch {
    return [];
  }
}
