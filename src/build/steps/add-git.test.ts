import assert from "node:assert/strict";
import { test } from "node:test";
import { hasCode } from "../../common/errors.js";
import { gitChecksum, parseAddGitSource, planAddGitSources } from "./add-git.js";

const REPO = "https://git.example/org/repo.git";

test("the fragment form: ref and subdir, submodules on", () => {
  const s = parseAddGitSource(`${REPO}#v1:sub/dir`);
  assert.equal(s.spec.url, REPO);
  assert.equal(s.spec.ref, "v1");
  assert.equal(s.spec.subdir, "sub/dir");
  assert.equal(s.checksum, undefined);
  assert.equal(s.keepGitDir, undefined);
  assert.equal(s.submodules, true);
});

test("the query form: tag, branch and ref, subdir, checksum or commit, keep-git-dir, submodules", () => {
  const t = parseAddGitSource(`${REPO}?tag=v1&subdir=sub&checksum=ABCDEF1&keep-git-dir=true&submodules=false`);
  assert.equal(t.spec.url, REPO);
  assert.equal(t.spec.ref, "refs/tags/v1");
  assert.equal(t.spec.subdir, "sub");
  assert.equal(t.checksum, "abcdef1");
  assert.equal(t.keepGitDir, true);
  assert.equal(t.submodules, false);
  assert.equal(parseAddGitSource(`${REPO}?branch=main`).spec.ref, "refs/heads/main");
  assert.equal(parseAddGitSource(`${REPO}?ref=refs/pull/1/head`).spec.ref, "refs/pull/1/head");
  assert.equal(parseAddGitSource(`${REPO}?commit=0123abc`).checksum, "0123abc");
  assert.equal(parseAddGitSource(`${REPO}?commit=0123abc&checksum=0123ABC`).checksum, "0123abc");
  assert.equal(parseAddGitSource(`${REPO}?keep-git-dir=0`).keepGitDir, false);
  assert.equal(parseAddGitSource(`${REPO}?`).spec.ref, "");
});

test("bad query options are refused with the source named, before anything is fetched", () => {
  const refused = (src: string, code: string, re: RegExp): void => {
    assert.throws(
      () => parseAddGitSource(src),
      (e: unknown) => hasCode(e, code) && re.test((e as Error).message) && (e as Error).message.includes(REPO),
      src,
    );
  };
  refused(`${REPO}?depth=1`, "ADD_GIT_INVALID", /unknown git URL option "depth"/);
  refused(`${REPO}?tag=v1&branch=main`, "ADD_GIT_INVALID", /tag and branch cannot be given together/);
  refused(`${REPO}?tag=v1&tag=v2`, "ADD_GIT_INVALID", /"tag" is given twice/);
  refused(`${REPO}?checksum=abc1&commit=abc2`, "ADD_GIT_INVALID", /different commits/);
  refused(`${REPO}?checksum=sha256:abc`, "ADD_CHECKSUM_INVALID", /must be a commit hash/);
  refused(`${REPO}?keep-git-dir=yes`, "ADD_GIT_INVALID", /keep-git-dir=yes is not a boolean/);
  refused(`${REPO}?tag=v1#main`, "ADD_GIT_INVALID", /either a #fragment or \?query/);
  // An ssh or git:// source is a Dockerfile error (exit code 1: src/cli/exit-codes.test.ts), not NOT_IMPLEMENTED.
  for (const src of ["git@github.com:org/repo.git", "git://github.com/org/repo.git#main"]) {
    assert.throws(
      () => parseAddGitSource(src),
      (e: unknown) =>
        hasCode(e, "ADD_GIT_UNSUPPORTED") &&
        /only http\(s\) git URLs are supported \(ssh and git:\/\/ transports are not\)/.test((e as Error).message),
      src,
    );
  }
});

test("a --checksum for a git source is a commit hash", () => {
  assert.equal(gitChecksum("DEADBEEF", "src"), "deadbeef");
  assert.throws(
    () => gitChecksum("sha256:" + "a".repeat(64), "src"),
    (e: unknown) => hasCode(e, "ADD_CHECKSUM_INVALID"),
  );
  assert.throws(
    () => gitChecksum("a".repeat(65), "src"),
    (e: unknown) => hasCode(e, "ADD_CHECKSUM_INVALID"),
  );
  assert.throws(
    () => gitChecksum("", "src"),
    (e: unknown) => hasCode(e, "ADD_CHECKSUM_INVALID"),
  );
});

test("the flags meet the URL's options as in BuildKit: equal checksums, no contradicting keep-git-dir", () => {
  const sum = "0123456789abcdef0123456789abcdef01234567";
  const plan = planAddGitSources({
    sources: [`${REPO}?commit=${sum}`, "ctx-file"],
    checksum: sum.toUpperCase(),
    keepGitDir: false,
  });
  assert.deepEqual([...plan.sources.keys()], [`${REPO}?commit=${sum}`]);
  assert.equal(plan.sources.get(`${REPO}?commit=${sum}`)?.checksum, sum);
  const flagOnly = planAddGitSources({ sources: [`${REPO}#v1`], checksum: "ABC123", keepGitDir: false });
  assert.equal(flagOnly.sources.get(`${REPO}#v1`)?.checksum, "abc123", "the flag pins a fragment-form source");
  const keep = planAddGitSources({ sources: [`${REPO}?keep-git-dir=true`, REPO], keepGitDir: false });
  assert.deepEqual(
    [...keep.sources.values()].map((s) => keep.keepGitDir(s)),
    [true, false],
  );
  assert.throws(
    () => planAddGitSources({ sources: [`${REPO}?checksum=${sum}`], checksum: sum.slice(0, 8), keepGitDir: false }),
    (e: unknown) => hasCode(e, "ADD_GIT_INVALID") && /checksum mismatch/.test((e as Error).message),
  );
  assert.throws(
    () => planAddGitSources({ sources: [`${REPO}?keep-git-dir=false`], keepGitDir: true }),
    (e: unknown) => hasCode(e, "ADD_GIT_INVALID") && /inconsistent keep-git-dir/.test((e as Error).message),
  );
});

test("messages show a source's URL without its credentials or query", () => {
  assert.throws(
    () => parseAddGitSource("https://user:s3cret@git.example/r.git?token=s3cret&depth=1"),
    (e: unknown) => hasCode(e, "ADD_GIT_INVALID") && !(e as Error).message.includes("s3cret"),
  );
});
