import type { DirContext } from "../../context/index.js";
import type { IgnoreList, KnownCapabilities, OverlayDirs } from "../../fs/index.js";
import type { ContainerConfig } from "../../image/types.js";
import type { Runner } from "../../run/index.js";
import type { Reporter } from "../events.js";
import type { BuildOptions } from "../options.js";
import type { Identity } from "../user.js";
import type { RootHooks } from "./copy.js";

/**
 * What a filesystem step (RUN, COPY, ADD, WORKDIR) may use. Built by the stage loop for each step;
 * steps never see the loop's mutable state and return what to snapshot instead of making layers.
 */
export interface StepContext {
  readonly stageIndex: number;
  readonly step: number;
  /** `Dockerfile:12` — prefix for messages about this step. */
  readonly location: string;
  readonly opts: Readonly<BuildOptions>;
  /** The image config as it is before this step. */
  readonly config: Readonly<ContainerConfig>;
  readonly shell: readonly string[];
  /** ARGs in scope in this stage with their resolved values. */
  readonly args: ReadonlyMap<string, string | undefined>;
  /** ARGs whose values stay out of the history: secret build args and those set from them. */
  readonly hiddenArgs: readonly string[];
  readonly escapeToken: "\\" | "`";
  /** Materialises the stage root (extracting the base on first use) and returns its host path. */
  rootDir(): Promise<string>;
  /** Resolves a user spec (default: the config's USER) against the root's passwd/group files. */
  identity(spec?: string): Promise<Identity>;
  /** The environment a RUN sees: config Env, ARGs in scope, proxy args, HOME. */
  runEnv(identity: Identity): string[];
  /** The build context (with .dockerignore applied). */
  readonly context: DirContext;
  /** The root of another stage or image named by `--from`. */
  fromRoot(ref: string): Promise<DirContext>;
  runner(): Promise<Runner>;
  /** Prepares the snapshot of a RUN: the overlay to run on (overlay back-end) or undefined (walk). */
  prepareRun(): Promise<OverlayDirs | undefined>;
  /** Scratch directory of this build (never part of a layer). */
  readonly tmpDir: string;
  readonly report: Reporter;
  /** Paths a step must never write (in-place mode: kiln's dir, mount points, /proc …). */
  readonly ignore?: IgnoreList;
  /** The root is the live "/" of the build container (the in-place back-end). */
  readonly inPlace?: boolean;
  /** The root is laid out on demand (a skeleton from a record): COPY resolves its paths through these. */
  readonly rootHooks?: RootHooks;
  readonly signal?: AbortSignal;
}

/** How the stage loop finds what a step changed. */
export type Snapshot =
  /** Compare the whole root with its index (RUN). */
  | { kind: "walk" }
  /**
   * Only these container paths (and what lies below them) changed (COPY, ADD, WORKDIR). `noCapabilities`:
   * none of the regular files among `paths` carries `security.capability` (files the step created afresh
   * without xattrs); `capabilities`: the attribute of these files (any of them, descendants too) is
   * known. The layer writer need not read it for either.
   */
  | { kind: "paths"; paths: string[]; noCapabilities?: boolean; capabilities?: KnownCapabilities }
  /** These existing, unchanged entries only — no descendants (WORKDIR of an existing directory). */
  | { kind: "entries"; paths: string[] }
  /** Nothing changed. */
  | { kind: "none" };

/** Result of one filesystem step. */
export interface StepOutput {
  snapshot: Snapshot;
  /** Text after the keyword in the history's `created_by`. */
  detail: string;
  /** Paths the step changed outside what its snapshot finds (created before an overlay was mounted). */
  alsoChanged?: string[];
}
