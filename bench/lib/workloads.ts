/**
 * The benchmark workloads: a Dockerfile + context each under bench/workloads/<name>/, copied into the
 * harness's work dir before use (generated files and rebuild edits never touch the source tree).
 */
import { randomBytes } from "node:crypto";
import { cpSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import type { Variant } from "./builders.js";

/** References of the reference bases in the bench registry. */
export interface Bases {
  busybox: string;
  debian: string;
  big: string;
}

/** How a workload is run. */
export type WorkloadKind =
  /** build + push through every builder */
  | "e2e"
  /** first build with an empty cache, then a rebuild after a context edit, cache enabled */
  | "cache";

/** One end-to-end workload. */
export interface Workload {
  name: string;
  /** One-line description for the table. */
  title: string;
  kind: WorkloadKind;
  buildArgs(b: Bases): Record<string, string>;
  bases(b: Bases): string[];
  /** Variants measured, for kiln and every peer (kiln's "warm" builds with a filled `--layer-store`). */
  variants: Variant[];
  /** Expensive: measured min(runs, 2) times in full mode. */
  heavy?: boolean;
  /** Part of --quick. */
  quick?: boolean;
}

/** All end-to-end workloads, in run order. */
export const WORKLOADS: Workload[] = [
  {
    name: "busybox-run-copy",
    title: "busybox: RUN one file + COPY",
    kind: "e2e",
    buildArgs: (b) => ({ BASE: b.busybox }),
    bases: (b) => [b.busybox],
    variants: ["cold", "warm"],
    quick: true,
  },
  {
    name: "debian-10k-files",
    title: "debian: RUN writing 10,000 files + COPY",
    kind: "e2e",
    buildArgs: (b) => ({ BASE: b.debian }),
    bases: (b) => [b.debian],
    variants: ["cold", "warm"],
    quick: true,
  },
  {
    name: "debian-apt",
    title: "debian: apt-get update && apt-get install curl",
    kind: "e2e",
    buildArgs: (b) => ({ BASE: b.debian }),
    bases: (b) => [b.debian],
    variants: ["warm"],
    heavy: true,
  },
  {
    name: "big100k-touch",
    title: "100,000-file base: RUN touching 3 files + COPY",
    kind: "e2e",
    buildArgs: (b) => ({ BASE: b.big }),
    bases: (b) => [b.big],
    variants: ["cold", "warm"],
    heavy: true,
  },
  {
    name: "multistage",
    title: "multi-stage: debian build stage (5,000 files + 200 MB) → busybox + 1 file",
    kind: "e2e",
    buildArgs: (b) => ({ BASE: b.debian, FINAL: b.busybox }),
    bases: (b) => [b.debian, b.busybox],
    variants: ["cold", "warm"],
  },
  {
    name: "steps-20",
    title: "busybox: 20 small RUN steps",
    kind: "e2e",
    buildArgs: (b) => ({ BASE: b.busybox }),
    bases: (b) => [b.busybox],
    variants: ["warm"],
  },
  {
    name: "layer-2g",
    title: "busybox: RUN writing a 2 GiB file (one 2 GiB layer)",
    kind: "e2e",
    buildArgs: (b) => ({ BASE: b.busybox }),
    bases: (b) => [b.busybox],
    variants: ["warm"],
    heavy: true,
  },
  {
    name: "push-multilayer",
    title: "busybox + 5 COPY layers of 16 MiB random bytes (push-heavy)",
    kind: "e2e",
    buildArgs: (b) => ({ BASE: b.busybox }),
    bases: (b) => [b.busybox],
    variants: ["warm"],
    quick: true,
  },
  {
    name: "cache-rebuild",
    title: "debian: 10,000 files, then a rebuild after editing the last COPY's source",
    kind: "cache",
    buildArgs: (b) => ({ BASE: b.debian }),
    bases: (b) => [b.debian],
    variants: ["cold"],
  },
];

/**
 * Copies the workload's context from `benchDir/workloads/<name>` to `workDir/ctx/<name>` (fresh) and adds
 * generated files (the push workload's random blobs). Returns the copy's path.
 */
export function stageContext(benchDir: string, workDir: string, name: string): string {
  const dst = path.join(workDir, "ctx", name);
  rmSync(dst, { recursive: true, force: true });
  mkdirSync(path.dirname(dst), { recursive: true });
  cpSync(path.join(benchDir, "workloads", name), dst, { recursive: true });
  if (name === "push-multilayer") {
    for (let i = 1; i <= 5; i++) writeFileSync(path.join(dst, `blob${i}.bin`), randomBytes(16 << 20));
  }
  return dst;
}

/** A context whose Dockerfile is only `FROM ${BASE}` (the pull measurement). */
export function pullContext(workDir: string): string {
  const dst = path.join(workDir, "ctx", "pull");
  mkdirSync(dst, { recursive: true });
  writeFileSync(path.join(dst, "Dockerfile"), "ARG BASE\nFROM ${BASE}\n");
  return dst;
}
