import { mkdir, mkdtemp, readFile, rm, stat } from "node:fs/promises";
import path from "node:path";
import { errorMessage, KilnError } from "../common/errors.js";
import { stepError } from "./errors.js";
import { DirContext, loadIgnorePatterns } from "../context/index.js";
import {
  envFromPairs,
  expandWord,
  findStage,
  parseDockerfile,
  PLATFORM_ARGS,
  PROXY_ARGS,
  stagesNeeded,
  type Stage,
} from "../dockerfile/index.js";
import { chooseSnapshotter, IgnoreList, resolveInRoot, type Snapshotter } from "../fs/index.js";
import type { Digest } from "../image/digest.js";
import { assembleImage, convertImageFormat, emptyImage, MAX_COMPRESSION_LEVEL } from "../image/index.js";
import { familyOf, layerMediaType, type ManifestFamily } from "../image/media-types.js";
import type { HistoryEntry, Image, ImageConfigFile, Layer, Platform } from "../image/types.js";
import { parseReference, type DeferredCancellation, type RegistryClient } from "../registry/index.js";
import { findCachedBase, LayerCache, openCacheStore } from "../cache/index.js";
import { hostDetectionFs, isInContainer, spreadSubdirectories, type Runner } from "../run/index.js";
import type { Reporter } from "./events.js";
import { keepsStateFiles, type BuildOptions } from "./options.js";
import { writeOutputs } from "./outputs.js";
import { assertNoSecretBuildArgs, secretBuildArgValues } from "./secret-build-args.js";
import { SecretKeyGuard } from "./secret-key-guard.js";
import { cleanRoot } from "./clean-root.js";
import { decideInPlace, ignoreWithVolumes, inPlaceIgnoreOptions, restoreRootFiles, saveRootFiles } from "./in-place.js";
import { planBuild, type BuildPlan } from "./dry-run.js";
import {
  assertStrict,
  checkSkipped,
  fromPlatformWarning,
  strictReporter,
  strictViolations,
  undefinedFromArgs,
} from "./strict.js";
import { imageCreatedFromHistory } from "./history-times.js";
import { retryPolicy, withRetries } from "./retry.js";
import { CACHED_STEP_KINDS, stepSlot } from "./cache-inputs.js";
import { openBuildLayerStore, StageRoot, type BuildLayerStore } from "./stage-root.js";
import { earlierStage, layersUnreadStages, stageUses } from "./stage-uses.js";
import { keepBaseCopies } from "./kept-bases.js";
import { PushAhead } from "./push-ahead.js";
import { buildStage, type StageResult } from "./stage.js";

/** Everything a build needs from its environment; nothing is global. */
export interface BuildDeps {
  registry: RegistryClient;
  /** Creates (once) the runner for RUN steps; called only when a RUN executes. */
  runner: () => Promise<Runner>;
  report: Reporter;
  now: () => Date;
  /**
   * Removes the build's working directory (stage roots, spooled layers) at the end. Default: deleted
   * before `build` returns. The CLI hands it to a detached process instead (src/cli/discard-dir.ts).
   * Not used with `cleanup` (`--cleanup`): the directory is then always deleted before `build` returns.
   */
  discardDir?: (dir: string) => Promise<void>;
}

/** What a successful build produced. */
export interface BuildResult {
  digest: Digest;
  image: Image;
  pushed: { ref: string; digest: Digest }[];
  /**
   * Set by `--dryrun`: what the build would do. Nothing was built, so `image`/`digest` are then the
   * final stage's resolved base image (the empty image for scratch).
   */
  plan?: BuildPlan;
}

interface BuiltStage extends StageResult {
  image: Image;
}

/** What a stage is built FROM: scratch, an earlier stage, or an image (by its expanded reference). */
type StageBase = { kind: "scratch" } | { kind: "stage"; stage: Stage } | { kind: "image"; ref: string };

/** Platform build args (TARGETPLATFORM …, BUILDPLATFORM …) for a target platform; kiln builds natively. */
export function platformArgs(p: Platform): Map<string, string> {
  const plat = [p.os, p.architecture, p.variant].filter(Boolean).join("/");
  const m = new Map<string, string>();
  for (const prefix of ["TARGET", "BUILD"]) {
    m.set(`${prefix}PLATFORM`, plat);
    m.set(`${prefix}OS`, p.os);
    m.set(`${prefix}ARCH`, p.architecture);
    m.set(`${prefix}VARIANT`, p.variant ?? "");
  }
  return m;
}

/**
 * Builds the Dockerfile in `opts` and writes every requested output. Stages the target does not
 * need are skipped; a stage's base layers are only downloaded when one of its steps needs the
 * filesystem. Throws KilnError subclasses (RunFailedError carries the failing RUN's exit code).
 */
export async function build(opts: Readonly<BuildOptions>, deps: BuildDeps, signal?: AbortSignal): Promise<BuildResult> {
  // The push-permission check's upload sessions are cancelled in the background; however the build ends,
  // it returns only after the check settled and those cancellations ended (the caller closes the client).
  // A build that fails stops the check (its POST retries) rather than waiting for it, but not the
  // cancellations: only an interrupt (the build's own signal) stops those.
  const stopCheck = new AbortController();
  const check: PushCheckWork = {
    signal: signal ? AbortSignal.any([signal, stopCheck.signal]) : stopCheck.signal,
    settled: Promise.resolve(),
    cancellations: [],
  };
  try {
    return await buildWith(opts, deps, signal, check);
  } catch (e) {
    stopCheck.abort();
    throw e;
  } finally {
    await check.settled;
    await Promise.all(check.cancellations);
  }
}

/** Background work of the push-permission check that {@link build} waits for before it returns. */
interface PushCheckWork {
  /** The check's signal: the build's, and aborted when the build fails. */
  signal: AbortSignal;
  /** The check itself, never rejecting. */
  settled: Promise<unknown>;
  /** Its upload sessions' cancellations (DELETE), never rejecting. */
  cancellations: Promise<void>[];
}

async function buildWith(
  opts: Readonly<BuildOptions>,
  deps: BuildDeps,
  signal: AbortSignal | undefined,
  check: PushCheckWork,
): Promise<BuildResult> {
  const report = strictReporter(deps.report, opts.strict === true);
  let text: string;
  let dockerfilePath = opts.dockerfilePath;
  try {
    text = await readFile(dockerfilePath, "utf8");
  } catch {
    // Like BuildKit, a context without `Dockerfile` may name it `dockerfile`. Its symlinks are followed only
    // inside the Dockerfile's directory: in a fetched (untrusted) context, a `dockerfile` link to a host file
    // would otherwise be read, and a parse error would print its first line.
    try {
      if (path.basename(dockerfilePath) !== "Dockerfile") throw new Error("not the default name");
      const lower = path.join(path.dirname(dockerfilePath), "dockerfile");
      text = await readFile(await resolveInRoot(path.dirname(lower), "dockerfile", { followFinal: true }), "utf8");
      dockerfilePath = lower; // its name, not its target's: `dockerfile.dockerignore` goes with it
    } catch {
      throw new KilnError("DOCKERFILE_NOT_FOUND", `Dockerfile ${opts.dockerfilePath}: no such file`);
    }
  }
  const df = parseDockerfile(text, { file: opts.dockerfileName });
  if (opts.strict) assertStrict(strictViolations(df.warnings, opts.dockerfileName));
  for (const w of df.warnings) report({ kind: "warning", code: w.code, message: w.message });
  const context = await DirContext.open(opts.contextDir, await loadIgnorePatterns(opts.contextDir, dockerfilePath));

  // Meta ARGs (before the first FROM) are visible to FROM lines; platform args are predefined there.
  const consumedArgs = new Set<string>();
  const metaArgs = new Map<string, string | undefined>();
  const fromEnv = new Map<string, string>(platformArgs(opts.platform));
  const metaSecrets = new SecretKeyGuard(
    opts.secretBuildArgs ?? [],
    secretBuildArgValues(opts.buildArgs, opts.secretBuildArgs),
  );
  for (const a of df.metaArgs) {
    for (const kv of a.args) {
      let value: string | undefined;
      if (Object.prototype.hasOwnProperty.call(opts.buildArgs, kv.key)) {
        value = opts.buildArgs[kv.key];
        consumedArgs.add(kv.key);
      } else if (kv.value !== undefined) {
        value = expandWord(kv.value, envFromPairs(fromEnv), df.escapeToken).value;
      }
      metaArgs.set(kv.key, value);
      if (value !== undefined) fromEnv.set(kv.key, value);
      else fromEnv.delete(kv.key);
    }
    // A meta ARG set from a secret build arg is one itself in the stages that declare it.
    metaSecrets.note(
      {
        ...a,
        args: a.args.map((kv) => (Object.prototype.hasOwnProperty.call(opts.buildArgs, kv.key) ? { key: kv.key } : kv)),
      },
      { ...a, args: a.args.map((kv) => ({ key: kv.key, value: metaArgs.get(kv.key) ?? "" })) },
    );
  }
  // BuildKit: a global `ARG SOURCE_DATE_EPOCH=<n>` default sets the epoch when no build-arg or env gives one.
  const sdeDefault = metaArgs.get("SOURCE_DATE_EPOCH");
  if (opts.epoch === undefined && sdeDefault !== undefined && sdeDefault !== "") {
    if (!/^\d+$/.test(sdeDefault)) throw new KilnError("ARG_INVALID", `invalid SOURCE_DATE_EPOCH: ${sdeDefault}`);
    opts = { ...opts, epoch: Number(sdeDefault) };
  }
  const expandFrom = (s: string): string => expandWord(s, envFromPairs(fromEnv), df.escapeToken).value;
  const stages = stagesNeeded(df, opts.target, (s) => s.from.image, expandFrom);
  const baseOf = (st: Stage): StageBase => {
    const ref = expandFrom(st.from.image);
    if (ref.toLowerCase() === "scratch") return { kind: "scratch" }; // even when a stage is named scratch
    const stage = findStage(df.stages.slice(0, st.index), ref);
    return stage ? { kind: "stage", stage } : { kind: "image", ref };
  };
  // What an in-stage `ARG X` without a value takes when no build-arg is given: a global ARG's value, else
  // a predefined arg (the platform args and TARGETSTAGE, the target stage's name or "default").
  const stageArgDefaults = new Map<string, string | undefined>(platformArgs(opts.platform));
  stageArgDefaults.set("TARGETSTAGE", stages.at(-1)?.name ?? "default");
  for (const [k, v] of metaArgs) if (v !== undefined || !stageArgDefaults.has(k)) stageArgDefaults.set(k, v);

  for (const st of stages) {
    const line = st.from.range.start;
    const w = st.from.platform ? fromPlatformWarning(expandFrom(st.from.platform), opts.platform, line) : undefined;
    if (w) report({ kind: "warning", code: w.code, message: `${opts.dockerfileName}:${line}: ${w.message}` });
  }
  if (opts.strict && !checkSkipped(df.directives, "UndefinedArgInFrom")) {
    const used = (w: string | undefined) => (w ? expandWord(w, envFromPairs(fromEnv), df.escapeToken).unmatched : []);
    const unset = (st: Stage) =>
      undefinedFromArgs(
        [...used(st.from.image), ...used(st.from.platform)],
        (k) => metaArgs.has(k),
        opts.dockerfileName,
        st.from.range.start,
      );
    assertStrict(stages.flatMap(unset));
  }

  let runner: Promise<Runner> | undefined;
  let snapshotter: Promise<Snapshotter> | undefined;
  const inPlacePossible =
    opts.isolation === "in-place" || (opts.isolation === "auto" && isInContainer(hostDetectionFs));
  const everyRunExecutes = !opts.cache && stages.some((st) => st.instructions.some((i) => i.kind === "run"));
  // Base images are pulled once per build (memoized, with retries), whoever asks first.
  const pulled = new Map<string, Promise<Image>>();
  // With --cache, a FROM by digest is served from the warmer's --cache-dir without the registry.
  const pullOrCached = async (ref: string): Promise<Image> => {
    const parsed = parseReference(ref);
    if (opts.cache) {
      const img = await findCachedBase(deps.registry, parsed, {
        cacheDir: opts.cache.baseDir,
        ttlMs: opts.cache.ttlMs,
        now: deps.now(),
        platform: opts.platform,
        ...(signal ? { signal } : {}),
      }).catch((e: unknown) => {
        report({
          kind: "warning",
          code: "BASE_CACHE_UNUSABLE",
          message: `base-image cache ${opts.cache?.baseDir} not used for ${ref}: ${e instanceof Error ? e.message : String(e)}`,
        });
        return undefined;
      });
      if (img) {
        report({ kind: "info", message: `Found ${ref} in local cache ${opts.cache.baseDir}` });
        return img;
      }
    }
    return deps.registry.pullImage(parsed, { platform: opts.platform, signal });
  };
  const pull = (ref: string): Promise<Image> => {
    let p = pulled.get(ref);
    if (!p) {
      const t0 = Date.now();
      report({ kind: "info", message: `Retrieving image manifest ${ref}` });
      p = withRetries(
        () => pullOrCached(ref),
        retryPolicy(opts.imageDownloadRetry, opts.retryFirstDelayMs),
        (attempt, e) =>
          report({
            kind: "warning",
            code: "PULL_RETRY",
            message: `retrieving ${ref} failed (${e instanceof Error ? e.message : String(e)}); retry ${attempt}`,
          }),
        signal,
      ).then((img) => {
        report({ kind: "phase", phase: "pull", ms: Date.now() - t0 });
        return img;
      });
      pulled.set(ref, p);
    }
    return p;
  };
  // Base manifests are fetched meanwhile (with --cache, the base-image cache is consulted first).
  if (!opts.dryRun) {
    for (const st of stages) {
      const base = baseOf(st);
      if (base.kind === "image") pull(base.ref).catch(() => {}); // memoized: awaited (and reported) by the stage
    }
  }
  // kaniko checks push permissions before building. The checks run alongside the base pulls, the cache
  // lookups (both read-only) and the extraction of stage roots (in the build's own directory); every step
  // that executes awaits them (cache hits and metadata instructions do not), and so does the push. Their
  // failure is reported in place of any other error.
  // The check's upload sessions are cancelled in the background (build() waits for them before returning).
  const pushCheck = checkPushPermissions(opts, deps.registry, check.signal, {
    add: (c) => check.cancellations.push(c),
    ...(signal ? { signal } : {}),
  });
  check.settled = pushCheck.catch(() => {}); // awaited below
  // The final stage's layers go to the destinations while the build runs (after the check passed).
  const ahead = PushAhead.start(opts, deps.registry, pushCheck, signal);
  if (opts.dryRun) await pushCheck;
  if (opts.dryRun) {
    const { plan, finalBase } = await planBuild({
      opts,
      stages,
      allStages: df.stages,
      expandFrom,
      pull: (ref) => deps.registry.pullImage(parseReference(ref), { platform: opts.platform, signal }),
      report,
      context,
      argDefaults: stageArgDefaults,
      escapeToken: df.escapeToken,
    });
    const image = finalBase ?? emptyImage(opts.platform, opts.imageFormat ?? "oci");
    return { digest: image.digest, image, pushed: [], plan };
  }

  const layerCache = opts.cache
    ? new LayerCache({
        store: openCacheStore(opts.cache.repo, opts.destinations, deps.registry, opts.platform),
        platform: opts.platform,
        ttlMs: opts.cache.ttlMs,
        write: !opts.cache.noPush,
        now: deps.now,
        onWarning: (message) => report({ kind: "warning", code: "CACHE_WRITE_FAILED", message }),
      })
    : undefined;
  // The latest entry of every step position is read now, alongside the push check and the base pulls
  // (stage indices assume no ONBUILD triggers; buildStage reads any other positions itself). The base
  // manifests were asked for first (above): a stage's steps wait for its base, not for the other positions.
  // One prefetch per stage: where the cache store keeps chain records, a stage's positions are one read.
  // Before the in-place decision below: in a container it waits for the isolation probe, which a fully
  // cached build does not otherwise wait for.
  for (const st of layerCache ? stages : []) {
    layerCache?.prefetch(
      st.instructions.flatMap((instr, i) =>
        CACHED_STEP_KINDS.has(instr.kind) ? [stepSlot(opts.dockerfileName, st, i)] : [],
      ),
      signal,
    );
  }

  // The isolation probe (a helper spawn) runs only when its answer is needed. It starts now, once the push
  // check, the base manifest pulls and the cache reads are on their way (spawning takes the main thread a
  // few ms), when the in-place decision below needs it (in a container, or --isolation=in-place) or when
  // every RUN executes (no --cache); else at the first RUN that misses the cache. Its failure surfaces where
  // it is awaited.
  if (!opts.dryRun && (inPlacePossible || everyRunExecutes)) {
    runner = deps.runner();
    runner.catch(() => {});
  }

  // The state dir is marked before this build's directory is made in it, so that the directory rarely
  // lands where the last build's was just deleted (see spreadSubdirectories); the helper runs meanwhile.
  const spread = mkdir(opts.stateDir, { recursive: true }).then(
    () => spreadSubdirectories(opts.stateDir, undefined, { writeMarker: keepsStateFiles(opts) }),
    (e: unknown) => ({ spread: false, reason: String(e) }),
  );
  // In place (kaniko's model), "/" is every stage's root: stages then build one after the other.
  const inPlaceIgnore = inPlacePossible ? await decideInPlace(opts, () => (runner ??= deps.runner())) : undefined;
  const inPlace = inPlaceIgnore !== undefined;
  const inPlaceOnly = [
    opts.preCleanup && "--pre-cleanup",
    opts.preserveContext && "--preserve-context",
    opts.materialize && "--materialize",
  ].filter((f): f is string => typeof f === "string");
  if (!inPlace && inPlaceOnly.length > 0) {
    report({
      kind: "warning",
      code: "IN_PLACE_FLAG_IGNORED",
      message: `${inPlaceOnly.join(", ")} ignored: they act on the in-place back-end's root, and this build uses its own directories`,
    });
  }
  await mkdir(opts.stateDir, { recursive: true });
  const spreadResult = await spread;
  if (!spreadResult.spread) report({ kind: "debug", message: `state dir not spread: ${spreadResult.reason}` });
  const extractRetry = retryPolicy(opts.imageFsExtractRetry, opts.retryFirstDelayMs);
  const runDir = await mkdtemp(path.join(opts.stateDir, "build-"));
  const blobsDir = path.join(runDir, "blobs");
  // --layer-store: stage and image roots become overlay mounts of stored layers where overlay works.
  let rootStore: BuildLayerStore | undefined;
  try {
    if (opts.layerStore && !inPlace)
      rootStore = await openBuildLayerStore(opts.layerStore, opts.stateDir, runDir, report, async () => {
        snapshotter ??= chooseRunSnapshotter(opts, () => (runner ??= deps.runner()), report);
        return (await snapshotter).kind === "overlay";
      });
    await mkdir(blobsDir, { recursive: true });
  } catch (e) {
    // Before the build's own try: its tidy-up does not cover these yet.
    await rootStore?.close().catch(() => undefined);
    await rm(runDir, { recursive: true, force: true }).catch(() => undefined);
    throw e;
  }
  let storeClosed: Promise<void> | undefined;
  const closeStore = (): Promise<void> => (storeClosed ??= rootStore?.close() ?? Promise.resolve());
  const ignore = inPlaceIgnore ?? IgnoreList.create({ ignorePaths: opts.ignorePaths });
  // Base images of the stages whose layers reach the output image: the layers an output reads again keep a
  // local copy of their blob once extracted (no second download), and each is pushed ahead once it has one.
  const onKept = (l: Layer): void => ahead?.localFileReady(l);
  const keptBases = new Map<string, Promise<Image>>();
  const stageBase = (ref: string): Promise<Image> => {
    let p = keptBases.get(ref);
    if (!p) {
      p = pull(ref).then((img) => keepBaseCopies(img, blobsDir, opts, onKept));
      keptBases.set(ref, p);
    }
    return p;
  };
  const stageCopies = new Map<number, StageRoot>();
  let liveRootOwner: number | undefined;
  const results = new Map<number, BuiltStage>();
  const imageRoots = new Map<string, Promise<DirContext>>();
  const fromRoot = async (ref: string, current: Stage): Promise<DirContext> => {
    const st = earlierStage(df.stages, current.index, ref, expandFrom);
    if (st) {
      const r = await stageDone(st.index, ref, current);
      if (r.layersOmitted && (inPlace || !r.root.materialized)) {
        throw new KilnError(
          "INTERNAL",
          `stage ${st.index} produced no layers but its root must be extracted from them`,
        );
      }
      let root = r.root;
      if (inPlace) {
        // "/" moves on to later stages: read an earlier stage from its own extraction.
        root = stageCopies.get(st.index) ?? new StageRoot(path.join(runDir, `stage-copy-${st.index}`));
        stageCopies.set(st.index, root);
      }
      // stageSignal (set before any stage runs): a failing stage stops this extraction too.
      await root.ensure(r.layers, ignore, report, st.index, stageSignal);
      return DirContext.open(root.dir, []);
    }
    let p = imageRoots.get(ref);
    if (!p) {
      const dir = path.join(runDir, `image-${imageRoots.size}`);
      p = (async () => {
        const img = await pull(ref);
        const root = new StageRoot(dir, extractRetry, undefined, rootStore);
        await root.ensure(img.layers, undefined, report, current.index, stageSignal);
        return DirContext.open(root.dir, []);
      })();
      imageRoots.set(ref, p);
    }
    return p;
  };

  /** Cache identity of a COPY --from source: a built stage's chain key, or an image's manifest digest. */
  const cacheIdentity = async (ref: string, current: Stage): Promise<string | undefined> => {
    const st = earlierStage(df.stages, current.index, ref, expandFrom);
    if (st) return (await done.get(st.index))?.cacheChain;
    return (await pull(ref)).digest;
  };

  // Stages build concurrently; a stage waits for the stages it uses (FROM, COPY --from, --mount from=).
  const done = new Map<number, Promise<BuiltStage>>();
  const stageAbort = new AbortController();
  const stageSignal = signal ? AbortSignal.any([signal, stageAbort.signal]) : stageAbort.signal;
  // A refused push permission stops the stages at once (whatever they are extracting or probing).
  pushCheck.catch((e: unknown) => stageAbort.abort(e));
  const uses = stageUses(stages, df.stages, expandFrom);
  // Stages whose layers reach the output image: the target and its FROM ancestors. The layers of the
  // others (used only through COPY --from / --mount from=) never leave the build: spooled uncompressed.
  const outputStages = new Set<number>();
  for (let st = stages[stages.length - 1]; st !== undefined;) {
    outputStages.add(st.index);
    const base = baseOf(st);
    st = base.kind === "stage" ? base.stage : undefined;
  }
  // Stages read only through COPY --from / --mount from= write no layer blobs (their roots are read, not
  // their layers). The layer cache keys and stores layers, and in place an earlier stage is re-extracted
  // from its layers: both keep them. A base image's ONBUILD trigger can name a stage that is then built
  // late, FROM one of these: layers are skipped only once every base image is known to carry no trigger.
  const unreadLayers =
    inPlace || opts.cache ? new Set<number>() : layersUnreadStages(stages, df.stages, uses, outputStages);
  let noBaseTriggers: Promise<boolean> | undefined;
  const baseTriggersAbsent = (): Promise<boolean> =>
    (noBaseTriggers ??= Promise.all(
      stages.flatMap((st) => {
        const base = baseOf(st);
        return base.kind === "image" ? [pull(base.ref)] : [];
      }),
    ).then(
      (images) => images.every((img) => (img.config.config?.OnBuild ?? []).length === 0),
      () => false, // the failing pull is reported by its stage
    ));
  // A stage named only by an ONBUILD trigger (seen once the base image's config is read) starts on first use.
  let startLate: ((st: Stage) => Promise<BuiltStage>) | undefined;
  const stageDone = (index: number, ref: string, current: Stage): Promise<BuiltStage> => {
    let p = done.get(index);
    const late = df.stages[index];
    if (!p && startLate && late && index < current.index) {
      p = startLate(late);
      done.set(index, p);
    }
    if (!p) throw new KilnError("STAGE_NOT_BUILT", `stage "${ref}" was not built before stage ${current.index}`);
    return p;
  };

  try {
    // In place: --preserve-context saves the container's own files (extracted under every stage's base
    // unless --pre-cleanup, and restored after --cleanup); --pre-cleanup empties "/" before the build.
    if (inPlace) await pushCheck; // "/" is not touched before the push check passed
    const preserved =
      inPlace && opts.preserveContext ? await saveRootFiles("/", ignore, blobsDir, report, signal) : undefined;
    if (inPlace && opts.preCleanup) await cleanRoot("/", ignore, signal);
    const underlay = preserved && !opts.preCleanup ? [preserved] : [];
    const volumeBase = inPlace ? await inPlaceIgnoreOptions(opts) : {};
    const buildOne = async (stage: Stage): Promise<BuiltStage> => {
      const fromRef = expandFrom(stage.from.image);
      report({ kind: "stage-start", stage: stage.index, name: stage.name, base: fromRef });
      let baseImage: Image;
      let family: ManifestFamily;
      let handedOver: StageRoot | undefined;
      const base = baseOf(stage);
      const prior = base.kind === "stage" ? base.stage : undefined;
      if (base.kind === "scratch") {
        family = opts.imageFormat ?? "oci";
        baseImage = emptyImage(opts.platform, family);
      } else if (prior) {
        const r = await stageDone(prior.index, fromRef, stage);
        if (r.layersOmitted) {
          throw new KilnError(
            "INTERNAL",
            `stage ${prior.index} produced no layers but stage ${stage.index} is built FROM it`,
          );
        }
        baseImage = r.image;
        family = r.family;
        // The only user of a stage's filesystem is this FROM: take its root over, no re-extraction.
        const u = uses.get(prior.index);
        const live = !inPlace || liveRootOwner === prior.index;
        if (live && r.root.materialized && u?.total === 1 && u.asBase === 1 && (r.config.OnBuild ?? []).length === 0) {
          handedOver = r.root.handOver();
        }
      } else {
        try {
          const keep = opts.keepBaseCopies !== false && outputStages.has(stage.index);
          baseImage = keep ? await stageBase(fromRef) : await pull(fromRef);
        } catch (e) {
          // A base that cannot be pulled (a bad reference, 401, 404, …) names its FROM line.
          if (signal?.aborted) throw e;
          throw stepError(`${opts.dockerfileName}:${stage.from.range.start}`, stage.from.original, e);
        }
        family = familyOf(baseImage.mediaType);
        report({ kind: "base-resolved", stage: stage.index, ref: fromRef, digest: baseImage.digest });
        // --image-format: the stage's manifest, config and every layer (base ones relabelled) use that family.
        if (opts.imageFormat) {
          baseImage = convertImageFormat(baseImage, opts.imageFormat);
          family = opts.imageFormat;
        }
      }
      const isFinal = stage === stages[stages.length - 1];
      if (isFinal) ahead?.add(baseImage.layers);
      // A Docker-format image carries gzip layers: zstd falls back to gzip, and a zstd level above gzip's
      // 9 to gzip's default (kaniko #3147 failed the build there).
      const gzipOnly = family === "docker" && opts.compression !== "gzip";
      const level =
        gzipOnly && (opts.compressionLevel ?? 0) > MAX_COMPRESSION_LEVEL.gzip ? undefined : opts.compressionLevel;
      if (gzipOnly) {
        const dropped = level === opts.compressionLevel ? "" : ` and --compression-level=${opts.compressionLevel}`;
        report({
          kind: "warning",
          code: "COMPRESSION_IGNORED",
          message: `stage ${stage.index}: --compression=${opts.compression}${dropped} ${dropped ? "are" : "is"} ignored: a Docker-format image carries gzip layers only (use --image-format=oci)`,
        });
      }
      const r = await buildStage(
        stage,
        {
          image: baseImage,
          family,
          rootDir: path.join(runDir, `stage-${stage.index}`),
          ...(handedOver
            ? { root: handedOver }
            : inPlace
              ? { root: new StageRoot("/", extractRetry, ignore) }
              : rootStore
                ? {
                    root: new StageRoot(path.join(runDir, `stage-${stage.index}`), extractRetry, undefined, rootStore),
                  }
                : {}),
          ...(prior
            ? {
                cacheSeed: results.get(prior.index)?.cacheChain,
                inheritedArgs: results.get(prior.index)?.args,
                inheritedSecrets: results.get(prior.index)?.derivedSecrets,
              }
            : {}),
          scratch: base.kind === "scratch",
        },
        {
          opts,
          tmpDir: runDir,
          df,
          dockerfileName: opts.dockerfileName,
          context,
          buildArgs: opts.buildArgs,
          metaArgs: stageArgDefaults,
          metaSecrets: metaSecrets.derived(),
          consumedArgs,
          sink: {
            blobsDir,
            compression: family === "docker" ? "gzip" : opts.compression,
            level,
            mediaType: layerMediaType(family, family === "docker" ? "gzip" : opts.compression),
            epoch: opts.epoch,
            spoolUncompressed: !outputStages.has(stage.index),
          },
          ignore,
          ...(inPlace
            ? { underlay, ignoreWithVolumes: (v: readonly string[]) => ignoreWithVolumes(volumeBase, v) }
            : {}),
          runner: () => (runner ??= deps.runner()),
          snapshotter: () => (snapshotter ??= chooseRunSnapshotter(opts, () => (runner ??= deps.runner()), report)),
          fromRoot: (ref) => fromRoot(ref, stage),
          report,
          now: opts.epoch !== undefined ? () => new Date((opts.epoch as number) * 1000) : deps.now,
          signal: stageSignal,
          beforeExecute: () => pushCheck,
          ...(layerCache && opts.cache
            ? {
                cache: {
                  layers: layerCache,
                  runLayers: opts.cache.runLayers,
                  copyLayers: opts.cache.copyLayers,
                  explain: opts.cache.explain,
                  stopAtFirstMiss: opts.cache.stopAtFirstMiss === true,
                },
                fromKey: (ref: string) => cacheIdentity(ref, stage),
              }
            : {}),
          ...(unreadLayers.has(stage.index) ? { layersUnread: baseTriggersAbsent } : {}),
          // A skeleton root only where roots are extracted and nothing but this stage reads its root.
          skeletonCopy: opts.skeletonCopy !== false && !inPlace && !rootStore && !uses.get(stage.index)?.total,
          ...(rootStore && layerCache && opts.cache
            ? { publishLayer: (l: Layer, stack: readonly Layer[]) => rootStore.publish(l, stack, stageSignal) }
            : {}),
          ...(isFinal && ahead ? { layerAdded: (l: Layer) => ahead.add([l]) } : {}),
        },
      );
      const image = assembleImage({
        family,
        config: stageConfig(
          baseImage.config,
          r,
          stage === stages[stages.length - 1] ? opts.labels : {},
          created(opts, deps, r.history),
        ),
        layers: r.layers,
        annotations: opts.annotations,
      });
      const built: BuiltStage = { ...r, image };
      results.set(stage.index, built);
      if (inPlace && r.root.materialized) liveRootOwner = stage.index;
      return built;
    };
    if (!inPlace) {
      startLate = (st) => {
        const p = buildOne(st);
        p.catch(() => undefined); // awaited (and its error reported) by the stage that asked for it
        return p;
      };
    }
    let firstError: unknown;
    for (const stage of stages) {
      const p = buildOne(stage);
      p.catch((e: unknown) => {
        if (firstError === undefined) firstError = e;
        stageAbort.abort(e);
      });
      done.set(stage.index, p);
      if (inPlace) await p.catch(() => undefined);
    }
    await Promise.allSettled(done.values());
    if (firstError !== undefined) {
      await pushCheck; // a refused push permission is the error kaniko reports
      throw firstError;
    }
    for (const k of Object.keys(opts.buildArgs)) {
      if (!consumedArgs.has(k) && !PLATFORM_ARGS.includes(k) && !PROXY_ARGS.includes(k)) {
        report({
          kind: "warning",
          code: "UNUSED_BUILD_ARG",
          message: `[Warning] One or more build-args [${k}] were not consumed`,
        });
      }
    }
    const last = stages[stages.length - 1];
    const final = last ? results.get(last.index) : undefined;
    if (!final) throw new KilnError("INTERNAL", "no stage was built");
    assertNoSecretBuildArgs(final.image.config, opts.buildArgs, opts.secretBuildArgs, final.derivedSecrets);
    if (Object.keys(opts.annotations).length > 0 && final.image.manifest.annotations === undefined) {
      report({
        kind: "warning",
        code: "ANNOTATIONS_DROPPED",
        message: `--annotation is not written: the image has Docker media types (a Docker base, or --image-format=docker), whose manifests carry no annotations; build with --image-format=oci to keep them`,
      });
    }
    // --materialize: "/" ends up holding the final stage's filesystem even when no step needed it.
    if (inPlace && opts.materialize && last) {
      await final.root.ensure([...underlay, ...final.layers], ignore, report, last.index, signal);
    }
    await pushCheck; // a fully cached build executed no step: the check is awaited here
    // Every stage is built and the outputs read layer blobs, not stage roots: store-mounted roots are
    // unmounted (a helper run each) while the image is written and pushed.
    closeStore().catch(() => undefined); // awaited below
    const { pushed } = await writeOutputs(final.image, opts, deps.registry, report, signal);
    await ahead?.close(); // the image's blobs are all pushed: nothing the image needs is stopped
    if (inPlace && opts.cleanup) {
      await cleanRoot("/", ignore, signal, { pruneEmpty: true });
      if (preserved) await restoreRootFiles("/", preserved, ignore, report, signal);
    }
    return { digest: final.image.digest, image: final.image, pushed };
  } finally {
    // Each step of the tidy-up on its own: one that fails is a warning, and neither hides the build's own
    // outcome (an image already pushed) nor skips the steps after it.
    const tidy = async (what: string, step: () => Promise<unknown>): Promise<void> => {
      try {
        await step();
      } catch (e) {
        report({ kind: "warning", code: "BUILD_CLEANUP", message: `${what} failed: ${errorMessage(e)}` });
      }
    };
    await tidy("stopping the pushes started during the build", async () => ahead?.close()); // they read spooled layers
    await tidy("flushing the layer cache", async () => layerCache?.flush()); // cache writes read spooled layers under runDir
    await tidy("closing the layer store", closeStore); // unmounts store-mounted roots before runDir is deleted
    // --cleanup promises a root as found when the build ends: the build dir goes before `build` returns.
    const discard = opts.cleanup ? undefined : deps.discardDir;
    await tidy(`removing the build directory ${runDir}`, () =>
      (discard ?? ((d: string) => rm(d, { recursive: true, force: true })))(runDir),
    );
  }
}

/** The config of a built stage: the base's platform fields, the stage's runtime config and history. */
function stageConfig(
  base: ImageConfigFile,
  r: StageResult,
  labels: Record<string, string>,
  createdAt: string,
): ImageConfigFile {
  const config = { ...r.config };
  if (Object.keys(labels).length > 0) config.Labels = { ...(config.Labels ?? {}), ...labels };
  const out: ImageConfigFile = {
    architecture: base.architecture,
    os: base.os,
    ...(base.variant ? { variant: base.variant } : {}),
    ...(base["os.version"] ? { "os.version": base["os.version"] } : {}),
    created: createdAt,
    ...(r.author ? { author: r.author } : {}),
    config,
    rootfs: { type: "layers", diff_ids: [] },
    history: r.history,
  };
  return out;
}

/** The image's `created`: the epoch when one is set, else BuildKit's (the last history entry's time, else now). */
function created(opts: Readonly<BuildOptions>, deps: BuildDeps, history: readonly HistoryEntry[] = []): string {
  if (opts.epoch !== undefined) return new Date(opts.epoch * 1000).toISOString();
  return imageCreatedFromHistory(history, deps.now().toISOString());
}

/** True when both directories exist on one filesystem (a probe made elsewhere says nothing about here). */
async function sameFilesystem(a: string | undefined, b: string): Promise<boolean> {
  if (a === undefined) return false;
  try {
    const [sa, sb] = await Promise.all([stat(a), stat(b)]);
    return sa.dev === sb.dev;
  } catch {
    return false;
  }
}

/**
 * Picks the RUN snapshot back-end once per build: the overlay back-end when the runner can mount an
 * overlay over a root under the state dir (chroot with mount namespaces, as root: the probe's `overlay`),
 * else the metadata walk. `--snapshot-mode` values all map onto these (see chooseSnapshotter).
 */
async function chooseRunSnapshotter(
  opts: Readonly<BuildOptions>,
  runner: () => Promise<Runner>,
  report: Reporter,
): Promise<Snapshotter> {
  const r = await runner();
  const overlayOk =
    r.isolation === "chroot" &&
    r.capabilities.overlay &&
    !opts.disableOverlay &&
    (await sameFilesystem(r.capabilities.overlayDir, opts.stateDir));
  const s = chooseSnapshotter(opts.snapshotMode ?? "full", overlayOk);
  report({ kind: "debug", message: `RUN snapshots: ${s.kind} back-end` });
  return s;
}

/**
 * kaniko's push-permission pre-check of every destination (skipped with --no-push or
 * --skip-push-permission-check), all in parallel; rejects with the first destination's failure in
 * flag order.
 */
async function checkPushPermissions(
  opts: Readonly<BuildOptions>,
  registry: RegistryClient,
  signal: AbortSignal | undefined,
  defer: DeferredCancellation,
): Promise<void> {
  if (opts.noPush) return;
  const refs = opts.destinations.map((d) => parseReference(d));
  // One GET per destination tag: the blobs it holds now need no existence check at push time.
  if (!opts.dryRun) for (const ref of refs) void registry.prefetchPushState(ref, signal);
  if (opts.skipPushPermissionCheck) return;
  // The check cancels its upload session (kaniko's behaviour). Keeping it for the push's first upload saves
  // a POST and a DELETE, but a registry restarted while that upload completed was seen to answer 500 on every
  // retry (test/reliability/faults.test.ts), so the session is not kept. The check passes once the session is
  // open; its cancellation goes to `defer`, so that a push waiting on the check does not wait for the DELETE.
  const results = await Promise.allSettled(refs.map((ref) => registry.checkPushPermission(ref, signal, defer)));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) throw failed.reason;
}
