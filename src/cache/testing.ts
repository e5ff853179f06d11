import type { Digest, Layer } from "../image/index.js";

/**
 * A stand-in for the layer a header copy is made of (test helper): only its compressed size matters to
 * the writer; reading it fails.
 */
export function unreadLayerOfSize(size: number): Layer {
  return {
    mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
    digest: `sha256:${"1".repeat(64)}` as Digest,
    diffId: `sha256:${"2".repeat(64)}` as Digest,
    size,
    openCompressed: () => Promise.reject(new Error("not read")),
    openUncompressed: () => Promise.reject(new Error("not read")),
  };
}
