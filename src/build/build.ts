import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import path from "node:path";
import { KilnError } from "../common/errors.js";
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
import { IgnoreList } from "../fs/index.js";
import type { Digest } from "../image/digest.js";
import { assembleImage, emptyImage } from "../image/index.js";
import { familyOf, layerMediaType, type ManifestFamily } from "../image/media-types.js";
import type { Image, ImageConfigFile, Platform } from "../image/types.js";
import { parseReference, type RegistryClient } from "../registry/index.js";
import type { Runner } from "../run/index.js";
import type { Reporter } from "./events.js";
import type { BuildOptions } from "./options.js";
import { writeOutputs } from "./outputs.js";
import { StageRoot } from "./stage-root.js";
import { buildStage, type StageResult } from "./stage.js";

/** Everything a build needs from its environment; nothing is global. */
export interface BuildDeps {
  registry: RegistryClient;
  /** Creates (once) the runner for RUN steps; called only when a RUN executes. */
  runner: () => Promise<Runner>;
  report: Reporter;
  now: () => Date;
}

/** What a successful build produced. */
export interface BuildResult {
  digest: Digest;
  image: Image;
  pushed: { ref: string; digest: Digest }[];
}

interface BuiltStage extends StageResult {
  image: Image;
}

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
  const report = deps.report;
  let text: string;
  try {
    text = await readFile(opts.dockerfilePath, "utf8");
  } catch {
    throw new KilnError("DOCKERFILE_NOT_FOUND", `Dockerfile ${opts.dockerfilePath}: no such file`);
  }
  const df = parseDockerfile(text, { file: opts.dockerfileName });
  for (const w of df.warnings) report({ kind: "warning", code: w.code, message: w.message });
  const context = await DirContext.open(
    opts.contextDir,
    await loadIgnorePatterns(opts.contextDir, opts.dockerfilePath),
  );

  // Meta ARGs (before the first FROM) are visible to FROM lines; platform args are predefined there.
  const consumedArgs = new Set<string>();
  const metaArgs = new Map<string, string | undefined>();
  const fromEnv = new Map<string, string>(platformArgs(opts.platform));
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
  }
  const expandFrom = (s: string): string => expandWord(s, envFromPairs(fromEnv), df.escapeToken).value;
  const stages = stagesNeeded(df, opts.target, (s) => s.from.image, expandFrom);

  if (!opts.noPush && !opts.skipPushPermissionCheck) {
    for (const d of opts.destinations) await deps.registry.checkPushPermission(parseReference(d), signal);
  }

  await mkdir(opts.stateDir, { recursive: true });
  const runDir = await mkdtemp(path.join(opts.stateDir, "build-"));
  const blobsDir = path.join(runDir, "blobs");
  await mkdir(blobsDir, { recursive: true });
  const ignore = IgnoreList.create({ ignorePaths: opts.ignorePaths });
  const results = new Map<number, BuiltStage>();
  const imageRoots = new Map<string, Promise<DirContext>>();
  const pulled = new Map<string, Promise<Image>>();

  const pull = (ref: string): Promise<Image> => {
    let p = pulled.get(ref);
    if (!p) {
      const t0 = Date.now();
      report({ kind: "info", message: `Retrieving image manifest ${ref}` });
      p = deps.registry.pullImage(parseReference(ref), { platform: opts.platform, signal }).then((img) => {
        report({ kind: "phase", phase: "pull", ms: Date.now() - t0 });
        return img;
      });
      pulled.set(ref, p);
    }
    return p;
  };

  const fromRoot = async (ref: string, current: Stage): Promise<DirContext> => {
    const st =
      findStage(df.stages.slice(0, current.index), expandFrom(ref)) ??
      findStage(df.stages.slice(0, current.index), ref);
    if (st) {
      const r = results.get(st.index);
      if (!r) throw new KilnError("STAGE_NOT_BUILT", `stage "${ref}" was not built before stage ${current.index}`);
      await r.root.ensure(r.layers, ignore, report, st.index, signal);
      return DirContext.open(r.root.dir, []);
    }
    let p = imageRoots.get(ref);
    if (!p) {
      p = (async () => {
        const img = await pull(ref);
        const root = new StageRoot(path.join(runDir, `image-${imageRoots.size}`));
        await root.ensure(img.layers, undefined, report, current.index, signal);
        return DirContext.open(root.dir, []);
      })();
      imageRoots.set(ref, p);
    }
    return p;
  };

  let runner: Promise<Runner> | undefined;
  try {
    for (const stage of stages) {
      const fromRef = expandFrom(stage.from.image);
      report({ kind: "stage-start", stage: stage.index, name: stage.name, base: fromRef });
      let baseImage: Image;
      let family: ManifestFamily;
      const prior =
        fromRef.toLowerCase() === "scratch" ? undefined : findStage(df.stages.slice(0, stage.index), fromRef);
      if (fromRef.toLowerCase() === "scratch") {
        baseImage = emptyImage(opts.platform, "oci");
        family = "oci";
      } else if (prior) {
        const r = results.get(prior.index);
        if (!r) throw new KilnError("STAGE_NOT_BUILT", `stage "${fromRef}" was not built`);
        baseImage = r.image;
        family = r.family;
      } else {
        baseImage = await pull(fromRef);
        family = familyOf(baseImage.mediaType);
        report({ kind: "base-resolved", stage: stage.index, ref: fromRef, digest: baseImage.digest });
      }
      const r = await buildStage(
        stage,
        { image: baseImage, family, rootDir: path.join(runDir, `stage-${stage.index}`) },
        {
          opts,
          tmpDir: runDir,
          df,
          dockerfileName: opts.dockerfileName,
          context,
          buildArgs: opts.buildArgs,
          metaArgs,
          consumedArgs,
          sink: {
            blobsDir,
            compression: family === "docker" ? "gzip" : opts.compression,
            level: opts.compressionLevel,
            mediaType: layerMediaType(family, family === "docker" ? "gzip" : opts.compression),
            epoch: opts.epoch,
          },
          ignore,
          runner: () => (runner ??= deps.runner()),
          fromRoot: (ref) => fromRoot(ref, stage),
          report,
          now: opts.epoch !== undefined ? () => new Date((opts.epoch as number) * 1000) : deps.now,
          signal,
        },
      );
      const image = assembleImage({
        family,
        config: stageConfig(
          baseImage.config,
          r,
          stage === stages[stages.length - 1] ? opts.labels : {},
          created(opts, deps),
        ),
        layers: r.layers,
        annotations: opts.annotations,
      });
      results.set(stage.index, { ...r, image });
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
    const { pushed } = await writeOutputs(final.image, opts, deps.registry, report, signal);
    return { digest: final.image.digest, image: final.image, pushed };
  } finally {
    await rm(runDir, { recursive: true, force: true });
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

function created(opts: Readonly<BuildOptions>, deps: BuildDeps): string {
  if (opts.epoch !== undefined) return new Date(opts.epoch * 1000).toISOString();
  return deps.now().toISOString();
}
