import * as fs from "node:fs";
import { lstat, mkdir, readFile } from "node:fs/promises";
import git, { type GitHttpRequest, type GitHttpResponse, type HttpClient } from "isomorphic-git";
import { request, type Dispatcher } from "undici";
import { KilnError } from "../common/errors.js";
import { resolveInRoot } from "../fs/index.js";
import { redactUrl, type GitContextSpec } from "./context-spec.js";
import { contextDispatcher, type ProxyEnv } from "./proxy.js";

/** kaniko's `--git` options. */
export interface GitFetchOptions {
  /** `branch=`: branch or tag used when the URL names no ref. */
  branch: string;
  singleBranch: boolean;
  recurseSubmodules: boolean;
  insecureSkipTLS: boolean;
  /**
   * A commit hash, whole or its leading hex digits (`ADD --checksum=` / `?checksum=` of a git source): the
   * checkout fails unless the ref resolved to that commit (or, for an annotated tag, to that tag object).
   */
  expectCommit?: string;
  /** `HTTP(S)_PROXY`/`NO_PROXY` to fetch through (none: direct connections). */
  proxy?: ProxyEnv | undefined;
}

/** Credentials from GIT_USERNAME / GIT_PASSWORD / GIT_TOKEN (a token is sent as the username, like kaniko). */
export interface GitCredentials {
  username?: string | undefined;
  password?: string | undefined;
  token?: string | undefined;
}

const SHA = /^[0-9a-f]{40}$/i;
const MAX_SUBMODULE_DEPTH = 8;
/** Submodule checkouts one context may make in all (depth alone allows 10 links per level: 10^8). */
const MAX_SUBMODULES = 100;
/**
 * Bytes one git context may download in all: isomorphic-git holds a packfile in memory, so a server
 * sending more would exhaust it long before the 16 GiB of a tar context.
 */
const MAX_GIT_DOWNLOAD = 2 * 1024 ** 3;

/** What one context's fetch (its repository and every submodule) may still use. */
interface GitBudget {
  downloaded: number;
  /** Submodule checkouts so far (git hashes rule out cycles, not a fan-out repeated on every level). */
  submodules: number;
}

/**
 * Clones a git context into `dest` with a pure-JS client (isomorphic-git, so it works where /usr is
 * replaced): shallow and single-ref when a named ref is enough; a full fetch when a commit SHA must be
 * found. Checks out the commit (second fragment) when given, and submodules with `recurseSubmodules`.
 * Returns the directory holding the context (`dest`, or its BuildKit `:subdir`).
 */
export async function fetchGitContext(
  spec: GitContextSpec,
  dest: string,
  opts: GitFetchOptions,
  creds: GitCredentials,
  signal?: AbortSignal,
): Promise<string> {
  const headers: Record<string, string> = {};
  let user = spec.username;
  let pass = spec.password;
  if (creds.token) {
    user = creds.token;
    pass = "";
  } else if (creds.username || creds.password) {
    user = creds.username ?? "";
    pass = creds.password ?? "";
  }
  if (user !== undefined || pass !== undefined) {
    headers.Authorization = `Basic ${Buffer.from(`${user ?? ""}:${pass ?? ""}`).toString("base64")}`;
  }
  const dispatcher = contextDispatcher(opts.proxy, { rejectUnauthorized: !opts.insecureSkipTLS });
  try {
    const budget: GitBudget = { downloaded: 0, submodules: 0 };
    const http = httpClient(dispatcher, budget, signal);
    await mkdir(dest, { recursive: true });
    const ref = spec.ref !== "" ? spec.ref : opts.branch;
    const got = await cloneInto(
      http,
      headers,
      spec.url,
      dest,
      ref,
      spec.commit,
      opts.singleBranch || spec.commit === "",
    );
    if (opts.expectCommit !== undefined) {
      const want = opts.expectCommit.toLowerCase();
      if (!got.head.startsWith(want) && !got.fetched.startsWith(want)) {
        throw new KilnError(
          "GIT_CHECKSUM_MISMATCH",
          `git context ${redactUrl(spec.url)}${spec.ref ? `#${spec.ref}` : ""}: expected commit ${opts.expectCommit}, but the ref resolved to ${got.head}`,
        );
      }
    }
    if (opts.recurseSubmodules) await checkoutSubmodules(http, headers, spec.url, dest, 0, budget);
  } catch (e) {
    if (e instanceof KilnError) throw e;
    throw new KilnError(
      "CONTEXT_FETCH",
      `git context ${redactUrl(spec.url)}${spec.ref ? `#${spec.ref}` : ""}: ${scrub(e instanceof Error ? e.message : String(e), headers)}`,
    );
  } finally {
    await dispatcher.close();
  }
  if (spec.subdir === "") return dest;
  return resolveInRoot(dest, spec.subdir, { followFinal: true });
}

/**
 * Fetches `ref` (or a commit) from `url` into the repository at `dir` and checks it out (detached). Returns
 * the object the ref named (`fetched`: a commit, or an annotated tag) and the commit checked out (`head`).
 */
async function cloneInto(
  http: HttpClient,
  headers: Record<string, string>,
  url: string,
  dir: string,
  ref: string,
  commit: string,
  shallow: boolean,
): Promise<{ fetched: string; head: string }> {
  await git.init({ fs, dir });
  await git.addRemote({ fs, dir, remote: "origin", url, force: true });
  let oid: string;
  if (SHA.test(ref)) {
    // A commit: isomorphic-git can only want advertised refs, so fetch every branch and tag.
    await git.fetch({ fs, http, dir, remote: "origin", headers, tags: true, singleBranch: false });
    oid = ref.toLowerCase();
  } else {
    const res = await git.fetch({
      fs,
      http,
      dir,
      remote: "origin",
      headers,
      ...(ref !== "" ? { remoteRef: ref, ref } : {}),
      singleBranch: shallow || ref.startsWith("refs/pull/"),
      tags: ref.startsWith("refs/tags/") || !shallow,
      ...(shallow ? { depth: 1 } : {}),
    });
    if (!res.fetchHead) throw new KilnError("CONTEXT_FETCH", `git context ${redactUrl(url)}: the repository is empty`);
    oid = res.fetchHead;
  }
  if (commit !== "") oid = await git.expandOid({ fs, dir, oid: commit }).catch(() => commit);
  try {
    await git.checkout({ fs, dir, ref: oid, force: true });
  } catch (e) {
    throw new KilnError(
      "CONTEXT_FETCH",
      `git context ${redactUrl(url)}: cannot check out ${commit || ref || "HEAD"} (${e instanceof Error ? e.message : String(e)}); check the ref/commit exists`,
    );
  }
  return { fetched: oid, head: await git.resolveRef({ fs, dir, ref: "HEAD" }) };
}

/** Clones each submodule (URLs relative to the parent allowed) at the commit recorded in the parent tree. */
async function checkoutSubmodules(
  http: HttpClient,
  headers: Record<string, string>,
  parentUrl: string,
  dir: string,
  depth: number,
  budget: GitBudget,
): Promise<void> {
  let text: string;
  try {
    // The checkout is untrusted: a `.gitmodules` symlink is followed only inside it, and must end at a
    // regular file (not a host file, not /dev/zero).
    const file = await resolveInRoot(dir, ".gitmodules", { followFinal: true });
    if (!(await lstat(file)).isFile()) return;
    text = await readFile(file, "utf8");
  } catch {
    return;
  }
  if (depth >= MAX_SUBMODULE_DEPTH)
    throw new KilnError("CONTEXT_FETCH", `git context: submodules nested more than ${MAX_SUBMODULE_DEPTH} deep`);
  const head = await git.resolveRef({ fs, dir, ref: "HEAD" });
  for (const sm of parseGitmodules(text)) {
    const entry = await gitlinkAt(dir, head, sm.path);
    if (!entry) continue;
    const url = sm.url.startsWith("./") || sm.url.startsWith("../") ? resolveRelativeUrl(parentUrl, sm.url) : sm.url;
    if (++budget.submodules > MAX_SUBMODULES)
      throw new KilnError("CONTEXT_FETCH", `git context: more than ${MAX_SUBMODULES} submodules to check out`);
    const subDir = await resolveInRoot(dir, sm.path);
    await mkdir(subDir, { recursive: true });
    // Credentials go only to the origin they were given for, never to another host's submodule.
    const subHeaders = new URL(url).origin === new URL(parentUrl).origin ? headers : {};
    await cloneInto(http, subHeaders, url, subDir, entry, "", false);
    await checkoutSubmodules(http, subHeaders, url, subDir, depth + 1, budget);
  }
}

async function gitlinkAt(dir: string, commitOid: string, filepath: string): Promise<string | undefined> {
  const parts = filepath.split("/").filter((s) => s !== "");
  const { commit } = await git.readCommit({ fs, dir, oid: commitOid });
  let tree = commit.tree;
  for (let i = 0; i < parts.length; i++) {
    const { tree: entries } = await git.readTree({ fs, dir, oid: tree });
    const e = entries.find((x) => x.path === parts[i]);
    if (!e) return undefined;
    if (i === parts.length - 1) return e.type === "commit" ? e.oid : undefined;
    tree = e.oid;
  }
  return undefined;
}

/** The `[submodule]` sections of a .gitmodules file (path and url). */
export function parseGitmodules(text: string): { path: string; url: string }[] {
  const out: { path: string; url: string }[] = [];
  let cur: { path?: string; url?: string } | undefined;
  const flush = (): void => {
    if (cur?.path && cur.url) out.push({ path: cur.path, url: cur.url });
  };
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    if (line.startsWith("[")) {
      flush();
      cur = /^\[submodule\s/.test(line) ? {} : undefined;
      continue;
    }
    const m = /^([A-Za-z]+)\s*=\s*(.*)$/.exec(line);
    if (cur && m) {
      const key = (m[1] as string).toLowerCase();
      if (key === "path") cur.path = m[2] as string;
      if (key === "url") cur.url = m[2] as string;
    }
  }
  flush();
  return out;
}

/** git's rule for a relative submodule URL: relative to the parent repository URL. */
export function resolveRelativeUrl(parent: string, rel: string): string {
  const u = new URL(parent);
  const segs = u.pathname.replace(/\/+$/, "").split("/");
  for (const part of rel.split("/")) {
    if (part === "..") segs.pop();
    else if (part !== "." && part !== "") segs.push(part);
  }
  u.pathname = segs.join("/");
  return u.toString();
}

/** Counts the bytes of a response body against the context's download budget. */
async function* counted(body: AsyncIterable<Uint8Array>, budget: GitBudget): AsyncGenerator<Uint8Array> {
  for await (const chunk of body) {
    budget.downloaded += chunk.length;
    if (budget.downloaded > MAX_GIT_DOWNLOAD) {
      throw new KilnError("CONTEXT_FETCH", `git context: the server sent more than ${MAX_GIT_DOWNLOAD} bytes`);
    }
    yield chunk;
  }
}

function httpClient(dispatcher: Dispatcher, budget: GitBudget, signal?: AbortSignal): HttpClient {
  return {
    async request(req: GitHttpRequest): Promise<GitHttpResponse> {
      let body: Buffer | undefined;
      if (req.body) {
        const chunks: Uint8Array[] = [];
        for await (const c of req.body) chunks.push(c);
        body = Buffer.concat(chunks);
      }
      const res = await request(req.url, {
        method: (req.method ?? "GET") as Dispatcher.HttpMethod,
        headers: req.headers ?? {},
        ...(body ? { body } : {}),
        dispatcher,
        ...(signal ? { signal } : {}),
      } as Parameters<typeof request>[1]);
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) headers[k] = String(v);
      return {
        url: req.url,
        method: req.method ?? "GET",
        headers,
        statusCode: res.statusCode,
        statusMessage: String(res.statusCode),
        body: counted(res.body as AsyncIterable<Uint8Array>, budget),
      };
    },
  };
}

function scrub(message: string, headers: Record<string, string>): string {
  const auth = headers.Authorization;
  return auth ? message.split(auth).join("***") : message;
}
