import type { CacheOutcome, Phase } from "../../build/index.js";

/** Identifies the report format; bumped only on incompatible changes. */
export const REPORT_SCHEMA = "kiln.build-report/v1";

/** A path prefix inside a layer and the bytes of regular files below it. */
export interface LayerContributor {
  path: string;
  bytes: number;
  files: number;
}

/** What a layer holds, read from its uncompressed tar. */
export interface LayerContents {
  /** Tar entries (files, directories, links, whiteouts). */
  entries: number;
  /** Sum of the sizes of regular files. */
  fileBytes: number;
  /** The largest contributors by path prefix (up to 3 components), biggest first. */
  top: LayerContributor[];
}

/** One step of a stage, with its place on the build's timeline. */
export interface ReportStep {
  step: number;
  total: number;
  instruction: string;
  location: string;
  /** Milliseconds from the start of the build. */
  startMs: number;
  /** Duration; absent while the step had not finished (the build failed in it). */
  ms?: number;
  status: "done" | "failed" | "not finished";
  cache: CacheOutcome;
  /** Bytes of stdout+stderr the step printed. */
  outputBytes: number;
  layer?: {
    digest: string;
    diffId: string;
    /** Compressed size. */
    size: number;
    contents?: LayerContents;
    /** Why `contents` is missing, e.g. the layer was not available to read. */
    contentsNote?: string;
  };
}

/** One stage of the build. */
export interface ReportStage {
  index: number;
  name?: string;
  base: string;
  /** Manifest digest of a pulled base image. */
  baseDigest?: string;
  startMs: number;
  endMs?: number;
  steps: ReportStep[];
}

/** Total time per build phase. */
export interface ReportPhase {
  phase: Phase;
  ms: number;
  count: number;
}

/** The build report written by `--report=FILE.json` (and rendered by `--report=FILE.html`). */
export interface BuildReport {
  schema: typeof REPORT_SCHEMA;
  kilnVersion: string;
  /** ISO time the build started. */
  startedAt: string;
  durationMs: number;
  status: "succeeded" | "failed";
  exitCode: number;
  /** The one-line error when the build failed. */
  error?: string;
  /** Digest of the built image (success only). */
  digest?: string;
  /** The RUN isolation back-end; absent when no RUN step executed (the isolation probe never ran). */
  isolation?: { backend: string; reason: string };
  stages: ReportStage[];
  phases: ReportPhase[];
  outputs: { sink: string; target: string; digest: string }[];
  warnings: { code: string; message: string }[];
}
