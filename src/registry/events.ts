import type { Digest } from "../image/digest.js";

/** Progress and debug events of the registry client (never contain credentials or URL queries). */
export type RegistryEvent =
  | {
      kind: "pull-manifest";
      registry: string;
      repository: string;
      reference: string;
      digest: Digest;
      mediaType: string;
    }
  | { kind: "mirror-failed"; registry: string; repository: string; mirror: string; error: string }
  | { kind: "blob-exists"; registry: string; repository: string; digest: Digest; size: number }
  | { kind: "blob-mounted"; registry: string; repository: string; digest: Digest; size: number; from: string }
  | { kind: "blob-pushed"; registry: string; repository: string; digest: Digest; size: number }
  | { kind: "manifest-pushed"; registry: string; repository: string; reference: string; digest: Digest }
  | { kind: "retry"; registry: string; operation: string; attempt: number; delayMs: number; reason: string };

/** Shared services the pull/push code gets from the client (all per-client, no globals). */
export interface ClientContext {
  retries: number;
  baseDelayMs: number;
  emit(e: RegistryEvent): void;
}
