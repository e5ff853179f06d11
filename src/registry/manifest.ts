import { KilnError } from "../common/errors.js";
import { isDigest } from "../image/digest.js";
import { isIndexMediaType, MediaTypes } from "../image/media-types.js";
import type { Descriptor, ImageIndex, ImageManifest } from "../image/types.js";

/** Manifests and configs larger than this are refused (4 MiB, the registry-side limit too). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/** Accept header for manifest GETs: every type kiln parses, plus schema 1 so it can be rejected clearly. */
export const MANIFEST_ACCEPT = [
  MediaTypes.ociIndex,
  MediaTypes.ociManifest,
  MediaTypes.dockerManifestList,
  MediaTypes.dockerManifest,
  `${MediaTypes.dockerManifestSchema1Signed};q=0.1`,
  `${MediaTypes.dockerManifestSchema1};q=0.1`,
].join(", ");

/** A parsed manifest document: either an index or an image manifest. */
export type ParsedManifest =
  | { kind: "index"; mediaType: string; index: ImageIndex }
  | { kind: "manifest"; mediaType: string; manifest: ImageManifest };

function bad(where: string, why: string): KilnError {
  return new KilnError("INVALID_MANIFEST", `manifest of ${where} is invalid: ${why}`);
}

function checkDescriptor(d: unknown, where: string, what: string): Descriptor {
  if (typeof d !== "object" || d === null) throw bad(where, `${what} is not an object`);
  const r = d as Record<string, unknown>;
  if (typeof r.mediaType !== "string") throw bad(where, `${what} has no mediaType`);
  if (typeof r.digest !== "string" || !isDigest(r.digest)) {
    throw bad(where, `${what} has an unsupported digest ${JSON.stringify(r.digest)} (only sha256 is supported)`);
  }
  if (typeof r.size !== "number" || !Number.isSafeInteger(r.size) || r.size < 0) {
    throw bad(where, `${what} has an invalid size`);
  }
  return d as Descriptor;
}

const isSchema1Type = (t: unknown): boolean =>
  t === MediaTypes.dockerManifestSchema1 || t === MediaTypes.dockerManifestSchema1Signed;

/** True for a Docker schema 1 manifest (by Content-Type, or the document's own `schemaVersion` / `mediaType`). */
export function isSchema1(raw: Uint8Array, contentType: string | undefined): boolean {
  if (isSchema1Type(contentType?.split(";")[0]?.trim())) return true;
  try {
    const doc = JSON.parse(Buffer.from(raw).toString("utf8")) as { schemaVersion?: unknown; mediaType?: unknown };
    return doc.schemaVersion === 1 || isSchema1Type(doc.mediaType);
  } catch {
    return false;
  }
}

/** The error for a schema 1 manifest at `where`. */
export function unsupportedSchema1(where: string): KilnError {
  return new KilnError(
    "UNSUPPORTED_MANIFEST",
    `${where} has a Docker schema 1 manifest, which kiln does not support (like kaniko); re-push it with a current Docker or skopeo to convert it to schema 2/OCI`,
  );
}

/**
 * Parses manifest bytes, deciding the media type from the JSON `mediaType` field, then the
 * response Content-Type, then the shape. Schema 1 is rejected with `UNSUPPORTED_MANIFEST`.
 */
export function parseManifest(raw: Uint8Array, contentType: string | undefined, where: string): ParsedManifest {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(raw).toString("utf8"));
  } catch {
    throw bad(where, "not JSON");
  }
  if (typeof json !== "object" || json === null) throw bad(where, "not a JSON object");
  const doc = json as Record<string, unknown>;
  const ct = contentType?.split(";")[0]?.trim();
  const mediaType =
    typeof doc.mediaType === "string" && doc.mediaType !== ""
      ? doc.mediaType
      : ct !== undefined && ct !== "" && ct !== "application/json" && ct !== "application/octet-stream"
        ? ct
        : Array.isArray(doc.manifests)
          ? MediaTypes.ociIndex
          : MediaTypes.ociManifest;
  if (doc.schemaVersion === 1 || isSchema1Type(mediaType)) throw unsupportedSchema1(where);
  if (doc.schemaVersion !== 2) throw bad(where, `unsupported schemaVersion ${JSON.stringify(doc.schemaVersion)}`);
  if (isIndexMediaType(mediaType)) {
    if (!Array.isArray(doc.manifests)) throw bad(where, "index without manifests");
    doc.manifests.forEach((m, i) => checkDescriptor(m, where, `manifests[${i}]`));
    return { kind: "index", mediaType, index: json as ImageIndex };
  }
  if (mediaType !== MediaTypes.ociManifest && mediaType !== MediaTypes.dockerManifest) {
    throw new KilnError(
      "UNSUPPORTED_MANIFEST",
      `${where} has media type ${mediaType}, which is not an image manifest kiln can use`,
    );
  }
  checkDescriptor(doc.config, where, "config");
  if (!Array.isArray(doc.layers)) throw bad(where, "no layers array");
  doc.layers.forEach((l, i) => checkDescriptor(l, where, `layers[${i}]`));
  return { kind: "manifest", mediaType, manifest: json as ImageManifest };
}
