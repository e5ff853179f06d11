/**
 * Entry points of the context sources that pull in large dependencies (isomorphic-git, the AWS SDK),
 * loaded only when such a context is used: importing them eagerly cost every build ~1 s of start-up
 * (measured by bench/: 0.33–0.44 s per library).
 */
import type { fetchGitContext as FetchGit } from "./git-context.js";
import type { openS3Object as OpenS3 } from "./s3-context.js";

/** {@link FetchGit}, loading the git client on first use. */
export async function fetchGitContext(...args: Parameters<typeof FetchGit>): ReturnType<typeof FetchGit> {
  const m = await import("./git-context.js");
  return m.fetchGitContext(...args);
}

/** {@link OpenS3}, loading the AWS SDK on first use. */
export async function openS3Object(...args: Parameters<typeof OpenS3>): ReturnType<typeof OpenS3> {
  const m = await import("./s3-context.js");
  return m.openS3Object(...args);
}
