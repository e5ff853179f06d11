import { mkdtemp } from "node:fs/promises";
import path from "node:path";
import { errorMessage, KilnError } from "../../common/errors.js";
import { parseGoBool } from "../../common/go-bool.js";
import { proxyEnvFrom } from "../../common/proxy-env.js";
import { fetchGitContext, parseContextSpec, redactUrl, type GitContextSpec } from "../../context/index.js";

/** Whether an ADD source names a git repository (BuildKit's rules: git@…, git://…, or a URL ending in .git[#ref]). */
export function isGitSource(s: string): boolean {
  return /^git@[^:]+:/.test(s) || /^git:\/\//i.test(s) || /^https?:\/\/[^#?]+\.git(?:[#?].*)?$/i.test(s);
}

/** Whether an ADD source is fetched rather than read from the context: an http(s) URL or a git repository. */
export function isRemoteSource(s: string): boolean {
  return /^https?:\/\//i.test(s) || isGitSource(s);
}

/** An `ADD <git URL>` source: the repository and ref to check out, and the options its URL carries. */
export interface AddGitSource {
  spec: GitContextSpec;
  /** `?checksum=` / `?commit=`: the commit (hex, whole or its leading digits) the ref must resolve to. */
  checksum?: string;
  /** `?keep-git-dir=`. */
  keepGitDir?: boolean;
  /** `?submodules=` (default true). */
  submodules: boolean;
}

const QUERY_KEYS = new Set(["ref", "tag", "branch", "checksum", "commit", "subdir", "keep-git-dir", "submodules"]);
const COMMIT_HEX = /^[0-9a-f]{1,64}$/i;

/** A boolean query value, read as BuildKit reads it (Go's strconv.ParseBool). */
function parseBool(raw: string, key: string, source: string): boolean {
  const v = parseGoBool(raw);
  if (v === undefined) throw new KilnError("ADD_GIT_INVALID", `ADD ${source}: ${key}=${raw} is not a boolean`);
  return v;
}

/** A commit hash given as a checksum: hex digits only (a prefix is allowed, as in BuildKit). */
export function gitChecksum(raw: string, source: string): string {
  if (!COMMIT_HEX.test(raw)) {
    throw new KilnError(
      "ADD_CHECKSUM_INVALID",
      `ADD ${source}: checksum "${raw}" of a git source must be a commit hash (hex digits)`,
    );
  }
  return raw.toLowerCase();
}

/**
 * Parses an `ADD` git source in either of BuildKit's forms: `https://host/repo.git#<ref>[:<subdir>]`, or
 * (Dockerfile 1.18) `https://host/repo.git?ref=…|tag=…|branch=…&checksum=…&subdir=…&keep-git-dir=…&submodules=…`
 * (`commit` is an alias of `checksum`). The two forms do not mix. Only http(s) transports are supported:
 * `git@…` (ssh) and `git://` fail with ADD_GIT_UNSUPPORTED (a Dockerfile error: exit code 1, not a usage error).
 */
export function parseAddGitSource(raw: string): AddGitSource {
  // Messages show the URL without credentials or query (it may carry a token).
  const shown = redactUrl(raw);
  const m = /^(https?):\/\/(.+)$/i.exec(raw);
  if (!m) {
    throw new KilnError(
      "ADD_GIT_UNSUPPORTED",
      `ADD ${shown}: only http(s) git URLs are supported (ssh and git:// transports are not); use https://…/repo.git#ref`,
    );
  }
  const rest = m[2] as string;
  const pullMethod = (m[1] as string).toLowerCase();
  const q = rest.indexOf("?");
  const hash = rest.indexOf("#");
  if (q < 0 || (hash >= 0 && hash < q)) {
    return { spec: gitSpec(`git://${rest}`, pullMethod, shown), submodules: true };
  }
  if (hash >= 0) {
    throw new KilnError(
      "ADD_GIT_INVALID",
      `ADD ${shown}: a git URL takes either a #fragment or ?query options, not both`,
    );
  }
  const spec = gitSpec(`git://${rest.slice(0, q)}`, pullMethod, shown);
  const params = new URLSearchParams(rest.slice(q + 1));
  const seen = new Map<string, string>();
  for (const [key, value] of params) {
    if (!QUERY_KEYS.has(key)) {
      throw new KilnError(
        "ADD_GIT_INVALID",
        `ADD ${shown}: unknown git URL option "${key}" (use ref, tag, branch, checksum or commit, subdir, keep-git-dir, submodules)`,
      );
    }
    if (seen.has(key)) throw new KilnError("ADD_GIT_INVALID", `ADD ${shown}: option "${key}" is given twice`);
    seen.set(key, value);
  }
  const refKeys = ["ref", "tag", "branch"].filter((k) => seen.has(k));
  if (refKeys.length > 1) {
    throw new KilnError("ADD_GIT_INVALID", `ADD ${shown}: ${refKeys.join(" and ")} cannot be given together`);
  }
  const tag = seen.get("tag");
  const branch = seen.get("branch");
  spec.ref =
    tag !== undefined ? `refs/tags/${tag}` : branch !== undefined ? `refs/heads/${branch}` : (seen.get("ref") ?? "");
  spec.subdir = seen.get("subdir") ?? "";
  const sums = [seen.get("checksum"), seen.get("commit")].filter((s): s is string => s !== undefined);
  const checksums = [...new Set(sums.map((s) => gitChecksum(s, shown)))];
  if (checksums.length > 1) {
    throw new KilnError("ADD_GIT_INVALID", `ADD ${shown}: checksum and commit name different commits`);
  }
  const keep = seen.get("keep-git-dir");
  const submodules = seen.get("submodules");
  return {
    spec,
    ...(checksums[0] !== undefined ? { checksum: checksums[0] } : {}),
    ...(keep !== undefined ? { keepGitDir: parseBool(keep, "keep-git-dir", shown) } : {}),
    submodules: submodules === undefined || parseBool(submodules, "submodules", shown),
  };
}

function gitSpec(url: string, pullMethod: string, raw: string): GitContextSpec {
  const spec = parseContextSpec(url, "/", { pullMethod });
  if (spec.kind !== "git") throw new KilnError("INTERNAL", `ADD ${raw}: not parsed as a git source`);
  return spec;
}

/** The git sources of an ADD, parsed, with the commit each must resolve to (`--checksum` or the URL's own). */
export interface AddGitPlan {
  sources: Map<string, AddGitSource>;
  /** `--keep-git-dir`, or a source's `?keep-git-dir=true`. */
  keepGitDir: (source: AddGitSource) => boolean;
}

/**
 * Parses every git source of an ADD and checks its options against the instruction's flags before anything
 * is fetched, as BuildKit does: `--checksum` must be a commit hash and equal the URL's `checksum=`, and
 * `--keep-git-dir` must not contradict `keep-git-dir=false`.
 */
export function planAddGitSources(instr: {
  sources: readonly string[];
  checksum?: string | undefined;
  keepGitDir: boolean;
}): AddGitPlan {
  const sources = new Map<string, AddGitSource>();
  for (const raw of instr.sources.filter(isGitSource)) {
    const parsed = parseAddGitSource(raw);
    const shown = redactUrl(raw);
    if (instr.checksum !== undefined) {
      const flag = gitChecksum(instr.checksum, shown);
      if (parsed.checksum !== undefined && parsed.checksum !== flag) {
        throw new KilnError(
          "ADD_GIT_INVALID",
          `ADD ${shown}: checksum mismatch: --checksum=${flag} but checksum=${parsed.checksum}`,
        );
      }
      parsed.checksum = flag;
    }
    if (instr.keepGitDir && parsed.keepGitDir === false) {
      throw new KilnError(
        "ADD_GIT_INVALID",
        `ADD ${shown}: inconsistent keep-git-dir configuration (--keep-git-dir and keep-git-dir=false)`,
      );
    }
    sources.set(raw, parsed);
  }
  return { sources, keepGitDir: (s) => instr.keepGitDir || s.keepGitDir === true };
}

/**
 * Clones the repository of an `ADD <git URL>` source into the build's scratch dir (with submodules unless
 * the URL says otherwise) and returns the host directory to copy (the checkout or its subdir). With a
 * checksum (see {@link planAddGitSources}), the commit checked out must match it.
 */
export async function fetchGitSource(
  source: AddGitSource,
  raw: string,
  tmpDir: string,
  env: Readonly<Record<string, string | undefined>> | undefined,
  signal?: AbortSignal,
): Promise<string> {
  const dest = await mkdtemp(path.join(tmpDir, "add-git-"));
  try {
    return await fetchGitContext(
      source.spec,
      dest,
      {
        branch: "",
        singleBranch: true,
        recurseSubmodules: source.submodules,
        insecureSkipTLS: false,
        // Through HTTP(S)_PROXY unless NO_PROXY names the host, as the build context and registries.
        proxy: proxyEnvFrom(env ?? {}),
        ...(source.checksum !== undefined ? { expectCommit: source.checksum } : {}),
      },
      {},
      signal,
    );
  } catch (e) {
    // A checksum mismatch keeps its code; the message names the URL without credentials or query.
    const code = e instanceof KilnError && e.code === "GIT_CHECKSUM_MISMATCH" ? e.code : "ADD_GIT_FAILED";
    throw new KilnError(code, `ADD ${redactUrl(raw)}: ${errorMessage(e)}`, { cause: e });
  }
}
