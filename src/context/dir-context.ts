import { lstat, readdir, readlink, realpath, stat } from "node:fs/promises";
import type { Stats } from "node:fs";
import path from "node:path";
import { KilnError } from "../common/errors.js";
import { PatternMatcher, globMatch } from "../dockerfile/index.js";

/** One file or directory of the context that a COPY/ADD source names. */
export interface ContextSource {
  /** Path relative to the context root, "/"-separated, no leading "./" ("" is the root itself). */
  rel: string;
  /** Absolute host path (inside the context root). */
  abs: string;
  /** lstat of the entry (after following the named path's own symlink, see {@link DirContext.resolve}). */
  stat: Stats;
}

const GLOB_CHARS = /[*?[\\]/;

/**
 * A build context on the local filesystem with `.dockerignore` applied. Every path it returns lies
 * inside the context root: `..` is clamped at the root and symlinks named by a source are resolved
 * inside the root, never outside (Docker copies a link found inside a copied directory as a link).
 */
export class DirContext {
  readonly root: string;
  private readonly matcher: PatternMatcher;

  private constructor(root: string, patterns: string[]) {
    this.root = root;
    this.matcher = new PatternMatcher(patterns);
  }

  /** Opens a context directory; fails with CONTEXT_NOT_FOUND when it does not exist. */
  static async open(dir: string, ignorePatterns: string[]): Promise<DirContext> {
    let root: string;
    try {
      root = await realpath(dir);
      if (!(await stat(root)).isDirectory()) throw new Error("not a directory");
    } catch {
      throw new KilnError("CONTEXT_NOT_FOUND", `build context ${dir}: no such directory`);
    }
    return new DirContext(root, ignorePatterns);
  }

  /** True when the context-relative path is excluded by .dockerignore. */
  isExcluded(rel: string): boolean {
    return rel !== "" && this.matcher.matches(rel);
  }

  /** Whether .dockerignore has `!` re-includes (an excluded dir may then still contain included files). */
  get hasExclusions(): boolean {
    return this.matcher.exclusions;
  }

  /**
   * Expands one COPY/ADD source (after variable expansion) to the context entries it names:
   * wildcards match per path component (Go filepath.Match), a plain path must exist. Excluded
   * entries are invisible. Returns [] for a wildcard without matches.
   */
  async resolve(source: string): Promise<ContextSource[]> {
    const rel = cleanRel(source);
    if (!GLOB_CHARS.test(rel)) {
      const { abs, real, hidden } = await this.locate(rel, true);
      const st = await lstatOrUndefined(abs);
      if (!st || this.isExcluded(rel) || this.invisible(real, hidden, st)) {
        throw new KilnError(
          "COPY_SOURCE_NOT_FOUND",
          `"/${rel}": not found in the build context (or excluded by .dockerignore)`,
        );
      }
      return [{ rel, abs, stat: st }];
    }
    const parts = rel.split("/");
    let current: string[] = [""];
    for (const part of parts) {
      const next: string[] = [];
      for (const dirRel of current) {
        if (!GLOB_CHARS.test(part)) {
          next.push(dirRel === "" ? part : `${dirRel}/${part}`);
          continue;
        }
        const dirAbs = (await this.locate(dirRel, true)).abs;
        let names: string[];
        try {
          names = await readdir(dirAbs);
        } catch {
          continue;
        }
        for (const n of names.sort()) if (globMatch(part, n)) next.push(dirRel === "" ? n : `${dirRel}/${n}`);
      }
      current = next;
    }
    const out: ContextSource[] = [];
    for (const r of current) {
      if (this.isExcluded(r)) continue;
      const { abs, real, hidden } = await this.locate(r, true);
      const st = await lstatOrUndefined(abs);
      if (st && !this.invisible(real, hidden, st)) out.push({ rel: r, abs, stat: st });
    }
    return out;
  }

  /**
   * Lists the entries below a context directory (recursively, sorted, excluded ones skipped; an
   * excluded directory is still entered when `!` patterns could re-include something in it).
   */
  async *walk(dirRel: string): AsyncGenerator<ContextSource> {
    const { abs: dirAbs, real } = await this.locate(dirRel, true);
    const names = (await readdir(dirAbs)).sort();
    for (const n of names) {
      const rel = dirRel === "" ? n : `${dirRel}/${n}`;
      const abs = path.join(dirAbs, n);
      const st = await lstat(abs);
      // Below a symlinked directory, .dockerignore applies to where the entries really are too.
      const excluded = this.isExcluded(rel) || (real !== dirRel && this.isExcluded(real === "" ? n : `${real}/${n}`));
      if (!excluded) yield { rel, abs, stat: st };
      if (st.isDirectory() && (!excluded || this.hasExclusions)) yield* this.walk(rel);
    }
  }

  /**
   * A context entry named by its relative path, followed when it is a symlink, inside the context root
   * (never on the host); undefined when nothing exists there inside the root. For the symlinks a walk
   * yields, which a wildcard source may match.
   */
  async follow(rel: string): Promise<ContextSource | undefined> {
    const { abs, real, hidden } = await this.locate(rel, true);
    const st = await lstatOrUndefined(abs);
    return st && !this.invisible(real, hidden, st) ? { rel, abs, stat: st } : undefined;
  }

  /**
   * Whether a path reached through symlinks is absent from the context Docker would send: .dockerignore
   * excludes where it really is, or a link on the way (`hidden`). BuildKit sends the tree without the
   * excluded entries, so a link to one leads nowhere ("not found"), and kiln must not read it either.
   * An excluded directory stays when `!` patterns may re-include entries in it (its walk filters them).
   */
  private invisible(real: string, hidden: boolean, st: Stats): boolean {
    if (hidden) return true;
    return this.isExcluded(real) && !(st.isDirectory() && this.hasExclusions);
  }

  /**
   * Host path of a context-relative path, resolving symlinks in its components inside the context
   * root (and the final component too when `followFinal`), so a link can never lead outside; with the
   * context-relative path it really names, and whether a symlink followed on the way is excluded.
   */
  private async locate(rel: string, followFinal: boolean): Promise<{ abs: string; real: string; hidden: boolean }> {
    const parts = rel === "" ? [] : rel.split("/");
    const resolved: string[] = [];
    let hops = 0;
    let hidden = false;
    const queue = [...parts];
    while (queue.length > 0) {
      const part = queue.shift() as string;
      if (part === "" || part === ".") continue;
      if (part === "..") {
        resolved.pop();
        continue;
      }
      const candidate = path.join(this.root, ...resolved, part);
      const st = await lstatOrUndefined(candidate);
      if (st?.isSymbolicLink() && (queue.length > 0 || followFinal)) {
        if (++hops > 40)
          throw new KilnError("CONTEXT_LOOP", `too many symbolic links resolving "${rel}" in the build context`);
        if (this.isExcluded([...resolved, part].join("/"))) hidden = true;
        const target = await readlink(candidate);
        if (target.startsWith("/")) resolved.length = 0;
        queue.unshift(...target.split("/"));
        continue;
      }
      resolved.push(part);
    }
    return { abs: path.join(this.root, ...resolved), real: resolved.join("/"), hidden };
  }
}

/** Cleans a source path relative to the context root ("./a/../b/" → "b", "/x" → "x", ".." → ""). */
export function cleanRel(p: string): string {
  const parts: string[] = [];
  for (const s of p.split("/")) {
    if (s === "" || s === ".") continue;
    if (s === "..") parts.pop();
    else parts.push(s);
  }
  return parts.join("/");
}

async function lstatOrUndefined(p: string): Promise<Stats | undefined> {
  try {
    return await lstat(p);
  } catch {
    return undefined;
  }
}
