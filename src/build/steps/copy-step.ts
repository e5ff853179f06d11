import { lstat } from "node:fs/promises";
import { KilnError } from "../../common/errors.js";
import { stripUserinfo } from "../../common/url-userinfo.js";
import { DirContext, redactUrl } from "../../context/index.js";
import {
  PatternMatcher,
  envFromPairs,
  expandHeredoc,
  type AddInstruction,
  type CopyInstruction,
} from "../../dockerfile/index.js";
import { parseChmod } from "../chmod.js";
import { isArchive } from "./add-archive.js";
import { fetchGitSource, isRemoteSource, planAddGitSources } from "./add-git.js";
import { downloadUrl } from "./add-url.js";
import { copyIntoRoot, type CopyItem } from "./copy.js";
import { matchSources } from "./copy-sources.js";
import type { StepContext, StepOutput } from "./step-context.js";

/**
 * COPY and ADD: resolves `--chown` in the stage root and `--chmod`, expands sources in the build
 * context or the `--from` stage/image, adds heredoc bodies, and for ADD downloads URLs and
 * extracts local tar archives. Reports exactly the paths it wrote (no walk needed).
 */
export async function execCopy(instr: CopyInstruction | AddInstruction, ctx: StepContext): Promise<StepOutput> {
  const kw = instr.kind.toUpperCase();
  const urls = instr.kind === "add" ? instr.sources.filter(isRemoteSource) : [];
  const locals = instr.sources.filter((s) => !urls.includes(s));
  // Git sources are parsed (and checked against the flags) before anything is fetched.
  const gits = instr.kind === "add" ? planAddGitSources(instr) : undefined;
  if (instr.kind === "add" && instr.checksum !== undefined && locals.length > 0) {
    throw new KilnError("ADD_CHECKSUM_LOCAL", `checksum requires HTTP(S) or Git sources (got ${locals.join(" ")})`);
  }
  const root = await ctx.rootDir();
  let owner = instr.chown ? await ctx.identity(instr.chown) : undefined;
  // Docker: "a username without groupname or a UID without GID will use the same numeric UID as the GID".
  if (owner && instr.chown && !instr.chown.includes(":")) owner = { ...owner, gid: owner.uid };
  const from = instr.from ? await ctx.fromRoot(instr.from) : ctx.context;
  const t0 = Date.now();
  const items: CopyItem[] = [];

  const matches = await matchSources(from, locals, { parents: instr.parents, excludes: instr.excludes });
  for (const m of matches) {
    const unpack = instr.kind === "add" && instr.unpack !== false && m.stat.isFile() && (await isArchive(m.abs));
    items.push(unpack ? { kind: "archive", file: m.abs, label: `ADD ${m.rel}` } : { kind: "match", match: m, from });
  }
  for (const u of urls) {
    const git = gits?.sources.get(u);
    if (gits && git !== undefined) {
      // The checkout's contents go to the destination; .git only with --keep-git-dir (or ?keep-git-dir=true).
      const dir = await fetchGitSource(git, u, ctx.tmpDir, ctx.opts.env, ctx.signal);
      const repo = await DirContext.open(dir, []);
      const keep = gits.keepGitDir(git);
      const match = { rel: "", abs: repo.root, stat: await lstat(repo.root), keep: "" };
      items.push({
        kind: "match",
        from: repo,
        match: { ...match, exclude: new PatternMatcher([...(keep ? [] : [".git"]), ...instr.excludes]) },
      });
      continue;
    }
    const d = await downloadUrl(u, ctx.tmpDir, {
      checksum: instr.kind === "add" ? instr.checksum : undefined,
      env: ctx.opts.env,
      signal: ctx.signal,
    });
    const unpack = instr.kind === "add" && instr.unpack === true && (await isArchive(d.file));
    items.push(
      unpack
        ? { kind: "archive", file: d.file, label: `ADD ${redactUrl(u)}` }
        : { kind: "content", name: d.name, data: { file: d.file }, mode: 0o600, mtime: d.mtime },
    );
  }
  if (instr.heredocs.length > 0) {
    const pairs = new Map<string, string>();
    for (const [k, v] of ctx.args) if (v !== undefined) pairs.set(k, v);
    for (const e of ctx.config.Env ?? []) {
      const i = e.indexOf("=");
      if (i > 0) pairs.set(e.slice(0, i), e.slice(i + 1));
    }
    const env = envFromPairs(pairs);
    const mtime = ctx.opts.epoch !== undefined ? new Date(ctx.opts.epoch * 1000) : new Date();
    for (const doc of instr.heredocs) {
      const body = expandHeredoc(doc, env, ctx.escapeToken).content;
      items.push({ kind: "content", name: doc.name, data: Buffer.from(body, "utf8"), mode: 0o644, mtime });
    }
  }
  if (items.length === 0) {
    // BuildKit: with --parents a wildcard that matches nothing is not an error.
    if (instr.parents && locals.every((s) => /[*?[]/.test(s)) && instr.sources.length > 0) {
      return { snapshot: { kind: "none" }, detail: [...historySources(instr.sources), instr.dest].join(" ") };
    }
    throw new KilnError(
      "COPY_NO_SOURCE",
      `${kw}: no source files were specified (nothing matched ${instr.sources.join(" ")}, or --exclude removed everything)`,
    );
  }
  const ignored: string[] = [];
  const skipped: string[] = [];
  const { written, capabilities } = await copyIntoRoot(
    root,
    items,
    instr.dest,
    ctx.config.WorkingDir || "/",
    {
      ...(owner ? { owner: { uid: owner.uid, gid: owner.gid } } : {}),
      preserveOwners: instr.from !== undefined,
      keepCapabilities: instr.from !== undefined,
      ...(instr.chmod ? { chmod: parseChmod(instr.chmod) } : {}),
    },
    {
      parents: instr.parents,
      signal: ctx.signal,
      // In place, "/" is the build container itself: kiln's state dir, mount points (secrets, /proc …),
      // /var/run and --ignore-path are never written; kaniko leaves them out of the layer as well.
      ...(ctx.inPlace && ctx.ignore ? { ignore: ctx.ignore, onIgnored: (p: string) => ignored.push(p) } : {}),
      onSkipped: (p: string, reason: string) => skipped.push(`${p}: ${reason}`),
      ...(ctx.rootHooks ? { rootHooks: ctx.rootHooks } : {}),
    },
  );
  for (const s of skipped) {
    ctx.report({ kind: "warning", code: "ADD_ARCHIVE_SKIPPED", message: `${ctx.location}: ${kw} ${s}` });
  }
  if (ignored.length > 0) {
    ctx.report({
      kind: "warning",
      code: "COPY_IGNORED_PATH",
      message:
        `${ctx.location}: ${kw} skipped ${ignored.join(", ")}: on the in-place ignore list (kiln's state dir, ` +
        `a mount point, /proc /sys /dev, /var/run or --ignore-path), so not written and not in the image`,
    });
  }
  ctx.report({ kind: "phase", phase: "copy", ms: Date.now() - t0, stage: ctx.stageIndex });
  const docs = instr.heredocs.map((h) => `<<${h.name}`);
  // The copier creates every file afresh; only COPY --from (a source's capability, which the copier
  // tells) and an extracted archive set xattrs on them.
  const noCapabilities = instr.from === undefined && !items.some((i) => i.kind === "archive");
  return {
    snapshot: {
      kind: "paths",
      paths: written,
      ...(noCapabilities ? { noCapabilities } : {}),
      ...(capabilities ? { capabilities } : {}),
    },
    detail: [...historySources(instr.sources), ...docs, instr.dest].join(" "),
  };
}

/**
 * Sources as the image history (and a cache record's `createdBy`) shows them: a URL's user info is
 * removed (`https://ci:pw@host/f` → `https://host/f`); its query string stays, as written. Removed
 * whole, not `***@`: the user name is often the token itself (`https://TOKEN@github.com/…`), and the
 * text stays a URL a reader can fetch with their own credentials. The history, and so the image
 * digest, does not change when the password does.
 */
export function historySources(sources: readonly string[]): string[] {
  return sources.map((s) => (isRemoteSource(s) ? stripUserinfo(s) : s));
}
