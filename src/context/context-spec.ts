import path from "node:path";
import { KilnError } from "../common/errors.js";

/** The object kaniko reads from a bucket when the context URL names no object. */
export const DEFAULT_CONTEXT_OBJECT = "context.tar.gz";

/** Where a build context comes from, parsed from `--context` (kaniko's syntax, see kaniko-reference §3). */
export type ContextSpec =
  | { kind: "dir"; path: string; scheme: boolean }
  | { kind: "tar"; path: string }
  | { kind: "stdin" }
  | GitContextSpec
  | { kind: "https"; url: string }
  | { kind: "s3"; bucket: string; key: string }
  | { kind: "gs"; bucket: string; object: string }
  | { kind: "azure"; url: string; account: string; container: string; blob: string };

/** A git context: repository URL (credentials split out), ref, commit to check out, subdirectory. */
export interface GitContextSpec {
  kind: "git";
  /** http(s) URL of the repository, without userinfo or fragment. */
  url: string;
  username?: string;
  password?: string;
  /** Branch, tag, full ref (`refs/…`) or commit SHA; "" means the remote's default branch. */
  ref: string;
  /** Commit to check out after cloning (kaniko's second fragment); "" for none. */
  commit: string;
  /** Sub-directory from BuildKit's `#ref:subdir` form; "" for none. */
  subdir: string;
}

const AZURE_HOST = /^([a-z0-9]+)\.blob\.core\.(?:windows\.net|chinacloudapi\.cn|cloudapi\.de|usgovcloudapi\.net)$/i;

/**
 * Parses a `--context` value. Plain paths and `dir://` resolve against `cwd`; `git://` becomes an
 * https (or, with `pullMethod` "http", http) git URL; an `https://` URL is a git repository when its
 * path ends in `.git`, an Azure blob when its host is an Azure Blob Storage host (public or sovereign
 * clouds), else a tarball. `bucket` is kaniko's hidden `--bucket` (a GCS bucket name or `gs://…` URL),
 * used when the context itself is empty.
 */
export function parseContextSpec(
  ctx: string,
  cwd: string,
  opts: { pullMethod?: string; bucket?: string } = {},
): ContextSpec {
  if (ctx === "" && opts.bucket) ctx = opts.bucket.includes("://") ? opts.bucket : `gs://${opts.bucket}`;
  const m = /^([a-z0-9+.-]+):\/\/(.*)$/is.exec(ctx);
  if (!m) return { kind: "dir", path: path.resolve(cwd, ctx), scheme: false };
  const scheme = (m[1] as string).toLowerCase();
  const rest = m[2] as string;
  switch (scheme) {
    case "dir":
      return { kind: "dir", path: path.resolve(cwd, rest), scheme: true };
    case "tar":
      return rest === "stdin" ? { kind: "stdin" } : { kind: "tar", path: path.resolve(cwd, rest) };
    case "git": {
      const method = (opts.pullMethod ?? "").toLowerCase() === "http" ? "http" : "https";
      return parseGitUrl(`${method}://${rest}`);
    }
    case "s3":
    case "gs": {
      const slash = rest.indexOf("/");
      const bucket = slash < 0 ? rest : rest.slice(0, slash);
      const obj = slash < 0 ? "" : rest.slice(slash + 1);
      if (bucket === "") throw new KilnError("CONTEXT_INVALID", `build context ${scheme}://${rest}: no bucket name`);
      const name = obj === "" ? DEFAULT_CONTEXT_OBJECT : obj;
      return scheme === "s3" ? { kind: "s3", bucket, key: name } : { kind: "gs", bucket, object: name };
    }
    case "https":
    case "http": {
      let u: URL;
      try {
        u = new URL(ctx);
      } catch {
        throw new KilnError("CONTEXT_INVALID", `build context: ${redactUrl(ctx)} is not a valid URL`);
      }
      if (/\.git\/?$/i.test(u.pathname)) return parseGitUrl(ctx);
      if (scheme === "http") {
        throw new KilnError(
          "CONTEXT_INVALID",
          `build context ${redactUrl(ctx)}: plain http:// tarball contexts are not supported (like kaniko); use https:// or git://`,
        );
      }
      const az = AZURE_HOST.exec(u.hostname);
      if (az) {
        const parts = u.pathname.split("/").filter((s) => s !== "");
        const container = parts[0];
        if (!container)
          throw new KilnError("CONTEXT_INVALID", `Azure blob context ${redactUrl(ctx)}: no container in the URL`);
        const blob = parts.slice(1).map(decodeURIComponent).join("/") || DEFAULT_CONTEXT_OBJECT;
        return { kind: "azure", url: ctx, account: (az[1] as string).toLowerCase(), container, blob };
      }
      return { kind: "https", url: ctx };
    }
    default:
      throw new KilnError(
        "CONTEXT_INVALID",
        `build context scheme ${scheme}:// is not supported; use a directory, dir://, tar://, git://, https://, s3:// or gs://`,
      );
  }
}

/**
 * Splits a git URL: userinfo → credentials, then either kaniko's fragments `#ref#commit` or
 * BuildKit's `#ref:subdir`. Both forms are accepted for both spellings of the URL.
 */
function parseGitUrl(raw: string): GitContextSpec {
  const hash = raw.indexOf("#");
  const base = hash < 0 ? raw : raw.slice(0, hash);
  const fragments = hash < 0 ? [] : raw.slice(hash + 1).split("#");
  let u: URL;
  try {
    u = new URL(base);
  } catch {
    throw new KilnError("CONTEXT_INVALID", `git context ${redactUrl(raw)} is not a valid URL`);
  }
  const username = u.username ? decodeURIComponent(u.username) : undefined;
  const password = u.password ? decodeURIComponent(u.password) : undefined;
  u.username = "";
  u.password = "";
  let ref = fragments[0] ?? "";
  let subdir = "";
  const colon = ref.indexOf(":");
  if (colon >= 0) {
    subdir = ref.slice(colon + 1);
    ref = ref.slice(0, colon);
  }
  const commit = fragments[1] ?? "";
  if (fragments.length > 2)
    throw new KilnError("CONTEXT_INVALID", `git context ${redactUrl(raw)}: expected at most #<ref>#<commit>`);
  const spec: GitContextSpec = { kind: "git", url: u.toString(), ref, commit, subdir };
  if (username !== undefined) spec.username = username;
  if (password !== undefined) spec.password = password;
  return spec;
}

/**
 * A URL safe to print: userinfo replaced by `***`, query string (signatures, tokens) dropped. The user
 * info runs to the last `@` before the path: a password may hold an unencoded `@` (`https://ci:p@ss@host`).
 */
export function redactUrl(raw: string): string {
  return raw.replace(/^([a-z0-9+.-]+:\/\/)[^/#?]*@/i, "$1***@").replace(/\?[^#]*/, "?***");
}
