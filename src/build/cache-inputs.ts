import { compositeKey, fileFingerprint, type KeyInput } from "../cache/index.js";
import type { DirContext } from "../context/index.js";
import type { Instruction, RunMount } from "../dockerfile/index.js";
import { splitEnv } from "./env.js";
import { isGitSource, isRemoteSource } from "./steps/add-git.js";
import { matchSources } from "./steps/copy-sources.js";

/**
 * The instruction after expansion, without its source position (moving a line must not bust the cache)
 * and without `original`, the line as written: every field the step acts on is parsed out of it already,
 * so its whitespace, keyword case and line continuations must not bust the cache either.
 */
export function instructionText(instr: Instruction): string {
  return JSON.stringify(instr, (k, v: unknown) =>
    k === "range" || k === "location" || k === "original" ? undefined : v,
  );
}

/** One key input per environment variable and build arg a step can see, sorted by name. */
export function visibleInputs(
  env: readonly string[],
  args: ReadonlyMap<string, string | undefined>,
  proxyArgs: Readonly<Record<string, string | undefined>>,
): KeyInput[] {
  const out: KeyInput[] = [];
  const envNames = new Set<string>();
  for (const e of env) {
    const [k, v] = splitEnv(e);
    envNames.add(k);
    out.push([`env:${k}`, v]);
  }
  for (const [k, v] of args) if (v !== undefined && !envNames.has(k)) out.push([`arg:${k}`, v]);
  for (const [k, v] of Object.entries(proxyArgs)) if (v !== undefined && !args.has(k)) out.push([`arg:${k}`, v]);
  return out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

/**
 * Fingerprints of every build-context entry a COPY/ADD reads (after `.dockerignore` and the
 * instruction's `--exclude` patterns, applied as the copy applies them): each source is resolved like
 * the copy does, directories are walked, and every entry contributes `file:<path>` →
 * {@link fileFingerprint}. A source matching nothing contributes a `missing:` input.
 *
 * Only what the copy carries over is keyed: owners are left out (a context copy writes 0:0 or the
 * `--chown` owner), and a matched directory contributes only its type (the copy creates the destination
 * 0755, owned by `--chown` or root, whatever the source directory's mode and owner). Mode bits of the
 * entries below it, file contents and link targets stay in the key.
 */
export async function contextFileInputs(
  context: DirContext,
  sources: readonly string[],
  excludes: readonly string[] = [],
): Promise<KeyInput[]> {
  const seen = new Map<string, string>();
  for (const s of sources) {
    // Matched exactly as the copy matches them (`**` included; symlinks followed inside the context).
    const matched = await matchSources(context, [s], { parents: false, excludes });
    if (matched.length === 0) seen.set(`missing:${s}`, "");
    for (const m of matched) {
      const st = m.stat;
      if (!st.isDirectory()) {
        seen.set(`file:${m.rel || "."}`, await fileFingerprint(m.abs, st, { owner: false }));
        continue;
      }
      seen.set(`file:${m.rel || "."}`, "dir");
      for await (const c of context.walk(m.rel)) {
        // The copy tests `--exclude` patterns against the path inside the matched directory.
        if (m.exclude?.matches(m.rel === "" ? c.rel : c.rel.slice(m.rel.length + 1))) continue;
        seen.set(`file:${c.rel}`, await fileFingerprint(c.abs, c.stat, { owner: false }));
      }
    }
  }
  return [...seen.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

/**
 * What the `--mount=type=cache` mounts of a RUN seed a new cache directory with (`from=` a stage or image,
 * `source=` inside it or inside the context): one input per seeded mount, so that another seed misses.
 * A `from=` counts by its cache identity (`fromKey`: a stage's chain key or an image digest, as for COPY
 * --from), a context `source=` by the fingerprints of the files it names. Undefined: a `from=` without a
 * cache identity, which keeps the RUN out of the cache.
 */
export async function cacheMountSeedInputs(
  mounts: readonly RunMount[],
  fromKey: ((ref: string) => Promise<string | undefined>) | undefined,
  context: DirContext,
): Promise<KeyInput[] | undefined> {
  const out: KeyInput[] = [];
  for (const [i, m] of mounts.entries()) {
    if (m.type !== "cache" || (m.from === undefined && m.source === undefined)) continue;
    const source = m.source ?? ".";
    if (m.from === undefined) {
      for (const [k, v] of await contextFileInputs(context, [source])) out.push([`mount${i}:${k}`, v]);
      continue;
    }
    const k = fromKey ? await fromKey(m.from) : undefined;
    if (k === undefined) return undefined;
    out.push([`mount${i}:from`, k], [`mount${i}:source`, source]);
  }
  return out;
}

/**
 * Whether every source is an http(s) download (no git repository, no context file): what an
 * `ADD --checksum=<digest>` pins, so that its result can be cached without a request.
 */
export function pinnedDownloads(sources: readonly string[]): boolean {
  return sources.length > 0 && sources.every((s) => isRemoteSource(s) && !isGitSource(s));
}

/** Instruction kinds whose results the layer cache stores (the others are config updates). */
export const CACHED_STEP_KINDS: ReadonlySet<string> = new Set(["run", "copy", "add", "workdir"]);

/**
 * The step position where the latest cache entry of step `i` of a stage is recorded (a `slot-…` tag):
 * Dockerfile name, stage name (or index) and the step's index among the stage's instructions (after
 * the base image's ONBUILD triggers). Independent of every step's inputs, so it can be read ahead.
 */
export function stepSlot(
  dockerfileName: string,
  stage: { name?: string | undefined; index: number },
  i: number,
): string {
  return compositeKey([
    ["dockerfile", dockerfileName],
    ["stage", stage.name ?? String(stage.index)],
    ["step", String(i)],
  ]);
}
