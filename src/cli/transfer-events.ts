import type { BuildEvent } from "../build/index.js";
import { shortDigest } from "../image/digest.js";
import type { RegistryEvent } from "../registry/index.js";

/**
 * Maps the registry client's `blob-progress` events onto build `transfer` events (id = direction,
 * repository and digest; label = short digest and where it moves); other registry events → undefined.
 */
export function transferEvent(e: RegistryEvent): BuildEvent | undefined {
  if (e.kind !== "blob-progress") return undefined;
  const where = `${e.registry}/${e.repository}`;
  return {
    kind: "transfer",
    id: `${e.direction} ${where}@${e.digest}`,
    phase: e.direction,
    label: `${shortDigest(e.digest)} ${e.direction === "pull" ? "from" : "to"} ${where}`,
    bytes: e.bytes,
    total: e.total,
    done: e.done,
    ...(e.failed === true ? { failed: true } : {}),
  };
}
