import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { hasCode } from "../common/errors.js";
import { loadIgnorePatterns } from "./dockerignore-file.js";

test(
  "a .dockerignore that is a FIFO or leads to /dev/zero is refused, not read forever",
  { timeout: 20_000 },
  async () => {
    const ctx = await mkdtemp(path.join(tmpdir(), "kiln-ignore-file-"));
    try {
      const dockerfile = path.join(ctx, "Dockerfile");
      await writeFile(dockerfile, "FROM scratch\n");
      execFileSync("mkfifo", [path.join(ctx, ".dockerignore")]);
      await assert.rejects(loadIgnorePatterns(ctx, dockerfile), (e: unknown) => {
        assert.ok(hasCode(e, "CONTEXT_INVALID"));
        assert.match(e.message, /\.dockerignore is not a regular file/);
        return true;
      });
      await rm(path.join(ctx, ".dockerignore"));
      await symlink("/dev/zero", `${dockerfile}.dockerignore`); // beside the Dockerfile: the user's own path
      await assert.rejects(loadIgnorePatterns(ctx, dockerfile), /not a regular file/);
      await rm(`${dockerfile}.dockerignore`);
      await writeFile(path.join(ctx, ".dockerignore"), "*.log\n");
      assert.deepEqual(await loadIgnorePatterns(ctx, dockerfile), ["*.log"]);
    } finally {
      await rm(ctx, { recursive: true, force: true });
    }
  },
);
