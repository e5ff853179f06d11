import type { Digest } from "../image/digest.js";
import type { Layer } from "../image/types.js";

/** Build phases used by the per-phase profile. */
export type Phase = "resolve" | "pull" | "extract" | "run" | "copy" | "snapshot" | "compress" | "push" | "write";

/**
 * Everything the library reports while it builds. The CLI renders these; the library never prints.
 * Messages never contain credentials or secret values.
 */
export type BuildEvent =
  | { kind: "info"; message: string }
  | { kind: "debug"; message: string }
  | { kind: "warning"; code: string; message: string }
  | { kind: "stage-start"; stage: number; name?: string; base: string }
  | { kind: "base-resolved"; stage: number; ref: string; digest: Digest }
  | { kind: "step-start"; stage: number; step: number; total: number; instruction: string; location: string }
  | { kind: "step-output"; stage: number; step: number; stream: "stdout" | "stderr"; data: Buffer }
  | {
      kind: "step-done";
      stage: number;
      step: number;
      layer?: { digest: Digest; diffId: Digest; size: number };
      ms: number;
      /** How the layer cache treated this step; absent means the cache is off ("cache disabled"). */
      cache?: CacheOutcome;
    }
  /** A step produced a layer (emitted before its step-done); lets reports look inside it while it exists. */
  | { kind: "layer-created"; stage: number; step: number; layer: Layer }
  /** Bytes moved for a pull, push or extraction; `done` marks the last event of a task. */
  | {
      kind: "transfer";
      /** Stable id of the task, e.g. the blob digest plus the direction. */
      id: string;
      phase: "pull" | "push" | "extract";
      /** What is moving, e.g. "layer sha256:ab12… of debian:12". */
      label: string;
      bytes: number;
      total?: number;
      done: boolean;
      /** Set on the last event of a task that ended with an error. */
      failed?: boolean;
    }
  | { kind: "phase"; phase: Phase; ms: number; stage?: number }
  | { kind: "image-written"; sink: "registry" | "oci-layout" | "docker-archive"; target: string; digest: Digest }
  | { kind: "isolation"; isolation: string; reason: string };

/** The layer cache's verdict on one step, with the reason a user can act on. */
export interface CacheOutcome {
  status: "hit" | "miss" | "disabled" | "uncacheable";
  /** E.g. "cache disabled", "no entry for key sha256:…", "context file app.js changed". */
  reason: string;
  /** The composite cache key, when one was computed. */
  key?: string;
}

/** Receives build events; must not throw. */
export type Reporter = (e: BuildEvent) => void;
