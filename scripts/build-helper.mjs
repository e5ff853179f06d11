#!/usr/bin/env node
// Builds native/kiln-exec from native/kiln-exec.c (run by `npm run build` after tsc).
// Static first, dynamic if static linking fails; rebuilt only when the .c is newer than the binary;
// skipped with a clear message when no C compiler is installed (RUN then needs /kaniko/kiln-exec or
// the in-place back-end).
import { spawnSync } from "node:child_process";
import { statSync, renameSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const src = path.join(root, "native", "kiln-exec.c");
const out = path.join(root, "native", "kiln-exec");
const tmp = `${out}.tmp-${process.pid}`;

function mtime(file) {
  try {
    return statSync(file).mtimeMs;
  } catch {
    return undefined;
  }
}

function findCompiler() {
  for (const cc of [process.env.CC, "cc", "gcc", "clang"]) {
    if (!cc) continue;
    const r = spawnSync(cc, ["--version"], { stdio: "ignore" });
    if (r.status === 0) return cc;
  }
  return undefined;
}

function compile(cc, extra) {
  const args = ["-O2", "-Wall", ...extra, "-o", tmp, src];
  const r = spawnSync(cc, args, { encoding: "utf8" });
  return { ok: r.status === 0, output: `${r.stdout ?? ""}${r.stderr ?? ""}`, cmd: `${cc} ${args.join(" ")}` };
}

const srcTime = mtime(src);
const outTime = mtime(out);
if (srcTime === undefined) {
  console.error(`build-helper: ${src} is missing; nothing to build`);
  process.exit(1);
}
if (outTime !== undefined && outTime >= srcTime) {
  console.log("build-helper: native/kiln-exec is up to date");
  process.exit(0);
}
const cc = findCompiler();
if (!cc) {
  console.warn(
    "build-helper: no C compiler found (tried $CC, cc, gcc, clang); native/kiln-exec was NOT built. " +
      "Install gcc to get the chroot/userns RUN back-ends, or provide /kaniko/kiln-exec.",
  );
  process.exit(0);
}
let r = compile(cc, ["-static"]);
if (!r.ok) {
  console.warn(`build-helper: static link failed, building a dynamic helper instead:\n${r.output.trim()}`);
  r = compile(cc, []);
}
if (!r.ok) {
  rmSync(tmp, { force: true });
  console.error(`build-helper: ${r.cmd} failed:\n${r.output.trim()}`);
  process.exit(1);
}
renameSync(tmp, out);
console.log(`build-helper: built native/kiln-exec (${r.cmd.replace(tmp, "native/kiln-exec")})`);
