// Entry point of the bundled executor image (scripts/build-bundle.mjs --image bundles it into
// /kaniko/kiln.mjs). The launcher tells which command was invoked in KILN_INVOKED_AS.
//
// This module is kept tiny on purpose: it turns on Node's compile cache before the CLI is compiled,
// then imports the CLI (a separate chunk). deploy/build-executor-image.sh fills the cache at
// /kaniko/.cache/node when it builds the image; "portable" keys the entries by paths relative to
// the cache directory, so entries written under the staging directory match /kaniko in the image.
// Best effort and silent: a read-only or foreign-owned cache (non-root user, read-only root) is
// only read or ignored by Node, never an error.
import module from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

type EnableCompileCache = (options: { directory: string; portable: boolean }) => unknown;

const enable = (module as unknown as { enableCompileCache?: EnableCompileCache }).enableCompileCache;
if (typeof enable === "function" && !process.env.NODE_DISABLE_COMPILE_CACHE) {
  try {
    enable({ directory: path.join(path.dirname(fileURLToPath(import.meta.url)), ".cache", "node"), portable: true });
  } catch {
    // A Node without the options form: run without the cache.
  }
}

const invoked = process.env.KILN_INVOKED_AS;
delete process.env.KILN_INVOKED_AS;
const { main } = await import("../src/cli/main.js");
await main(invoked === "warmer" || invoked === "kiln" ? invoked : "executor");
