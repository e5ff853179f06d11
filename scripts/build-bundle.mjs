#!/usr/bin/env node
// Bundles kiln's CLI with esbuild: the single place that knows the bundle's esbuild options.
//
//   node scripts/build-bundle.mjs                  host bundle: src/cli/main.ts -> dist/bundle/main.mjs
//                                                  (bin/kiln, bin/executor and bin/warmer load it when fresh)
//   node scripts/build-bundle.mjs --image OUTDIR   executor image: deploy/entry.ts -> OUTDIR/kiln.mjs
//
// ESM, split at dynamic imports: what only some builds need (the AWS SDK of the ECR provider and the
// S3 context, isomorphic-git, ...) lands in chunks/ and is loaded on first use, so it costs nothing at
// start. Run by `npm run build` after tsc (esbuild takes about a second).
//
// The host bundle's files are replaced atomically (each written to a temporary name, then renamed;
// the entry last), and chunks of earlier builds are kept for an hour: kiln processes started before
// a rebuild may still import their lazily loaded chunks.
import { mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const STALE_CHUNK_MS = 60 * 60 * 1000;

/** Resolves the bare specifier "undici" (only that, not its subpaths) to scripts/undici-lite.mjs. */
const undiciLite = {
  name: "undici-lite",
  setup(b) {
    b.onResolve({ filter: /^undici$/ }, () => ({ path: path.join(root, "scripts", "undici-lite.mjs") }));
  },
};

/**
 * node:tls, node:http2 and node:assert, loaded on first use instead of at start. Loading them costs
 * ~14, ~6 and ~2 ms of every start on Node 24 (tls initialises OpenSSL's TLS layer), yet a build against
 * a plain-HTTP registry needs none of them: undici requires http2 at load time only for its optional
 * HTTP/2 client and assert only for internal checks, and kiln's TLS contexts are built lazily
 * (src/registry/dispatcher.ts). Each import of these modules is resolved to a small CommonJS stand-in
 * whose exports are getters that load the real module when first read (assert's stand-in is also a
 * function that forwards calls). esbuild's ESM interop copies exports as getters too, so named imports
 * stay lazy. The one exception is http2's `constants`, which undici destructures when it loads: that
 * table of protocol constants (header names, RFC 7540 error codes) is copied into the stand-in as data.
 * esbuild has no lazy-require option, hence this plugin; test/cli/bin-entry.test.ts checks that
 * importing the bundle loads none of the three and that a push over TLS works.
 */
const LAZY_BUILTINS = ["tls", "http2", "assert"];
const lazyBuiltins = {
  name: "lazy-builtins",
  setup(b) {
    b.onResolve({ filter: /^(node:)?(tls|http2|assert)$/ }, (a) => {
      // The stand-in's own require() of the real module stays an ordinary external built-in.
      if (a.namespace === "lazy-builtin") return undefined;
      return { path: a.path.replace(/^node:/, ""), namespace: "lazy-builtin" };
    });
    b.onLoad({ filter: /.*/, namespace: "lazy-builtin" }, async (a) => {
      if (!LAZY_BUILTINS.includes(a.path)) throw new Error(`lazy-builtins: unexpected module ${a.path}`);
      const real = (await import(`node:${a.path}`)).default;
      const names = Object.keys(real).filter((k) => !(a.path === "http2" && k === "constants"));
      // assert(value) is a no-op when value is truthy: a passing check (undici runs them on every
      // connection and request) needs no module; only a failing one loads node:assert and throws its error.
      const self =
        a.path === "assert"
          ? "module.exports = function lazyAssert(...args) { if (args.length > 0 && args[0]) return; return load()(...args); };\n"
          : typeof real === "function"
            ? "module.exports = function lazyBuiltin(...args) { return load()(...args); };\n"
            : "";
      const data =
        a.path === "http2" ? `module.exports.constants = Object.freeze(${JSON.stringify(real.constants)});\n` : "";
      const contents =
        `"use strict";\nlet real;\nconst load = () => (real ??= require("node:${a.path}"));\n${self}${data}` +
        `for (const name of ${JSON.stringify(names)})\n` +
        `  Object.defineProperty(module.exports, name, { enumerable: true, get: () => load()[name] });\n`;
      return { contents, loader: "js" };
    });
  },
};

/**
 * esbuild options shared by both bundles. Third-party CommonJS code (the AWS SDK, isomorphic-git)
 * calls require() for Node built-ins; an ESM bundle has none, so the banner defines one.
 */
function options(entry, outdir, entryName) {
  return {
    plugins: [undiciLite, lazyBuiltins],
    absWorkingDir: root,
    entryPoints: { [entryName]: path.join(root, entry) },
    outdir,
    bundle: true,
    splitting: true,
    platform: "node",
    format: "esm",
    target: "node20",
    chunkNames: "chunks/[name]-[hash]",
    outExtension: { ".js": ".mjs" },
    logLevel: "warning",
    legalComments: "none",
    banner: {
      js: "import { createRequire as __kilnCreateRequire } from 'node:module'; const require = __kilnCreateRequire(import.meta.url);",
    },
  };
}

function writeAtomic(file, contents) {
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, contents);
  renameSync(tmp, file);
}

/** Removes chunks that the new build did not write and that are older than an hour. */
function pruneChunks(dir, keep) {
  let names;
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  const now = Date.now();
  for (const name of names) {
    const file = path.join(dir, name);
    if (keep.has(file)) continue;
    try {
      if (now - statSync(file).mtimeMs > STALE_CHUNK_MS) rmSync(file, { force: true });
    } catch {
      // Gone already (a concurrent build pruned it).
    }
  }
}

async function hostBundle() {
  const outdir = path.join(root, "dist", "bundle");
  const result = await build({ ...options("src/cli/main.ts", outdir, "main"), write: false });
  const entry = path.join(outdir, "main.mjs");
  // Chunks first, the entry last: a concurrent `bin/kiln` sees either the old entry with its old
  // chunks or the new entry with all of its chunks.
  const files = [...result.outputFiles].sort((a, b) => (a.path === entry ? 1 : b.path === entry ? -1 : 0));
  for (const f of files) writeAtomic(f.path, f.contents);
  pruneChunks(path.join(outdir, "chunks"), new Set(files.map((f) => f.path)));
  console.log(`build-bundle: dist/bundle/main.mjs (${files.length} files)`);
}

async function imageBundle(outdir) {
  await build(options("deploy/entry.ts", path.resolve(outdir), "kiln"));
}

const args = process.argv.slice(2);
if (args[0] === "--image") {
  if (!args[1]) {
    console.error("build-bundle: --image needs an output directory");
    process.exit(2);
  }
  await imageBundle(args[1]);
} else if (args.length === 0) {
  await hostBundle();
} else {
  console.error(`build-bundle: unknown arguments ${args.join(" ")} (usage: build-bundle.mjs [--image OUTDIR])`);
  process.exit(2);
}
