import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { format } from "prettier";
import { renderFlagReferenceMarkdown, renderHelp, EXECUTOR_FLAGS } from "../../src/cli/flags/index.js";
import { ExitCode } from "../../src/cli/exit-codes.js";
import { repoRoot } from "../support/tmp.js";

// One source of truth: the committed docs are generated from (or checked against) the code.
// Regenerate docs/flags.md with: KILN_UPDATE_DOCS=1 npx tsx --test test/report/docs.test.ts
const FLAGS_HEADER = [
  "# Flag reference",
  "",
  "<!-- Generated from src/cli/flags/executor-flags.ts and warmer-flags.ts by renderFlagReferenceMarkdown().",
  "     Do not edit: run `KILN_UPDATE_DOCS=1 npx tsx --test test/report/docs.test.ts`. -->",
  "",
  "`kiln build` and `executor` take the same flags (kaniko's executor flags, plus kiln's own in the last",
  "group); `kiln warm` and `warmer` take kaniko's warmer flags. Values go as `--flag value` or",
  "`--flag=value`; booleans as `--flag` or `--flag=false`. A flag marked **Not implemented yet** is",
  "accepted at its default value and fails with exit code 2 when set to anything else.",
  "",
  "",
].join("\n");

const docsDir = (): string => path.join(repoRoot(), "docs");

describe("generated docs", () => {
  test("docs/flags.md is the output of renderFlagReferenceMarkdown()", async () => {
    // Formatted like every committed Markdown file (CI runs prettier --check on docs/).
    const want = await format(FLAGS_HEADER + renderFlagReferenceMarkdown(), { parser: "markdown", printWidth: 120 });
    const file = path.join(docsDir(), "flags.md");
    if (process.env.KILN_UPDATE_DOCS === "1") await writeFile(file, want);
    assert.equal(await readFile(file, "utf8"), want, "docs/flags.md is stale: see the comment at its top");
  });

  test("docs/library.md shows test/report/library-example.ts, which compiles", async () => {
    const md = await readFile(path.join(docsDir(), "library.md"), "utf8");
    const example = await readFile(path.join(repoRoot(), "test", "report", "library-example.ts"), "utf8");
    const body = example
      .split("\n")
      .filter((l) => !l.startsWith("//"))
      .join("\n")
      .replace('from "../../src/index.js"', 'from "kiln"')
      .trim();
    const blocks = [...md.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => (m[1] ?? "").trim());
    assert.ok(blocks.includes(body), "the first ts example in docs/library.md must equal library-example.ts");
  });

  test("docs/exit-codes.md lists every exit code of src/cli/exit-codes.ts", async () => {
    const md = await readFile(path.join(docsDir(), "exit-codes.md"), "utf8");
    for (const code of Object.values(ExitCode))
      assert.match(md, new RegExp(`\\|\\s*${code}\\s*\\|`), `exit code ${code}`);
  });

  test("help is complete and grouped: every visible executor flag appears under its group", () => {
    const help = renderHelp("build");
    for (const f of EXECUTOR_FLAGS) {
      if (f.hidden) continue;
      assert.match(help, new RegExp(`--${f.name}\\b`), `--${f.name} in kiln build --help`);
    }
    assert.match(help, /^Logging:$/m);
    assert.match(renderHelp("kiln"), /kiln build/);
  });
});
