import { compositeKey, fileFingerprint, type KeyInput } from "../cache/index.js";
import type { DirContext } from "../context/index.js";
import type { Instruction } from "../dockerfile/index.js";
import { splitEnv } from "./env.js";
import { isGitSource, isRemoteSource } from "./steps/add-git.js";
import { matchSources } from "./steps/copy-sources.js";

/** The instruction after expansion, without its source position (moving a line must not bust the cache). */
export function instructionText(instr: Instruction): string {
  return JSON.stringify(instr, (k, v: unknown) => (k === "range" || k === "location" ? undefined : v));
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
 * Fingerprints of every build-context entry a COPY/ADD reads (after `.dockerignore`): each source
 * is resolved like the copy does, directories are walked, and every entry contributes
 * `file:<path>` → {@link fileFingerprint}. A source matching nothing contributes a `missing:` input.
 */
export async function contextFileInputs(context: DirContext, sources: readonly string[]): Promise<KeyInput[]> {
  const seen = new Map<string, string>();
  for (const s of sources) {
    // Matched exactly as the copy matches them (`**` included; symlinks followed inside the context).
    const matched = await matchSources(context, [s], { parents: false, excludes: [] });
    if (matched.length === 0) seen.set(`missing:${s}`, "");
    for (const m of matched) {
      const st = m.stat;
      seen.set(`file:${m.rel || "."}`, await fileFingerprint(m.abs, st));
      if (st.isDirectory()) {
        for await (const c of context.walk(m.rel)) seen.set(`file:${c.rel}`, await fileFingerprint(c.abs, c.stat));
      }
    }
  }
  return [...seen.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
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
