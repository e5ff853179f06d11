import { test } from "node:test";
import * as assert from "node:assert/strict";
import { renderHelp } from "./help.js";
import { renderFlagReferenceMarkdown } from "./markdown.js";
import { EXECUTOR_FLAGS } from "./executor-flags.js";
import { WARMER_FLAGS } from "./warmer-flags.js";

test("executor/build help lists every visible flag once, grouped, and no hidden ones", () => {
  for (const cmd of ["executor", "build"] as const) {
    const help = renderHelp(cmd);
    for (const s of EXECUTOR_FLAGS) {
      const n =
        help.split(`--${s.name} `).length - 1 + (help.match(new RegExp(`--${s.name}\\s{2,}`, "g"))?.length ?? 0);
      if (s.hidden) assert.doesNotMatch(help, new RegExp(`--${s.name}\\b`), s.name);
      else assert.ok(n >= 1, `${cmd} help misses --${s.name}`);
    }
    assert.match(help, /^Build input:$/m);
    assert.match(help, /^ {2}-f, --dockerfile path +Dockerfile to build/m);
    assert.match(help, /--cache-ttl duration +.*\(default 336h0m0s\)/);
    assert.match(help, /--ignore-var-run +.*\(default true\)/);
    assert.match(help, /--cache +Use the layer cache/);
    assert.doesNotMatch(help, /--cache +Use the layer cache.*\[not implemented yet\]/);
    assert.doesNotMatch(help, /snapshotMode|customPlatform|tarPath|whitelist/);
  }
  assert.match(renderHelp("build"), /kiln build \[flags\]/);
  assert.match(renderHelp("executor"), /executor version/);
});

test("warmer help uses the warmer's own short flags", () => {
  const help = renderHelp("warmer");
  assert.match(help, /-c, --cache-dir path/);
  assert.match(help, /-d, --dockerfile path/);
  assert.match(help, /-f, --force /);
  assert.match(help, /-i, --image image/);
  assert.match(help, /--customPlatform/);
  assert.doesNotMatch(help, /--destination/);
});

test("kiln help names the commands", () => {
  const help = renderHelp("kiln");
  for (const c of ["kiln build", "kiln warm", "kiln version", "executor", "warmer"]) assert.ok(help.includes(c), c);
});

test("Markdown reference covers both tables, escapes pipes, and is deterministic", () => {
  const md = renderFlagReferenceMarkdown();
  assert.equal(md, renderFlagReferenceMarkdown());
  assert.ok(md.endsWith("|\n"));
  for (const s of [...EXECUTOR_FLAGS, ...WARMER_FLAGS]) assert.ok(md.includes(`\`--${s.name}\``), s.name);
  assert.match(
    md,
    /\| `--snapshot-mode` \| `full` \\\| `redo` \\\| `time` \| `full` \|.*Deprecated spelling `--snapshotMode`/,
  );
  assert.match(md, /`--tar-path` .*Also `--tarPath`\./);
  assert.match(md, /`--no-push` .*Env `KANIKO_NO_PUSH`\./);
  for (const line of md.split("\n").filter((l) => l.startsWith("| `"))) {
    assert.equal(line.replace(/\\\|/g, "").split("|").length, 6, line);
  }
});

test("--kaniko-dir: help and the reference say KANIKO_DIR wins over the flag; --compressed-caching has no effect", () => {
  const help = renderHelp("build");
  assert.match(
    help,
    /--kaniko-dir path +.*as in kaniko, KANIKO_DIR overrides it.*\[env KANIKO_DIR, wins over the flag\]/,
  );
  assert.match(help, /--kaniko-dir path +.*else \$TMPDIR\/kiln-<uid>/);
  assert.match(help, /--compressed-caching +Accepted for compatibility; no effect/);
  const md = renderFlagReferenceMarkdown();
  assert.match(md, /`--kaniko-dir`.*Env `KANIKO_DIR` \(wins over the flag\)\./);
  assert.doesNotMatch(md, /Keep compressed layers in memory/);
});
