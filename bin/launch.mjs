// Shared start-up of bin/kiln, bin/executor and bin/warmer: picks the CLI entry module, turns on
// Node's on-disk compile cache where Node has one, and runs the command.
//
// Entry: dist/bundle/main.mjs (the esbuild bundle of `npm run build`, scripts/build-bundle.mjs) loads
// in roughly half the time of the ~390 modules of dist/src. It is used only when it is not older than
// dist/src/cli/main.js: tsc rewrites every file of dist/src on each run, so a developer who ran only
// `tsc` after editing src/ has a newer dist/src than bundle and must not run the stale bundle.
// Otherwise, or without a bundle, the unbundled dist/src is imported.
//
// Hidden diagnostics: KILN_REPORT_ENTRY=1 writes "kiln-entry: bundle|dist <file> compile-cache=<dir|off>"
// to stderr before the command runs (used by test/cli/bin-entry.test.ts).
import { lstatSync, mkdirSync, statSync } from "node:fs";
import module from "node:module";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const distDir = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "dist");

function mtimeMs(file) {
  return statSync(file, { throwIfNoEntry: false })?.mtimeMs;
}

/**
 * The entry module to import: the bundle when it exists and is not older than dist/src/cli/main.js,
 * else dist/src/cli/main.js.
 * @param {string} dist the package's dist directory
 * @returns {{ kind: "bundle" | "dist", file: string }}
 */
export function chooseEntry(dist = distDir) {
  const bundle = path.join(dist, "bundle", "main.mjs");
  const unbundled = path.join(dist, "src", "cli", "main.js");
  const b = mtimeMs(bundle);
  const u = mtimeMs(unbundled);
  if (b !== undefined && (u === undefined || b >= u)) return { kind: "bundle", file: bundle };
  return { kind: "dist", file: unbundled };
}

/**
 * Turns on Node's on-disk compile cache (module.enableCompileCache, Node >= 22.1; a no-op on Node 20)
 * in `$TMPDIR/kiln-compile-cache-<uid>`, created 0700. The cache holds V8 code that Node runs without
 * re-checking it against anything but a source hash, so a directory that someone else owns or could
 * write to (a planted cache in a shared /tmp) is never used: then the cache stays off. NODE_COMPILE_CACHE
 * (a directory of the user's choosing) and NODE_DISABLE_COMPILE_CACHE=1 are Node's own and win.
 * @returns {string | undefined} the cache directory in use, or undefined when the cache is off
 */
export function enableCompileCache() {
  if (typeof module.enableCompileCache !== "function") return undefined;
  if (process.env.NODE_DISABLE_COMPILE_CACHE) return undefined;
  let dir = process.env.NODE_COMPILE_CACHE;
  if (!dir) {
    const uid = process.getuid?.();
    if (uid === undefined) return undefined;
    dir = path.join(os.tmpdir(), `kiln-compile-cache-${uid}`);
    try {
      mkdirSync(dir, { mode: 0o700 });
    } catch (e) {
      if (e?.code !== "EEXIST") return undefined;
    }
    const st = lstatSync(dir, { throwIfNoEntry: false });
    if (!st?.isDirectory() || st.uid !== uid || (st.mode & 0o077) !== 0) return undefined;
  }
  const r = module.enableCompileCache(dir);
  const ok = r.status === module.constants.compileCacheStatus.ENABLED;
  return ok || r.status === module.constants.compileCacheStatus.ALREADY_ENABLED ? r.directory : undefined;
}

/**
 * Runs the kiln CLI as `invokedAs` (kiln, executor or warmer).
 * @param {"kiln" | "executor" | "warmer"} invokedAs
 */
export async function launch(invokedAs) {
  const cache = enableCompileCache();
  const entry = chooseEntry();
  if (process.env.KILN_REPORT_ENTRY === "1") {
    process.stderr.write(`kiln-entry: ${entry.kind} ${entry.file} compile-cache=${cache ?? "off"}\n`);
  }
  try {
    const m = await import(pathToFileURL(entry.file).href);
    await m.main(invokedAs);
  } catch (e) {
    // main() reports every build and usage error itself; what reaches here is a bug or a failure around it
    // (loading the bundle, closing the registry client). One line and exit 1, not an unhandled rejection's
    // stack trace.
    const message = e instanceof Error ? e.message : String(e);
    process.stderr.write(`kiln: internal error: ${message.split("\n")[0]}\n`);
    process.exitCode = 1;
  }
}
