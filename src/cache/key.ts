import { createHash } from "node:crypto";

/** One named input of a cache key; the value is hashed, never stored. */
export type KeyInput = readonly [name: string, value: string | Uint8Array];

function frame(h: ReturnType<typeof createHash>, data: Uint8Array): void {
  const len = Buffer.alloc(8);
  len.writeBigUInt64BE(BigInt(data.length));
  h.update(len);
  h.update(data);
}

function bytes(v: string | Uint8Array): Uint8Array {
  return typeof v === "string" ? Buffer.from(v, "utf8") : v;
}

/**
 * A composite cache key: sha256 over the inputs in order, each name and value framed with a
 * 64-bit big-endian length, so no two different input lists can produce the same byte stream.
 * Returns 64 lowercase hex characters (a valid registry tag, like kaniko's keys).
 */
export function compositeKey(inputs: readonly KeyInput[]): string {
  const h = createHash("sha256");
  frame(h, Buffer.from("kiln-cache-key-v1"));
  for (const [name, value] of inputs) {
    frame(h, Buffer.from(name, "utf8"));
    frame(h, bytes(value));
  }
  return h.digest("hex");
}

/** Per-input fingerprints (name → short sha256 of the value): stored with an entry to explain later misses. */
export function inputFingerprints(inputs: readonly KeyInput[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of inputs) {
    out[name] = createHash("sha256").update(bytes(value)).digest("hex").slice(0, 16);
  }
  return out;
}
