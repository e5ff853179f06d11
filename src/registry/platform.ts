import { KilnError } from "../common/errors.js";
import type { Descriptor, Platform } from "../image/types.js";

const DEFAULT_VARIANT: Record<string, string> = { arm64: "v8", arm: "v7", amd64: "v1" };

/** Normalised variant for comparison (arm64 → v8, arm → v7, amd64 → v1 when unset). */
function variantOf(p: { architecture: string; variant?: string }): string {
  return p.variant ?? DEFAULT_VARIANT[p.architecture] ?? "";
}

/** True when an index entry is an attestation/unknown-platform manifest that must never be picked. */
export function isAttestation(d: Descriptor): boolean {
  return (
    d.annotations?.["vnd.docker.reference.type"] === "attestation-manifest" ||
    (d.platform?.os === "unknown" && d.platform.architecture === "unknown")
  );
}

/** `os/arch[/variant]` for messages. */
export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ""}`;
}

/**
 * Parses `os/arch[/variant]` (`--custom-platform`): os and architecture are lower-cased and arm64
 * without a variant gets "v8". Throws `INVALID_PLATFORM` for anything else (empty parts included).
 */
export function parsePlatform(s: string): Platform {
  const parts = s.split("/");
  const [os, architecture, variant] = parts;
  if (parts.length < 2 || parts.length > 3 || !os || !architecture || (parts.length === 3 && !variant)) {
    throw new KilnError("INVALID_PLATFORM", `invalid platform ${JSON.stringify(s)}: expected os/arch[/variant]`);
  }
  const p: Platform = { os: os.toLowerCase(), architecture: architecture.toLowerCase() };
  if (variant) p.variant = variant;
  else if (p.architecture === "arm64") p.variant = "v8";
  return p;
}

/**
 * Picks the manifest for `want` from an index: exact os/arch/normalised-variant match first, then
 * (when `want` has no variant) the first os/arch match. Attestation manifests are skipped.
 * Returns undefined when nothing matches.
 */
export function selectPlatform(manifests: readonly Descriptor[], want: Platform): Descriptor | undefined {
  const candidates = manifests.filter((d) => d.platform !== undefined && !isAttestation(d));
  const sameArch = candidates.filter(
    (d) => d.platform?.os === want.os && d.platform.architecture === want.architecture,
  );
  const exact = sameArch.find((d) => d.platform !== undefined && variantOf(d.platform) === variantOf(want));
  if (exact !== undefined) return exact;
  if (want.variant === undefined) return sameArch[0];
  return undefined;
}
