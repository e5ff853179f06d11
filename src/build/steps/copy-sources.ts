import type { Stats } from "node:fs";
import { KilnError } from "../../common/errors.js";
import { cleanRel, type ContextSource, type DirContext } from "../../context/index.js";
import { PatternMatcher, globMatch } from "../../dockerfile/index.js";

/** One context entry a COPY/ADD source matched, ready to copy. */
export interface MatchedSource {
  /** Path relative to the source root ("" = the root itself). */
  rel: string;
  /** Host path (a named symlink already followed inside the source root). */
  abs: string;
  /** Metadata after following a named symlink. */
  stat: Stats;
  /** Container-relative path kept under the destination with `--parents` ("" without it). */
  keep: string;
  /** `--exclude` patterns as a matcher, applied to paths relative to this match. */
  exclude?: PatternMatcher;
}

const GLOB = /[*?[\\]/;

/**
 * Expands the sources of one COPY/ADD against a source root: wildcards per component (`**` spans
 * any number of components), named symlinks followed inside the root, `--exclude` patterns (relative
 * to each matched directory; a matched file is tested by its name), `--parents` keeping the path
 * after the first `/./` pivot (or the whole path). A plain source that does not exist fails; a
 * wildcard without matches contributes nothing.
 */
export async function matchSources(
  from: DirContext,
  sources: readonly string[],
  opts: { parents: boolean; excludes: readonly string[] },
): Promise<MatchedSource[]> {
  const exclude = opts.excludes.length > 0 ? new PatternMatcher([...opts.excludes]) : undefined;
  const out: MatchedSource[] = [];
  for (const raw of sources) {
    const pivotAt = raw.indexOf("/./");
    const pivotDepth = opts.parents && pivotAt >= 0 ? componentCount(cleanRel(raw.slice(0, pivotAt))) : 0;
    const pattern = cleanRel(raw);
    const found = pattern.includes("**") ? await matchDoubleStar(from, pattern) : await from.resolve(pattern);
    for (const walked of found) {
      // A `**` match can be a symlink (a walk does not follow them): it is followed inside the root, like a
      // source named directly, never on the host; a link that leads nowhere inside it matches nothing.
      const m = walked.stat.isSymbolicLink() ? await from.follow(walked.rel) : walked;
      if (m === undefined) continue;
      if (exclude && m.rel !== "" && exclude.matches(lastComponent(m.rel)) && !m.stat.isDirectory()) continue;
      const keep = opts.parents ? m.rel.split("/").slice(pivotDepth).join("/") : "";
      out.push({ rel: m.rel, abs: m.abs, stat: m.stat, keep, ...(exclude ? { exclude } : {}) });
    }
  }
  return out;
}

function componentCount(rel: string): number {
  return rel === "" ? 0 : rel.split("/").length;
}

function lastComponent(rel: string): string {
  const i = rel.lastIndexOf("/");
  return i < 0 ? rel : rel.slice(i + 1);
}

/** Matches a pattern with `**` components by walking below its literal prefix. */
async function matchDoubleStar(from: DirContext, pattern: string): Promise<ContextSource[]> {
  const parts = pattern.split("/");
  const firstGlob = parts.findIndex((p) => GLOB.test(p));
  const prefix = parts.slice(0, firstGlob).join("/");
  const rest = parts.slice(firstGlob);
  const out: ContextSource[] = [];
  let entries: ContextSource[];
  try {
    entries = await from.resolve(prefix);
  } catch {
    return [];
  }
  const base = entries[0];
  // resolve() follows a named symlink inside the root: its stat is the target's.
  if (!base?.stat.isDirectory()) return [];
  for await (const e of from.walk(prefix)) {
    const relInside = prefix === "" ? e.rel : e.rel.slice(prefix.length + 1);
    if (componentsMatch(rest, relInside.split("/"))) out.push(e);
  }
  return out;
}

/** Whether path components match pattern components (`**` = zero or more components). */
export function componentsMatch(pattern: readonly string[], name: readonly string[]): boolean {
  if (pattern.length === 0) return name.length === 0;
  const [head, ...tail] = pattern as [string, ...string[]];
  if (head === "**") {
    for (let i = 0; i <= name.length; i++) if (componentsMatch(tail, name.slice(i))) return true;
    return false;
  }
  if (name.length === 0) return false;
  try {
    return globMatch(head, name[0] as string) && componentsMatch(tail, name.slice(1));
  } catch {
    throw new KilnError("COPY_BAD_PATTERN", `syntax error in COPY source pattern component "${head}"`);
  }
}
