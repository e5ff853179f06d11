import { cleanContainerPath } from "./clean-path.js";
import { globMatch, validateGlob } from "../common/glob-match.js";
import { parseMountinfo } from "./mountinfo.js";

/** Options of {@link IgnoreList.create}; every field is optional. */
export interface IgnoreListOptions {
  /** kiln's own state directory inside the root (kaniko's `/kaniko`), ignored with everything below. */
  stateDir?: string;
  /** Ignore `/var/run` (kaniko's `--ignore-var-run`, default true). */
  ignoreVarRun?: boolean;
  /** `/proc`, `/sys` and `/dev` are mounts in this root (in-place/chroot with mounts): ignore them. */
  systemMounts?: boolean;
  /** Text of `/proc/self/mountinfo`; every mount point except the root is ignored. */
  mountinfo?: string;
  /** Host directory the root lives at, to translate mount points (default "/": in-place builds). */
  mountinfoRoot?: string;
  /** `--ignore-path` values: Go `filepath.Match` patterns matched per path segment. */
  ignorePaths?: readonly string[];
  /** `VOLUME` paths (literal prefixes). */
  volumes?: readonly string[];
}

interface Rule {
  readonly segments: readonly string[];
  readonly glob: boolean;
  /** Only paths strictly below match, not the path itself (kaniko's PrefixMatchOnly). */
  readonly belowOnly: boolean;
}

/** A rule without glob segments as clean path strings: matching is a string compare, no split. */
interface LiteralRule {
  /** The rule's path ("/var/run"), or undefined when only paths below it match. */
  readonly exact: string | undefined;
  /** The rule's path with a trailing slash: every path below it starts with this. */
  readonly below: string;
}

/**
 * The set of container paths a build must neither snapshot nor overwrite nor delete: kiln's state dir,
 * `/etc/mtab`, `/tmp/apt-key-gpghome/*`, `/var/run`, mount points, `--ignore-path` patterns and VOLUMEs.
 * Immutable once created.
 */
export class IgnoreList {
  readonly #rules: readonly Rule[];
  readonly #literals: readonly LiteralRule[];
  readonly #globs: readonly Rule[];

  private constructor(rules: Rule[]) {
    this.#rules = Object.freeze(rules);
    this.#literals = rules
      .filter((r) => !r.glob)
      .map((r) => {
        const p = "/" + r.segments.join("/");
        return { exact: r.belowOnly ? undefined : p, below: p + "/" };
      });
    this.#globs = rules.filter((r) => r.glob);
  }

  /** Builds the list; throws `GLOB_INVALID` for a malformed `--ignore-path` pattern. */
  static create(opts: IgnoreListOptions = {}): IgnoreList {
    const rules: Rule[] = [];
    const literal = (p: string, belowOnly = false): void => {
      const c = cleanContainerPath(p);
      if (c !== "/") rules.push({ segments: split(c), glob: false, belowOnly });
    };
    if (opts.stateDir !== undefined) literal(opts.stateDir);
    literal("/etc/mtab");
    literal("/tmp/apt-key-gpghome", true);
    if (opts.ignoreVarRun ?? true) literal("/var/run");
    if (opts.systemMounts) for (const p of ["/proc", "/sys", "/dev"]) literal(p);
    if (opts.mountinfo !== undefined) {
      const base = cleanContainerPath(opts.mountinfoRoot ?? "/");
      for (const mp of parseMountinfo(opts.mountinfo)) {
        const c = cleanContainerPath(mp);
        if (base === "/") literal(c);
        else if (c.startsWith(base + "/")) literal(c.slice(base.length));
      }
    }
    for (const p of opts.ignorePaths ?? []) {
      const c = cleanContainerPath(p);
      for (const seg of split(c)) validateGlob(seg);
      const segments = split(c);
      const glob = segments.some((seg) => /[*?[\\]/.test(seg));
      if (c !== "/") rules.push({ segments, glob, belowOnly: false });
    }
    for (const v of opts.volumes ?? []) literal(v);
    return new IgnoreList(rules);
  }

  /** The rules as text: the same rules give the same text (for keys of what depends on them). */
  get fingerprint(): string {
    return JSON.stringify(this.#rules.map((r) => [r.segments.join("/"), r.glob, r.belowOnly]));
  }

  /** An ignore list that ignores nothing. */
  static empty(): IgnoreList {
    return new IgnoreList([]);
  }

  /** True when `containerPath` is an ignored path or lies below one. */
  ignores(containerPath: string): boolean {
    const p = cleanContainerPath(containerPath);
    for (const r of this.#literals) if (p === r.exact || p.startsWith(r.below)) return true;
    if (this.#globs.length === 0) return false;
    const segs = split(p);
    return this.#globs.some((r) => {
      if (r.segments.length > segs.length) return false;
      if (r.belowOnly && r.segments.length === segs.length) return false;
      return prefixMatches(r, segs, r.segments.length);
    });
  }

  /** True when some ignored path lies strictly below `p` (so deleting `p` would delete ignored content). */
  isAncestorOfIgnored(p: string): boolean {
    const segs = split(cleanContainerPath(p));
    return this.#rules.some((r) => {
      if (r.segments.length <= segs.length) return false;
      // Rule segments compared against the path: the path must be a prefix of the rule.
      for (let i = 0; i < segs.length; i++) {
        const pat = r.segments[i] as string;
        const seg = segs[i] as string;
        if (!(r.glob ? globMatch(pat, seg) : pat === seg)) return false;
      }
      return true;
    });
  }
}

function prefixMatches(r: Rule, segs: readonly string[], n: number): boolean {
  for (let i = 0; i < n; i++) {
    const pat = r.segments[i] as string;
    const seg = segs[i] as string;
    if (!(r.glob ? globMatch(pat, seg) : pat === seg)) return false;
  }
  return true;
}

function split(cleaned: string): string[] {
  return cleaned === "/" ? [] : cleaned.slice(1).split("/");
}
