import { createHash } from "node:crypto";
import { KilnError } from "../common/errors.js";

/** A content digest, `sha256:<64 lowercase hex>`; only produced by {@link parseDigest} or {@link sha256Digest}. */
export type Digest = string & { readonly __brand: "Digest" };

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

/** Validates `s` as a sha256 digest (the only algorithm kiln accepts for content it verifies). */
export function parseDigest(s: string): Digest {
  if (!DIGEST_RE.test(s)) throw new KilnError("INVALID_DIGEST", `invalid digest ${JSON.stringify(s)}`);
  return s as Digest;
}

/** True when `s` is a well-formed sha256 digest. */
export function isDigest(s: string): s is Digest {
  return DIGEST_RE.test(s);
}

/** sha256 digest of the given bytes. */
export function sha256Digest(data: Uint8Array | string): Digest {
  return `sha256:${createHash("sha256").update(data).digest("hex")}` as Digest;
}

/** The hex part of a digest (`sha256:abc` → `abc`). */
export function digestHex(d: Digest): string {
  return d.slice("sha256:".length);
}

/** `sha256:0123456789ab` — a digest shortened for labels. */
export function shortDigest(d: string): string {
  const colon = d.indexOf(":");
  return d.slice(0, colon + 1 + 12);
}
