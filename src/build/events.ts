import type { Digest } from "../image/digest.js";

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
    }
  | { kind: "phase"; phase: Phase; ms: number; stage?: number }
  | { kind: "image-written"; sink: "registry" | "oci-layout" | "docker-archive"; target: string; digest: Digest }
  | { kind: "isolation"; isolation: string; reason: string };

/** Receives build events; must not throw. */
export type Reporter = (e: BuildEvent) => void;
