import * as path from "node:path";
import { assertNever, KilnError } from "../common/errors.js";
import {
  envFromPairs,
  expandInstruction,
  parseInstructionLine,
  PROXY_ARGS,
  type Dockerfile,
  type Instruction,
  type Stage,
} from "../dockerfile/index.js";
import { compositeKey, inputFingerprints, type KeyInput, type LayerCache } from "../cache/index.js";
import type { DirContext } from "../context/index.js";
import { changesForPaths, walkChanges, type Changes, type IgnoreList, type Snapshotter } from "../fs/index.js";
import type { ContainerConfig, HistoryEntry, Image, Layer } from "../image/types.js";
import type { ManifestFamily } from "../image/media-types.js";
import type { Runner } from "../run/index.js";
import {
  cacheMountSeedInputs,
  CACHED_STEP_KINDS,
  contextFileInputs,
  instructionText,
  pinnedDownloads,
  stepSlot,
  visibleInputs,
} from "./cache-inputs.js";
import { DEFAULT_PATH, getEnv, setEnv, splitEnv } from "./env.js";
import { stepError } from "./errors.js";
import type { CacheOutcome, Reporter } from "./events.js";
import { createdBy, exposeHistory, healthcheckHistory, quoteList } from "./history.js";
import { fillHistoryTimes } from "./history-times.js";
import { changesEmpty, layerFromChanges, publishedLayer, type LayerSink } from "./layer-from-changes.js";
import {
  cloneConfig,
  commandArgv,
  healthConfig,
  parseExposedPorts,
  resolveWorkdir,
  validateStopSignal,
} from "./metadata.js";
import { applyCaptured } from "./apply-captured.js";
import { recordOfIndex, skeletonHolds, type SkeletonRoot } from "./skeleton-root.js";
import { skeletonForCopy } from "./skeleton-sources.js";
import { StageRoot } from "./stage-root.js";
import { assertVarsDefined, checkSkipped } from "./strict.js";
import { execCopy } from "./steps/copy-step.js";
import { isRemoteSource } from "./steps/add-git.js";
import { execRun, runHistoryDetail } from "./steps/run.js";
import type { StepContext, StepOutput } from "./steps/step-context.js";
import { execWorkdir } from "./steps/workdir.js";
import { secretBuildArgValues } from "./secret-build-args.js";
import { SecretKeyGuard, type DerivedSecret } from "./secret-key-guard.js";
import { resolveIdentity, type Identity } from "./user.js";
import type { BuildOptions } from "./options.js";
import { retryPolicy } from "./retry.js";

/** The output of a built stage. */
export interface StageResult {
  author: string | undefined;
  config: ContainerConfig;
  history: HistoryEntry[];
  layers: Layer[];
  root: StageRoot;
  family: ManifestFamily;
  /** Cache chain key after the last step (identifies the stage's filesystem); set when caching. */
  cacheChain?: string;
  /** ARGs in scope at the end of the stage: a stage built FROM this one starts with them (BuildKit). */
  args: ReadonlyMap<string, string | undefined>;
  /** ARG and ENV names set from secret build args, in this stage or the one it is built FROM. */
  derivedSecrets: readonly DerivedSecret[];
  /**
   * Some steps changed the root but produced no layer because nothing reads this stage's layers
   * ({@link StageServices.layersUnread}): `layers` then does not describe the root, only `root` does.
   */
  layersOmitted?: boolean;
}

/** The layer cache as a stage uses it (`--cache`). */
export interface StageCache {
  layers: LayerCache;
  /** Cache RUN results (`--cache-run-layers`). */
  runLayers: boolean;
  /** Cache COPY/ADD results (`--cache-copy-layers`). */
  copyLayers: boolean;
  /** Explain every miss (`--explain-cache`). */
  explain: boolean;
  /** Stop looking entries up after the stage's first miss, like kaniko (a bench-only switch). */
  stopAtFirstMiss?: boolean;
}

/** Services a stage needs from the build that runs it. */
export interface StageServices {
  opts: Readonly<BuildOptions>;
  /** Scratch directory of the build (never part of a layer). */
  tmpDir: string;
  df: Dockerfile;
  dockerfileName: string;
  context: DirContext;
  buildArgs: Readonly<Record<string, string | undefined>>;
  /** Values of meta ARGs (declared before the first FROM) after --build-arg overrides. */
  metaArgs: ReadonlyMap<string, string | undefined>;
  /** Meta ARGs set from a secret build arg (`ARG T2=${TOKEN#ghp_}` before the first FROM). */
  metaSecrets?: readonly DerivedSecret[];
  /** Build args consumed by some ARG (for the unused-build-arg warning). */
  consumedArgs: Set<string>;
  sink: LayerSink;
  ignore: IgnoreList | undefined;
  /** In place: the ignore list plus this stage's VOLUME paths (kaniko ignores what lies below a volume). */
  ignoreWithVolumes?(volumes: readonly string[]): IgnoreList;
  /** Layers extracted under the stage's base when its root materialises (in place: `--preserve-context`). */
  underlay?: readonly Layer[];
  runner(): Promise<Runner>;
  /** The RUN snapshot back-end of this build (overlay where it works, else the metadata walk). */
  snapshotter(): Promise<Snapshotter>;
  /** Root of another stage or image named by COPY --from (materialised). */
  fromRoot(ref: string): Promise<DirContext>;
  report: Reporter;
  now(): Date;
  signal?: AbortSignal;
  /** The layer cache; undefined without `--cache`. */
  cache?: StageCache;
  /**
   * Awaited before a step executes (a cache hit or a metadata instruction does not wait): kaniko's
   * push-permission check, which must pass before any step runs. Its rejection fails the step.
   */
  beforeExecute?(): Promise<void>;
  /** Cache identity of a COPY --from source: a stage's chain key or an image digest (undefined: not cacheable). */
  fromKey?(ref: string): Promise<string | undefined>;
  /**
   * Resolves true when nothing will read this stage's layers (later stages read only its root, through
   * COPY --from / RUN --mount from=): its steps then update the root and its index but tar and spool
   * nothing. Asked once, before the stage's first layer; undefined: layers are always produced.
   */
  layersUnread?(): Promise<boolean>;
  /**
   * A COPY after which the stage needs no filesystem (no later RUN, COPY, ADD or WORKDIR) may work on a
   * skeleton of the root instead of the extracted root ({@link buildSkeletonRoot}): set when nothing else
   * reads this stage's root (no later stage uses it) and roots are extracted (not in place, no layer store).
   */
  skeletonCopy?: boolean;
  /**
   * Keeps a layer a missed step produced in the layer store (with `--layer-store` and `--cache`);
   * `stack`: the stage's layers up to and including it, base first (see `BuildLayerStore.publish`).
   */
  publishLayer?(layer: Layer, stack: readonly Layer[]): void;
  /** Called with each layer the stage adds to its base's (a cache hit's included), in order. */
  layerAdded?(layer: Layer): void;
}

/** Base of a stage: its image, and the root directory to build in. */
export interface StageBase {
  image: Image;
  family: ManifestFamily;
  rootDir: string;
  /** An already materialised root holding exactly `image`'s layers (handed over by a FROM stage). */
  root?: StageRoot;
  /** Seed of the stage's cache chain: a previous stage's chain key; default: the base image digest. */
  cacheSeed?: string;
  /** ARGs of the stage this one is built FROM (BuildKit keeps them in scope). */
  inheritedArgs?: ReadonlyMap<string, string | undefined>;
  /** ARG and ENV names the stage this one is built FROM set from secret build args. */
  inheritedSecrets?: readonly DerivedSecret[];
  /** FROM scratch: BuildKit gives the image WorkingDir "/". */
  scratch?: boolean;
}

/**
 * Executes the instructions of one stage over its base image. Metadata instructions are pure
 * updates of the config; RUN, COPY, ADD and WORKDIR touch the stage root (materialised on first
 * need) and produce at most one layer each. Returns the stage's image parts.
 */
export async function buildStage(stage: Stage, base: StageBase, svc: StageServices): Promise<StageResult> {
  const baseCfg = base.image.config;
  let config = cloneConfig(baseCfg.config);
  if (getEnv(config.Env ?? [], "PATH") === undefined) config.Env = setEnv(config.Env ?? [], "PATH", DEFAULT_PATH);
  const history: HistoryEntry[] = [...(baseCfg.history ?? [])];
  const layers: Layer[] = [...base.image.layers];
  const addLayer = (layer: Layer): void => {
    layers.push(layer);
    svc.layerAdded?.(layer);
  };
  const root =
    base.root ?? new StageRoot(base.rootDir, retryPolicy(svc.opts.imageFsExtractRetry, svc.opts.retryFirstDelayMs));
  const args = new Map<string, string | undefined>(base.inheritedArgs ?? []);
  if (base.scratch && !config.WorkingDir) config.WorkingDir = "/";
  let author = typeof baseCfg.author === "string" ? baseCfg.author : undefined;
  let cmdSetInStage = false;

  // ONBUILD triggers of the base image run first, then the child image does not inherit them. They come
  // from the base's config, not this Dockerfile: errors name the FROM line that brought them.
  const fromLine = `${svc.dockerfileName}:${stage.from.range.start}`;
  const triggers: Instruction[] = (config.OnBuild ?? []).map((t) => {
    try {
      return {
        ...parseInstructionLine(t),
        range: stage.from.range,
      };
    } catch (e) {
      throw stepError(fromLine, `${stage.from.original} (ONBUILD ${t})`, e);
    }
  });
  // kaniko logs this line for every stage, also when there is nothing to run.
  svc.report({ kind: "info", message: `Executing ${triggers.length} build triggers` });
  config.OnBuild = null;
  delete config.OnBuild;
  const all = [...triggers, ...stage.instructions];

  // Cache hits before the first step that needs the filesystem only append layers; materialising
  // the root then extracts the base and those cached layers together.
  const ensureRoot = async (): Promise<string> => {
    await root.ensure([...(svc.underlay ?? []), ...layers], svc.ignore, svc.report, stage.index, svc.signal, (l) =>
      cache?.layers.artifacts.captureHeaders(l, svc.signal),
    );
    return root.dir;
  };

  // --single-snapshot: steps change the root without snapshots; one layer is taken at the end of the
  // stage (kaniko's flag). The root's index is then left at the base state until that final walk.
  // --force-build-metadata snapshots after every instruction (kaniko), so it overrides --single-snapshot.
  const forceMeta = svc.opts.forceBuildMetadata === true;
  const single = svc.opts.singleSnapshot && !forceMeta;
  const cache = single ? undefined : svc.cache;
  const secrets = new SecretKeyGuard(
    svc.opts.secretBuildArgs ?? [],
    secretBuildArgValues(svc.opts.buildArgs, svc.opts.secretBuildArgs),
    base.inheritedSecrets,
  );
  let chain = cache
    ? compositeKey([
        ["base", base.cacheSeed ?? base.image.digest],
        ["platform", [base.image.config.os, base.image.config.architecture, base.image.config.variant ?? ""].join("/")],
        ["layer", `${svc.sink.mediaType} epoch=${svc.sink.epoch ?? "none"}`],
        // --force-build-metadata gives a step that changed nothing an empty layer: another result.
        ["force-build-metadata", String(forceMeta)],
        ["ignore", userIgnoreFingerprint(svc)],
      ])
    : "";
  /** The cache's verdict on the current step (for its step-done event). */
  let outcome: CacheOutcome | undefined;
  /** The chain key after a step: the filesystem before it plus the exact layer it added. */
  const advanceChain = (layer: Layer | undefined): void => {
    if (cache)
      chain = compositeKey([
        ["parent", chain],
        ["result", layer ? layer.diffId : "none"],
      ]);
  };

  /** Position of step `i` in the Dockerfile: where its latest cache entry is recorded (for prefetch and explain). */
  const slotOf = (i: number): string => stepSlot(svc.dockerfileName, stage, i);
  // A rebuild probes every step's latest entry at once instead of one round trip per step in turn
  // (build() starts these reads before the base is resolved; memoized, so repeating them is free).
  const cacheSlots = cache ? all.flatMap((instr, i) => (CACHED_STEP_KINDS.has(instr.kind) ? [slotOf(i)] : [])) : [];
  if (cache) cache.layers.prefetch(cacheSlots, svc.signal);
  /** kaniko's probing (bench-only switch): after the first miss of the stage, no further lookups. */
  let missedOnce = false;

  const lookup = () => {
    const pairs = new Map<string, string>();
    for (const [k, v] of args) if (v !== undefined) pairs.set(k, v);
    for (const e of config.Env ?? []) {
      const [k, v] = splitEnv(e);
      pairs.set(k, v);
    }
    return envFromPairs(pairs);
  };

  const addHistory = (instr: Instruction, detail: string, layer: Layer | undefined): void => {
    addHistoryText(createdBy(instr, detail), layer);
  };
  let singleChanged = false;
  // In place, VOLUME paths join the ignore list of later RUN snapshots in this stage (kaniko).
  const stageVolumes: string[] = [];
  let runIgnore = svc.ignore;
  /** Entries of this stage that record no layer: their times are filled in at the end (history-times.ts). */
  const layerless = new Set<HistoryEntry>();
  /**
   * `omitted`: the step changed the root, but its layer was not produced (see `layersWanted`). `at`: when
   * the layer was made (a cache hit's original time); default now.
   */
  const addHistoryText = (text: string, layer: Layer | undefined, omitted = false, at?: Date): void => {
    const entry: HistoryEntry = {
      created: (at ?? svc.now()).toISOString(),
      created_by: text,
      comment: "buildkit.dockerfile.v0",
    };
    if (layer) addLayer(layer);
    else if (!omitted) {
      entry.empty_layer = true;
      layerless.add(entry);
    }
    history.push(entry);
  };
  /** An entry that was recorded without a layer and now records one (made now). */
  const gainsLayer = (entry: HistoryEntry): void => {
    delete entry.empty_layer;
    layerless.delete(entry);
    entry.created = svc.now().toISOString();
  };
  // Layers of a stage nobody reads are not produced (no tar, no spool); the layer cache always needs them.
  let unread: Promise<boolean> | undefined;
  let omittedLayers = 0;
  const layersWanted = async (): Promise<boolean> =>
    svc.cache !== undefined || svc.layersUnread === undefined || !(await (unread ??= svc.layersUnread()));

  const runEnv = (id: Identity): string[] => {
    let env = [...(config.Env ?? [])];
    // Build args in scope (and the predefined proxy args when given) are visible to RUN but not stored.
    for (const [k, v] of args) if (v !== undefined && getEnv(env, k) === undefined) env.push(`${k}=${v}`);
    for (const k of PROXY_ARGS) {
      const v = svc.buildArgs[k];
      if (v !== undefined && !args.has(k) && getEnv(env, k) === undefined) {
        env.push(`${k}=${v}`);
        svc.consumedArgs.add(k);
      }
    }
    if (getEnv(env, "HOME") === undefined) env = setEnv(env, "HOME", id.home);
    return env;
  };

  /**
   * Looks a cacheable step up. On a hit the cached layer is recorded (and applied to the root only
   * if the root already exists) and returned; on a miss returns what the write needs later.
   */
  const probe = async (
    raw: Instruction,
    instr: Instruction,
    i: number,
    extra: () => Promise<KeyInput[] | undefined>,
    hitHistory?: () => string,
  ): Promise<
    | { hit: true; layer: Layer | undefined }
    | { hit: false; key: string; slot: string; fp: Record<string, string> }
    | undefined
  > => {
    if (!cache) return undefined;
    const more = await extra();
    if (!more) {
      outcome = {
        status: "uncacheable",
        reason: `${instr.kind.toUpperCase()} is not cached with these flags or mounts`,
      };
      return undefined;
    }
    // No secret build arg value may reach the cache (see secret-key-guard.ts).
    const keyText = instructionText(instr);
    const secret = secrets.uncacheableBecause(raw, keyText);
    if (secret !== undefined) {
      outcome = {
        status: "uncacheable",
        reason: `${instr.kind.toUpperCase()} uses the secret build arg ${secret}`,
      };
      return undefined;
    }
    const inputs: KeyInput[] = [["parent", chain], ["instruction", keyText], ...secrets.mask(more)];
    const key = compositeKey(inputs);
    const slot = slotOf(i);
    const fp = inputFingerprints(inputs);
    if (cache.stopAtFirstMiss && missedOnce) {
      outcome = { status: "miss", reason: "not looked up after an earlier miss (kaniko's probing)", key };
      return { hit: false, key, slot, fp };
    }
    svc.report({ kind: "info", message: `Checking for cached layer ${cache.layers.description}:${key}...` });
    const found = await cache.layers.lookup(key, svc.signal, slot);
    if (found.hit) {
      const layer = found.entry.layer;
      if (layer && root.materialized) {
        const r = await applyCaptured(
          root.dir,
          await layer.openUncompressed(svc.signal),
          { index: root.index, ignore: svc.ignore, signal: svc.signal },
          cache.layers.artifacts.captureHeaders(layer, svc.signal),
        );
        for (const sk of r.skipped)
          svc.report({ kind: "warning", code: "EXTRACT_SKIPPED", message: `${sk.path}: ${sk.reason}` });
      }
      // The layer's original time (BuildKit keeps it: an unchanged rebuild reproduces the image).
      addHistoryText(
        hitHistory?.() ?? found.entry.record.createdBy,
        layer,
        false,
        svc.sink.epoch === undefined ? found.entry.created : undefined,
      );
      advanceChain(layer);
      outcome = { status: "hit", reason: `cached at ${cache.layers.description}:${key}`, key };
      return { hit: true, layer };
    }
    missedOnce = true;
    if (found.reason !== "absent") {
      outcome = { status: "miss", reason: `no usable entry (entry ${found.reason})`, key };
      return { hit: false, key, slot, fp };
    }
    // The latest entry of this position was read already (prefetch): explaining costs no round trip,
    // so the build report always carries the reason; --explain-cache also logs it.
    const diff = await cache.layers.explain(slot, fp, svc.signal);
    const text =
      diff === undefined
        ? "no earlier build of this step is recorded"
        : diff.length === 0
          ? "the inputs match the latest entry for this step, which is gone"
          : diff.join("; ");
    if (cache.explain) {
      svc.report({
        kind: "info",
        message: `Cache miss at ${svc.dockerfileName}:${raw.range.start} (${raw.original}): ${text}`,
      });
    }
    outcome = { status: "miss", reason: text, key };
    return { hit: false, key, slot, fp };
  };

  /**
   * The skeleton root a COPY works on instead of the stage root, when the root is not extracted yet and no
   * later step of the stage needs it; undefined: use the root. A skeleton that cannot be built is not an
   * error (the root is extracted instead).
   */
  const skeletonFor = async (instr: Instruction, i: number): Promise<SkeletonRoot | undefined> => {
    if (!svc.skeletonCopy || instr.kind !== "copy" || single) return undefined;
    // A numeric owner needs no /etc/passwd (a file, left out of the skeleton).
    if (instr.chown !== undefined && !/^\d+(:\d+)?$/.test(instr.chown)) return undefined;
    // The cached step kinds are exactly the steps that read or change the filesystem.
    if (all.slice(i + 1).some((later) => CACHED_STEP_KINDS.has(later.kind))) return undefined;
    // The filesystem before this COPY, as the cache knows it (the ignore list decides what a root holds).
    const recordKey = cache
      ? compositeKey([
          ["filesystem", chain],
          ["ignore", svc.ignore?.fingerprint ?? ""],
        ])
      : undefined;
    if (root.materialized) {
      // This build has the root: it records the skeleton for builds without local state (encoded now,
      // before the COPY changes the index; only when the cache holds none: one manifest request).
      if (cache && recordKey && (await cache.layers.artifacts.skeletonRecordWanted(recordKey, svc.signal)))
        cache.layers.artifacts.putSkeletonRecord(recordKey, () => recordOfIndex(root.index, recordKey), svc.signal);
      return undefined;
    }
    return skeletonForCopy({
      dir: path.join(svc.tmpDir, `stage-${stage.index}-skeleton`),
      layers,
      stage: stage.index,
      ignore: svc.ignore,
      report: svc.report,
      signal: svc.signal,
      cache: cache && recordKey ? { artifacts: cache.layers.artifacts, recordKey } : undefined,
    });
  };

  /** Runs one filesystem step, snapshots what it changed and records its layer and history. */
  const fsStep = async (
    raw: Instruction,
    instr: Instruction,
    i: number,
    location: string,
    exec: (ctx: StepContext) => Promise<StepOutput>,
    extra: () => Promise<KeyInput[] | undefined> = async () => undefined,
    hitHistory?: () => string,
  ): Promise<Layer | undefined> => {
    const probed = await probe(raw, instr, i, extra, hitHistory);
    if (probed?.hit) return probed.layer;
    if (instr.kind === "run") {
      // The RUN executes: the isolation probe (on first use) and the root's extraction run side by side.
      svc.runner().catch(() => undefined);
      ensureRoot().catch(() => undefined);
    }
    let skeleton = await skeletonFor(instr, i);
    const ctx: StepContext = {
      stageIndex: stage.index,
      step: i + 1,
      location,
      opts: svc.opts,
      config,
      shell: config.Shell ?? ["/bin/sh", "-c"],
      args,
      hiddenArgs: secrets.hiddenArgs(),
      escapeToken: svc.df.escapeToken,
      rootDir: async () => skeleton?.dir ?? ensureRoot(),
      // On a skeleton only numeric owners occur (skeletonFor), which need no root.
      identity: async (spec) => resolveIdentity(skeleton ? undefined : await ensureRoot(), spec ?? config.User),
      runEnv,
      context: svc.context,
      fromRoot: svc.fromRoot,
      runner: svc.runner,
      prepareRun: async () => {
        const dir = await ensureRoot();
        if (single) return undefined;
        prepared = await svc.snapshotter();
        return prepared.beforeRun(dir);
      },
      tmpDir: svc.tmpDir,
      report: svc.report,
      ignore: svc.ignore,
      inPlace: svc.ignoreWithVolumes !== undefined,
      signal: svc.signal,
    };
    let prepared: Snapshotter | undefined;
    let out: StepOutput;
    await svc.beforeExecute?.();
    /**
     * Does the COPY again on the extracted root, after `why` (debug). A skeleton laid out from a record
     * that could not be laid out is replaced in the cache by the root's own (before the COPY changes it).
     */
    const redoOnRoot = async (why: string, badRecord?: string): Promise<StepOutput> => {
      svc.report({ kind: "debug", message: `${location}: ${why}; extracting the root and copying again` });
      skeleton = undefined;
      if (badRecord !== undefined && cache) {
        await ensureRoot();
        cache.layers.artifacts.skeletonRecordUnusable(badRecord);
        cache.layers.artifacts.putSkeletonRecord(badRecord, () => recordOfIndex(root.index, badRecord), svc.signal);
      }
      return exec(ctx);
    };
    try {
      // A skeleton laid out on demand hears of every path the COPY resolves.
      out = await exec(skeleton?.lazy ? { ...ctx, rootHooks: skeleton.lazy } : ctx);
    } catch (e) {
      if (prepared) await prepared.discard(root.dir);
      // On a skeleton laid out from a record, the extracted root decides whether the COPY fails.
      if (!skeleton?.lazy || svc.signal?.aborted) throw e;
      out = await redoOnRoot(`the COPY failed on the skeleton laid out from the cache's record (${String(e)})`);
    }
    let skeletonChanges: Changes | undefined;
    if (skeleton && out.snapshot.kind === "paths") {
      const wereDirs = out.snapshot.paths.filter((p) => skeleton?.index.get(p)?.type === "dir");
      const c = await changesForPaths(skeleton.dir, skeleton.index, out.snapshot.paths, {
        ignore: svc.ignore,
        noCapabilities: out.snapshot.noCapabilities,
        knownCapabilities: out.snapshot.capabilities,
      });
      const failed = skeleton.lazy?.failure;
      if (failed !== undefined) {
        svc.report({
          kind: "warning",
          code: "SKELETON_RECORD_UNUSABLE",
          message: `${location}: the skeleton record in ${cache?.layers.description} could not be laid out (${String(failed)}); extracting the root instead`,
        });
        out = await redoOnRoot("laying out the skeleton failed", skeleton.lazy?.recordKey);
      } else if (skeletonHolds(skeleton, [...out.snapshot.paths, ...c.changed], wereDirs)) {
        skeletonChanges = c;
      } else {
        // It needed a directory where the image holds a file, which the skeleton left out (or re-stamped one
        // of the image's directories): on the extracted root it fails, or does what the full root dictates.
        out = await redoOnRoot(
          "the COPY needs a directory where the image holds a file, or re-stamped a directory of the image",
        );
      }
    }
    if (single) {
      if (out.snapshot.kind !== "none") singleChanged = true;
      addHistoryText(createdBy(raw, out.detail), undefined);
      return undefined;
    }
    const tSnap = Date.now();
    let changes: Changes | undefined;
    if (out.snapshot.kind === "walk") {
      svc.report({ kind: "info", message: "Taking snapshot of full filesystem..." });
      changes = prepared
        ? await prepared.afterRun(root.dir, root.index, {
            ignore: runIgnore,
            signal: svc.signal,
            stack: root.mounted ? (upper) => root.stackUpper(upper, svc.report) : undefined,
          })
        : await walkChanges(root.dir, root.index, { ignore: runIgnore, update: true, signal: svc.signal });
      if (out.alsoChanged && out.alsoChanged.length > 0) {
        const extra = await changesForPaths(root.dir, root.index, out.alsoChanged, { ignore: runIgnore });
        const all = new Set([...changes.changed, ...extra.changed]);
        changes = { ...changes, changed: [...all].sort() };
      }
    } else if (out.snapshot.kind === "paths") {
      svc.report({ kind: "info", message: "Taking snapshot of files..." });
      changes =
        skeletonChanges ??
        (await changesForPaths(root.dir, root.index, out.snapshot.paths, {
          ignore: svc.ignore,
          noCapabilities: out.snapshot.noCapabilities,
          knownCapabilities: out.snapshot.capabilities,
        }));
    } else if (out.snapshot.kind === "entries") {
      // Entries that exist unchanged (the index stays valid): a layer holding just them.
      changes = { changed: [...out.snapshot.paths], deleted: [], opaqueDirs: [] };
    } else if (forceMeta) {
      changes = { changed: [], deleted: [], opaqueDirs: [] };
    }
    // docker build commits a layer for every RUN, also an empty one (kiln matches the layer count).
    const force = out.snapshot.kind === "walk" || forceMeta;
    const omitted = changes !== undefined && (force || !changesEmpty(changes)) && !(await layersWanted());
    const layer =
      changes && !omitted
        ? await layerFromChanges(skeleton?.dir ?? root.dir, changes, svc.sink, svc.signal, { force })
        : undefined;
    if (omitted) omittedLayers++;
    if (layer) svc.report({ kind: "layer-created", stage: stage.index, step: i + 1, layer });
    svc.report({ kind: "phase", phase: "snapshot", ms: Date.now() - tSnap, stage: stage.index });
    const text = createdBy(raw, out.detail);
    // One time for the history entry and the cache entry, so that a later hit reproduces this entry.
    const at = svc.now();
    addHistoryText(text, layer, omitted, at);
    if (cache && probed && !probed.hit) {
      // A stage whose layers are spooled uncompressed still caches a compressed blob.
      const cached = layer && (await publishedLayer(layer, svc.sink, svc.signal));
      cache.layers.put(
        { key: probed.key, slot: probed.slot, inputs: probed.fp, createdBy: text },
        cached,
        svc.signal,
        svc.sink.epoch === undefined ? at : undefined,
      );
      if (layer) svc.publishLayer?.(layer, layers.slice(0, layers.lastIndexOf(layer) + 1));
    }
    advanceChain(layer);
    return layer;
  };

  /**
   * What a RUN can see besides the filesystem: env, build args in scope, USER, WORKDIR, SHELL. The predefined
   * proxy args reach RUN but, as in BuildKit, are not part of the key: changing only a proxy keeps the cache.
   */
  const runInputs = (): KeyInput[] => [
    ...keyedVisibleInputs(),
    ["user", config.User ?? ""],
    ["workdir", config.WorkingDir ?? ""],
    ["shell", JSON.stringify(config.Shell ?? ["/bin/sh", "-c"])],
    // In place, a VOLUME path joins the ignore list of later RUN snapshots: another snapshot of the same run.
    ["volumes", JSON.stringify(stageVolumes)],
  ];

  /**
   * The env and build args in scope, as key inputs. A secret build arg (--secret-build-arg) keys the cache by
   * its name only: no hash of its value is stored in the cache, and rotating the secret does not invalidate
   * cached steps (like --secret).
   */
  // The secret args themselves are keyed by name; names set from them are masked where they hold a part (mask()).
  const secretArgNames = new Set(svc.opts.secretBuildArgs ?? []);
  const keyedVisibleInputs = (): KeyInput[] => {
    const keyArgs = new Map([...args].map(([k, v]) => [k, v !== undefined && secretArgNames.has(k) ? "<secret>" : v]));
    return visibleInputs(config.Env ?? [], keyArgs, {});
  };

  /**
   * What a COPY/ADD reads: the context files it names, or the identity of its --from source. Remote sources
   * are not cached, except the downloads `ADD --checksum=<digest>` pins (as BuildKit keys them by checksum):
   * the URLs and the digest are in the instruction text, so a hit needs no request.
   */
  const copyInputs = async (instr: Instruction & { kind: "copy" | "add" }): Promise<KeyInput[] | undefined> => {
    // What ADD fetches (http(s) URLs, git repositories); everything else, `.git` directories included, is
    // read from the context like any COPY source.
    const remote = (s: string): boolean => instr.kind === "add" && isRemoteSource(s);
    const base: KeyInput[] = [["workdir", config.WorkingDir ?? ""], ...heredocInputs(instr)];
    if (
      instr.kind === "add" &&
      instr.checksum !== undefined &&
      instr.heredocs.length === 0 &&
      pinnedDownloads(instr.sources)
    ) {
      return [...base, ["remote", "pinned by --checksum"]];
    }
    if (instr.sources.some(remote)) return undefined;
    if (instr.from !== undefined) {
      const k = svc.fromKey ? await svc.fromKey(instr.from) : undefined;
      return k === undefined ? undefined : [...base, ["from", k]];
    }
    return [...base, ...(await contextFileInputs(svc.context, instr.sources, instr.excludes))];
  };

  /**
   * A heredoc body whose word is unquoted is expanded with the env and build args in scope and the
   * Dockerfile's escape token when the file is written (copy-step.ts); the key holds the raw body, so it
   * also holds what the expansion reads. The visible inputs, not the expanded body: a body expanding an ENV
   * set from a secret arg would put (part of) the secret in the key, where `keyedVisibleInputs` masks it.
   */
  const heredocInputs = (instr: Instruction & { kind: "copy" | "add" }): KeyInput[] =>
    instr.heredocs.some((h) => h.expand) ? [...keyedVisibleInputs(), ["heredoc-escape", svc.df.escapeToken]] : [];

  for (let i = 0; i < all.length; i++) {
    const raw = all[i] as Instruction;
    const location = `${svc.dockerfileName}:${raw.range.start}`;
    const t0 = Date.now();
    svc.report({
      kind: "step-start",
      stage: stage.index,
      step: i + 1,
      total: all.length,
      instruction: raw.original,
      location,
    });
    let layer: Layer | undefined;
    outcome = cache
      ? { status: "uncacheable", reason: "metadata instruction: folded into the keys of later steps" }
      : undefined;
    try {
      // BuildKit: an ARG default is not evaluated when a build-arg gives the value (`ARG X=${Y:?msg}`).
      const given = (k: string): boolean => Object.prototype.hasOwnProperty.call(svc.buildArgs, k);
      const toExpand: Instruction =
        raw.kind === "arg" ? { ...raw, args: raw.args.map((a) => (given(a.key) ? { key: a.key } : a)) } : raw;
      const expanded = expandInstruction(toExpand, lookup(), svc.df.escapeToken, { file: svc.dockerfileName });
      const instr = expanded.instruction;
      secrets.noteWords(toExpand, instr);
      if (svc.opts.strict && !checkSkipped(svc.df.directives, "UndefinedVar")) {
        const declared = (k: string): boolean => args.has(k) || getEnv(config.Env ?? [], k) !== undefined;
        assertVarsDefined(raw, expanded.unmatched, lookup(), svc.df.escapeToken, declared);
      }
      switch (instr.kind) {
        case "from":
          throw new KilnError("INTERNAL", "FROM inside a stage");
        case "arg": {
          secrets.note(toExpand, instr);
          for (const a of instr.args) {
            let value = a.value;
            if (Object.prototype.hasOwnProperty.call(svc.buildArgs, a.key)) {
              value = svc.buildArgs[a.key];
              svc.consumedArgs.add(a.key);
            } else if (value === undefined && args.get(a.key) !== undefined) {
              value = args.get(a.key); // in scope already (inherited from the stage this one is FROM)
            } else if (value === undefined && svc.metaArgs.has(a.key)) {
              value = svc.metaArgs.get(a.key);
              for (const d of svc.metaSecrets ?? []) if (d.name === a.key) secrets.adopt(d);
            }
            args.set(a.key, value);
          }
          // An ARG set from a secret build arg is recorded by name, like the secret arg itself.
          addHistory(
            raw,
            instr.args
              .map((a) => (a.value === undefined || secrets.hidesArg(a.key) ? a.key : `${a.key}=${a.value}`))
              .join(" "),
            undefined,
          );
          break;
        }
        case "env": {
          secrets.note(toExpand, instr);
          let env = config.Env ?? [];
          for (const p of instr.pairs) env = setEnv(env, p.key, p.value);
          config = { ...config, Env: env };
          addHistory(raw, instr.pairs.map((p) => `${p.key}=${p.value}`).join(" "), undefined);
          break;
        }
        case "label": {
          const labels = { ...(config.Labels ?? {}) };
          for (const p of instr.pairs) labels[p.key] = p.value;
          config = { ...config, Labels: labels };
          addHistory(raw, instr.pairs.map((p) => `${p.key}=${p.value}`).join(" "), undefined);
          break;
        }
        case "maintainer":
          author = instr.value;
          addHistory(raw, instr.value, undefined);
          break;
        case "user":
          config = { ...config, User: instr.value };
          addHistory(raw, instr.value, undefined);
          break;
        case "expose": {
          const ports = { ...(config.ExposedPorts ?? {}) };
          for (const p of parseExposedPorts(instr.values)) ports[p] = {};
          config = { ...config, ExposedPorts: ports };
          addHistory(raw, exposeHistory(instr.values), undefined);
          break;
        }
        case "volume": {
          const vols = { ...(config.Volumes ?? {}) };
          for (const v of instr.values) {
            if (v.trim() === "") throw new KilnError("VOLUME_INVALID", "VOLUME specified can not be an empty string");
            vols[v] = {};
          }
          config = { ...config, Volumes: vols };
          if (svc.ignoreWithVolumes) {
            stageVolumes.push(...instr.values.map((v) => resolveWorkdir(config.WorkingDir, v)));
            runIgnore = svc.ignoreWithVolumes(stageVolumes);
          }
          addHistory(raw, quoteList(instr.values), undefined);
          break;
        }
        case "stopsignal":
          config = { ...config, StopSignal: validateStopSignal(instr.value) };
          addHistory(raw, instr.value, undefined);
          break;
        case "shell":
          if (instr.command.form !== "exec")
            throw new KilnError("SHELL_INVALID", "SHELL requires the arguments to be in JSON form");
          config = { ...config, Shell: [...instr.command.args] };
          addHistory(raw, quoteList(instr.command.args), undefined);
          break;
        case "cmd": {
          const argv = commandArgv(instr.command, config.Shell ?? ["/bin/sh", "-c"]);
          config = { ...config, Cmd: argv };
          cmdSetInStage = true;
          addHistory(raw, quoteList(argv), undefined);
          break;
        }
        case "entrypoint": {
          const argv = commandArgv(instr.command, config.Shell ?? ["/bin/sh", "-c"]);
          config = { ...config, Entrypoint: argv };
          // Docker: an ENTRYPOINT resets a CMD inherited from the base image.
          if (!cmdSetInStage) {
            config = { ...config };
            delete config.Cmd;
          }
          addHistory(raw, quoteList(argv), undefined);
          break;
        }
        case "healthcheck":
          config = { ...config, Healthcheck: healthConfig(instr, config.Shell ?? ["/bin/sh", "-c"]) };
          addHistory(raw, healthcheckHistory(config.Healthcheck ?? {}), undefined);
          break;
        case "onbuild":
          config = { ...config, OnBuild: [...(config.OnBuild ?? []), instr.triggerText] };
          addHistory(raw, instr.triggerText, undefined);
          break;
        case "workdir": {
          const dir = resolveWorkdir(config.WorkingDir, instr.value);
          const previous = config.WorkingDir;
          config = { ...config, WorkingDir: dir };
          layer = await fsStep(
            raw,
            instr,
            i,
            location,
            (ctx) => execWorkdir(dir, ctx, previous),
            async () => [
              ["user", config.User ?? ""],
              ["workdir", dir],
            ],
          );
          break;
        }
        case "run":
          layer = await fsStep(
            raw,
            instr,
            i,
            location,
            (ctx) => execRun(instr, ctx),
            async () => {
              if (!cache?.runLayers || instr.mounts.some((m) => m.type === "bind")) return undefined;
              const seeds = await cacheMountSeedInputs(instr.mounts, svc.fromKey, svc.context);
              return seeds && [...runInputs(), ...seeds];
            },
            // The key sorts the args and leaves out those an ENV hides; the history text lists them as declared.
            () =>
              createdBy(raw, runHistoryDetail(instr, config.Shell ?? ["/bin/sh", "-c"], args, secrets.hiddenArgs())),
          );
          break;
        case "copy":
        case "add":
          layer = await fsStep(
            raw,
            instr,
            i,
            location,
            (ctx) => execCopy(instr, ctx),
            async () => (cache?.copyLayers ? copyInputs(instr) : undefined),
          );
          break;
        default:
          assertNever(instr, "instruction");
      }
      // --force-build-metadata: an instruction that added no layer (metadata, or a step that changed
      // nothing) gets an empty one, as kaniko emits a layer for every command.
      const last = history[history.length - 1];
      if (forceMeta && !layer && last?.empty_layer && !(await layersWanted())) {
        gainsLayer(last);
        omittedLayers++;
      } else if (forceMeta && !layer && last?.empty_layer) {
        layer = await layerFromChanges(root.dir, { changed: [], deleted: [], opaqueDirs: [] }, svc.sink, svc.signal, {
          force: true,
        });
        if (layer) {
          gainsLayer(last);
          addLayer(layer);
          svc.report({ kind: "layer-created", stage: stage.index, step: i + 1, layer });
        }
      }
    } catch (e) {
      throw stepError(location, raw.original, e);
    }
    svc.report({
      kind: "step-done",
      stage: stage.index,
      step: i + 1,
      layer: layer ? { digest: layer.digest, diffId: layer.diffId, size: layer.size } : undefined,
      ms: Date.now() - t0,
      ...(outcome ? { cache: outcome } : {}),
    });
  }

  if (single && singleChanged && root.materialized) {
    svc.report({ kind: "info", message: "Taking snapshot of full filesystem..." });
    const last = stage.instructions.at(-1) ?? stage.from;
    // The one snapshot of the stage fails in the name of its last step (a disk error, a vanished file).
    const located = <T>(p: Promise<T>): Promise<T> =>
      p.catch((e: unknown) => {
        if (svc.signal?.aborted) throw e;
        throw stepError(`${svc.dockerfileName}:${last.range.start}`, `--single-snapshot of stage ${stage.index}`, e);
      });
    const changes = await located(
      walkChanges(root.dir, root.index, { ignore: runIgnore, update: true, signal: svc.signal }),
    );
    const wanted = await layersWanted();
    const layer = wanted
      ? await located(layerFromChanges(root.dir, changes, svc.sink, svc.signal, { force: true }))
      : undefined;
    if (!wanted) omittedLayers++;
    if (layer || !wanted) {
      if (layer) addLayer(layer);
      // The stage's one layer belongs to its last filesystem step's history entry.
      for (let h = history.length - 1; h >= 0; h--) {
        const entry = history[h] as HistoryEntry;
        if (entry.empty_layer && /^(RUN|COPY|ADD|WORKDIR) /.test(entry.created_by ?? "")) {
          gainsLayer(entry);
          break;
        }
      }
    }
  }

  // The stage's positions and the entries they ended with: one chain record for the next build.
  if (cache) cache.layers.commitStage(cacheSlots, svc.signal);
  // Entries without a layer take their neighbours' layer times (with an epoch, every time is the epoch).
  if (svc.sink.epoch === undefined) fillHistoryTimes(history, (h) => !layerless.has(h) && h.created !== undefined);

  if (omittedLayers > 0) {
    svc.report({
      kind: "debug",
      message: `stage ${stage.index}: ${omittedLayers} layer(s) not materialized: nothing reads this stage's layers (only its root, through COPY --from or RUN --mount from=)`,
    });
  }
  return {
    config,
    history,
    layers,
    root,
    family: base.family,
    author,
    args,
    derivedSecrets: secrets.derived(),
    ...(cache ? { cacheChain: chain } : {}),
    ...(omittedLayers > 0 ? { layersOmitted: true } : {}),
  };
}

/**
 * What of the ignore list the user sets, as a key input: `--ignore-path` patterns and whether `/var/run`
 * is ignored (`--ignore-var-run`). A RUN's snapshot leaves ignored paths out, so another list records
 * another layer. Mount points of the host (in place) are left out: they differ from pod to pod, and every
 * build would miss.
 */
function userIgnoreFingerprint(svc: StageServices): string {
  // The flag, not the ignore list's answer: in place the list holds the host's mounts, which differ by pod.
  return JSON.stringify({ paths: svc.opts.ignorePaths ?? [], varRun: svc.opts.ignoreVarRun });
}
