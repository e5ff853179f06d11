import { createReadStream } from "node:fs";
import { mkdir, rm, stat } from "node:fs/promises";
import path from "node:path";
import type { Readable } from "node:stream";
import { KilnError } from "../common/errors.js";
import { resolveInRoot } from "../fs/index.js";
import { openAzureBlob, type AzureEnv } from "./azure-context.js";
import type { ContextSpec } from "./context-spec.js";
import { redactUrl } from "./context-spec.js";
import { DEFAULT_CONTEXT_LIMITS, extractContextTar, type ContextLimits } from "./extract-tar.js";
import { openGcsObject, type GcsEnv } from "./gcs-context.js";
import type { GitCredentials, GitFetchOptions } from "./git-context.js";
import { fetchGitContext, openS3Object } from "./lazy-sources.js";
import { httpGet } from "./http-fetch.js";
import type { ProxyEnv } from "./proxy.js";
import type { S3Env } from "./s3-context.js";

/** Inputs of {@link prepareContext}. */
export interface PrepareContextOptions {
  spec: ContextSpec;
  /** `--context-sub-path`: applied to `scheme://` contexts only (kaniko's rule). */
  subPath?: string;
  /** Where remote contexts are unpacked (kaniko: `<kaniko dir>/buildcontext`); emptied first. */
  workDir: string;
  git?: GitFetchOptions;
  gitCredentials?: GitCredentials;
  s3?: S3Env;
  gcs?: GcsEnv;
  azure?: AzureEnv;
  /**
   * `HTTP(S)_PROXY`/`NO_PROXY` for git, https, gs, Azure and S3 contexts (it replaces `proxy` of `git`, `gcs`,
   * `azure` and `s3`).
   */
  proxy?: ProxyEnv;
  /** The process's stdin for `tar://stdin`; a TTY is refused. */
  stdin?: Readable & { isTTY?: boolean };
  limits?: Partial<ContextLimits>;
  now?: () => Date;
  signal?: AbortSignal;
}

/** A context ready for the build: a local directory, and a printable description of where it came from. */
export interface PreparedContext {
  dir: string;
  /** Source without credentials or query strings, for logs. */
  source: string;
  /** Whether `dir` lies under `workDir` (fetched/unpacked, safe to delete after the build). */
  fetched: boolean;
}

const DEFAULT_GIT: GitFetchOptions = {
  branch: "",
  singleBranch: false,
  recurseSubmodules: false,
  insecureSkipTLS: false,
};

/**
 * Turns any kaniko context source into a local directory: local directories are used in place, every
 * other source is fetched or unpacked (streamed, bounded by `limits`) into `workDir`. `--context-sub-path`
 * is then applied — only for `scheme://` contexts, as in kaniko — resolved inside the context.
 */
export async function prepareContext(o: PrepareContextOptions): Promise<PreparedContext> {
  const limits = { ...DEFAULT_CONTEXT_LIMITS, ...o.limits };
  const spec = o.spec;
  let dir: string;
  let source: string;
  let fetched = true;
  const fresh = async (): Promise<string> => {
    await rm(o.workDir, { recursive: true, force: true });
    await mkdir(o.workDir, { recursive: true, mode: 0o700 });
    return o.workDir;
  };
  switch (spec.kind) {
    case "dir": {
      dir = spec.path;
      source = spec.scheme ? `dir://${spec.path}` : spec.path;
      fetched = false;
      if (!spec.scheme) return { dir, source, fetched };
      break;
    }
    case "tar": {
      source = `tar://${spec.path}`;
      const input = createReadStream(spec.path);
      await new Promise<void>((resolve, reject) => {
        input.once("open", () => resolve());
        input.once("error", (e) =>
          reject(new KilnError("CONTEXT_NOT_FOUND", `build context ${source}: cannot open the archive (${e.message})`)),
        );
      });
      dir = await fresh();
      await extractContextTar(input, dir, source, limits, o.signal);
      break;
    }
    case "stdin": {
      source = "tar://stdin";
      if (!o.stdin) {
        throw new KilnError("CONTEXT_INVALID", "build context tar://stdin: no input stream was given (stdin)");
      }
      if (o.stdin.isTTY) {
        throw new KilnError(
          "CONTEXT_STDIN_TTY",
          "build context tar://stdin: stdin is a terminal, not a tar stream; pipe the archive in (docker run -i, kubectl run --stdin)",
        );
      }
      dir = await fresh();
      await extractContextTar(o.stdin, dir, source, limits, o.signal);
      break;
    }
    case "git": {
      source = `${redactUrl(spec.url)}${spec.ref ? `#${spec.ref}` : ""}${spec.commit ? `#${spec.commit}` : ""}`;
      const root = await fresh();
      const git = { ...(o.git ?? DEFAULT_GIT), ...(o.proxy ? { proxy: o.proxy } : {}) };
      dir = await fetchGitContext(spec, root, git, o.gitCredentials ?? {}, o.signal);
      break;
    }
    case "https": {
      source = redactUrl(spec.url);
      const body = await httpGet(spec.url, {
        maxBytes: limits.maxBytes,
        what: "build context",
        proxy: o.proxy,
        ...(o.signal ? { signal: o.signal } : {}),
      });
      dir = await fresh();
      await extractContextTar(body, dir, source, limits, o.signal);
      break;
    }
    case "s3": {
      source = `s3://${spec.bucket}/${spec.key}`;
      const s3 = { ...o.s3, ...(o.proxy ? { proxy: o.proxy } : {}) };
      const { body } = await openS3Object(spec.bucket, spec.key, s3, o.signal);
      dir = await fresh();
      await extractContextTar(body, dir, source, limits, o.signal);
      break;
    }
    case "gs": {
      source = `gs://${spec.bucket}/${spec.object}`;
      const gcs = { ...o.gcs, ...(o.proxy ? { proxy: o.proxy } : {}) };
      const body = await openGcsObject(spec.bucket, spec.object, gcs, limits.maxBytes, o.signal);
      dir = await fresh();
      await extractContextTar(body, dir, source, limits, o.signal);
      break;
    }
    case "azure": {
      source = redactUrl(spec.url);
      const azure = { ...o.azure, ...(o.proxy ? { proxy: o.proxy } : {}) };
      const body = await openAzureBlob(spec, azure, limits.maxBytes, (o.now ?? (() => new Date()))(), o.signal);
      dir = await fresh();
      await extractContextTar(body, dir, source, limits, o.signal);
      break;
    }
  }
  if (o.subPath) {
    dir = await resolveInRoot(dir, o.subPath, { followFinal: true });
    source = `${source} (sub-path ${o.subPath})`;
  }
  const st = await stat(dir).catch(() => undefined);
  if (!st?.isDirectory()) {
    throw new KilnError(
      "CONTEXT_NOT_FOUND",
      `build context ${source}: ${o.subPath ? `--context-sub-path ${o.subPath} is` : `${path.basename(dir)} is`} not a directory in the context`,
    );
  }
  return { dir, source, fetched };
}
