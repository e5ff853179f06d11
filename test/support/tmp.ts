/**
 * Temporary directories and repository paths for tests.
 *
 * Temp dirs live under `<repo>/.tmp/test` (or `$KILN_TEST_TMPDIR`, which scripts/test.sh points at its
 * per-run directory so that everything a run leaves behind is removed with it). Removal refuses to cross a
 * mount point: a RUN test that failed to unmount a bind-mounted /dev must not lead to deleting the host's.
 */
import { existsSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root: the nearest ancestor of this file holding kiln's package.json (works from test/ and dist/test/). */
export function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = path.join(dir, "package.json");
    if (existsSync(pkg) && isKilnPackage(pkg)) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) return process.cwd();
    dir = parent;
  }
}

function isKilnPackage(file: string): boolean {
  try {
    const parsed: unknown = JSON.parse(readFileSync(file, "utf8"));
    return typeof parsed === "object" && parsed !== null && (parsed as { name?: unknown }).name === "kiln";
  } catch {
    return false;
  }
}

/** The external conformance data directory (`<repo>/../shared/conformance`), read in place. */
export function conformanceDir(): string {
  return path.resolve(repoRoot(), "../shared/conformance");
}

/** The directory all test temp dirs are created under: `$KILN_TEST_TMPDIR` or `<repo>/.tmp/test`. */
export function testTmpRoot(): string {
  const fromEnv = process.env["KILN_TEST_TMPDIR"];
  return fromEnv !== undefined && fromEnv !== "" ? path.resolve(fromEnv) : path.join(repoRoot(), ".tmp", "test");
}

/** Creates a fresh, empty directory `<testTmpRoot>/<prefix>-XXXXXX` and returns its absolute path. */
export async function tempDir(prefix: string): Promise<string> {
  const root = testTmpRoot();
  await mkdir(root, { recursive: true });
  const safe = prefix.replace(/[^A-Za-z0-9._-]/g, "_") || "tmp";
  return mkdtemp(path.join(root, `${safe}-`));
}

/** Mount points at or below `dir` in this process's mount namespace, deepest first. */
export async function mountsUnder(dir: string): Promise<string[]> {
  const abs = path.resolve(dir);
  let text: string;
  try {
    text = await readFile("/proc/self/mountinfo", "utf8");
  } catch {
    return [];
  }
  const found: string[] = [];
  for (const line of text.split("\n")) {
    const field = line.split(" ")[4];
    if (field === undefined) continue;
    // mountinfo escapes space, tab, newline and backslash as octal.
    const point = field.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
    if (point === abs || point.startsWith(abs + "/")) found.push(point);
  }
  return found.sort((a, b) => b.length - a.length);
}

/**
 * Removes `dir` recursively. Throws (removing nothing) when anything is mounted at or below it, naming the
 * mounts, unless KILN_KEEP_TMP is set, in which case it keeps the directory and does nothing.
 */
export async function removeDir(dir: string): Promise<void> {
  if (process.env["KILN_KEEP_TMP"]) return;
  const mounts = await mountsUnder(dir);
  if (mounts.length > 0) {
    throw new Error(`refusing to remove ${dir}: still mounted below it: ${mounts.join(", ")} (unmount them first)`);
  }
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
}

/** Minimal shape of a node:test context (or suite) that can register an after-hook. */
export interface AfterHook {
  after(fn: () => unknown): void;
}

/** Creates a temp dir that is removed when the given node:test context `t` finishes. */
export async function tempDirFor(t: AfterHook, prefix: string): Promise<string> {
  const dir = await tempDir(prefix);
  t.after(() => removeDir(dir));
  return dir;
}

/** Runs `fn` with a fresh temp dir and removes the dir afterwards, whether `fn` succeeded or threw. */
export async function withTempDir<T>(prefix: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await tempDir(prefix);
  try {
    return await fn(dir);
  } finally {
    await removeDir(dir);
  }
}
