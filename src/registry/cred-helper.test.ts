import { test } from "node:test";
import assert from "node:assert/strict";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { hasCode } from "../common/errors.js";
import { runCredentialHelper } from "./cred-helper.js";

/** A directory holding `docker-credential-<name>` scripts, and an env whose PATH finds them first. */
async function helpers(
  scripts: Record<string, string>,
): Promise<{ env: Record<string, string>; done: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), "kiln-cred-helper-"));
  for (const [name, body] of Object.entries(scripts)) {
    const file = path.join(dir, `docker-credential-${name}`);
    await writeFile(file, `#!/bin/sh\n${body}\n`);
    await chmod(file, 0o755);
  }
  return { env: { PATH: `${dir}:/usr/bin:/bin` }, done: () => rm(dir, { recursive: true, force: true }) };
}

test(
  "a credential helper that hangs, floods its output or answers broken JSON fails clearly",
  { timeout: 20_000 },
  async () => {
    const h = await helpers({
      hang: "exec sleep 4247000",
      flood: "head -c 5000000 /dev/zero",
      broken: `printf '{"Username":"u","Secret":"s3cret-from-helper"'`,
      ok: `read url; printf '{"ServerURL":"%s","Username":"u","Secret":"p"}' "$url"`,
    });
    try {
      await assert.rejects(runCredentialHelper("hang", "reg.example", h.env, 300), (e: unknown) => {
        assert.ok(hasCode(e, "CREDENTIAL_HELPER_FAILED"));
        assert.match(e.message, /docker-credential-hang for reg\.example did not answer within 0\.3 s/);
        return true;
      });
      await assert.rejects(runCredentialHelper("flood", "reg.example", h.env), /wrote more than 1048576 bytes/);
      await assert.rejects(runCredentialHelper("broken", "reg.example", h.env), (e: unknown) => {
        assert.ok(e instanceof Error);
        assert.match(e.message, /answered invalid JSON/);
        assert.equal(e.cause, undefined, "the parse error quotes the answer: not kept");
        assert.ok(!e.message.includes("s3cret"));
        return true;
      });
      assert.deepEqual(await runCredentialHelper("ok", "reg.example", h.env), { username: "u", password: "p" });
    } finally {
      await h.done();
    }
  },
);
