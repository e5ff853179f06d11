import type { Digest } from "../image/digest.js";
import type { MetadataCache } from "./metadata-cache.js";

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
  | { kind: "retry"; registry: string; operation: string; attempt: number; delayMs: number; reason: string }
  /**
   * Bytes of one blob moved so far (throttled, see `progressIntervalMs`). Pulls count verified bytes
   * received, so `bytes` only grows, also across resumed downloads; pushes count bytes handed to the
   * connection (a retried upload starts again at 0). The last event of a transfer has `done: true`
   * (`failed: true` when it ended with an error); a successful one ends at `bytes === total`.
   */
  | {
      kind: "blob-progress";
      direction: "pull" | "push";
      registry: string;
      repository: string;
      digest: Digest;
      bytes: number;
      total: number;
      done: boolean;
      failed?: boolean;
    };

/** Shared services the pull/push code gets from the client (all per-client, no globals). */
export interface ClientContext {
  /** Configs and manifests kept across builds by digest (see {@link MetadataCache}); undefined: always fetched. */
  metadata?: MetadataCache;
  retries: number;
  baseDelayMs: number;
  emit(e: RegistryEvent): void;
  /** Minimum milliseconds between two `blob-progress` events of one blob (default 100; 0: every chunk). */
  progressIntervalMs?: number;
  /** Monotonic milliseconds clock for progress throttling (default `performance.now`). */
  now?: () => number;
}
