import { mkdtemp } from "node:fs/promises";
import path from "node:path";
import { KilnError } from "../../common/errors.js";
import { fetchGitContext, parseContextSpec } from "../../context/index.js";

/** Whether an ADD source names a git repository (BuildKit's rules: git@…, git://…, or a URL ending in .git[#ref]). */
export function isGitSource(s: string): boolean {
  return /^git@[^:]+:/.test(s) || /^git:\/\//i.test(s) || /^https?:\/\/[^#?]+\.git(?:[#?].*)?$/i.test(s);
}

/**
 * Clones the repository of an `ADD <git URL>` source (`https://host/repo.git#<branch|tag|commit>[:<subdir>]`)
 * into the build's scratch dir with submodules, and returns the host directory to copy (the checkout or its
 * subdir). Only http(s) transports are supported: `git@…` (ssh) and `git://` fail with NOT_IMPLEMENTED.
 */
export async function fetchGitSource(raw: string, tmpDir: string, signal?: AbortSignal): Promise<string> {
  const m = /^(https?):\/\/(.+)$/i.exec(raw);
  if (!m) {
    throw new KilnError(
      "NOT_IMPLEMENTED",
      `ADD ${raw}: only http(s) git URLs are supported (ssh and git:// transports are not); use https://…/repo.git#ref`,
    );
  }
  const spec = parseContextSpec(`git://${m[2] as string}`, "/", { pullMethod: (m[1] as string).toLowerCase() });
  if (spec.kind !== "git") throw new KilnError("INTERNAL", `ADD ${raw}: not parsed as a git source`);
  const dest = await mkdtemp(path.join(tmpDir, "add-git-"));
  try {
    return await fetchGitContext(
      spec,
      dest,
      { branch: "", singleBranch: true, recurseSubmodules: true, insecureSkipTLS: false },
      {},
      signal,
    );
  } catch (e) {
    throw new KilnError("ADD_GIT_FAILED", `ADD ${raw}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}
