import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { startBusyboxRegistry } from "../support/busybox-registry.js";
import { runKiln, type RunKilnResult } from "../support/kiln-cli.js";
import type { TestRegistry } from "../support/registry.js";
import { removeDir, tempDir } from "../support/tmp.js";
import { writeTree } from "../integration/helpers.js";

// The CLI never prints a secret, whole or in part, in its log, RUN output, report or the image history.
// Needs a built dist/ (npm run build) and, for the RUN test, an isolation back-end that runs busybox.

const TOKEN = "ghp_SUPERSECRETVALUE123";
/** Any run of 8 characters of the token, or the ADD URL's credentials. */
const LEAK =
  /SUPERSEC|UPERSECR|PERSECRE|ERSECRET|RSECRETV|SECRETVA|ECRETVAL|CRETVALU|RETVALUE|ETVALUE1|TVALUE12|VALUE123|S3CRETPW|alice/;

describe("secret redaction in the CLI's output", () => {
  let work: string;
  let reg: TestRegistry;
  let base: string;
  let server: Server;
  let port = 0;
  before(async () => {
    work = await tempDir("secret-redaction");
    ({ reg, base } = await startBusyboxRegistry());
    server = createServer((req, res) => {
      const ok = req.headers.authorization === `Basic ${Buffer.from("alice:S3CRETPW").toString("base64")}`;
      res.writeHead(ok ? 200 : 401);
      res.end(ok ? "payload" : "");
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    port = (server.address() as AddressInfo).port;
  });
  after(async () => {
    server?.close();
    await reg?.stop();
    if (work) await removeDir(work);
  });

  let n = 0;
  async function kiln(dockerfile: string[], args: string[]): Promise<{ r: RunKilnResult; dir: string }> {
    const dir = path.join(work, `ctx${n++}`);
    await writeTree(dir, { Dockerfile: [...dockerfile, ""].join("\n") });
    const r = await runKiln(["build", "--context", dir, "--no-push", "--insecure-pull", "--verbosity=debug", ...args], {
      env: { TOKEN },
      cwd: dir,
    });
    return { r, dir };
  }

  test("a part of a secret build arg in an error: not in the log, nor in the report", async () => {
    const { r, dir } = await kiln(
      ["FROM scratch", "ARG TOKEN", "ARG T2=${TOKEN#ghp_}", "COPY ${T2}.txt /x"],
      ["--secret-build-arg", "TOKEN", "--report", "report.json"],
    );
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /\*\*\*\.txt/);
    assert.doesNotMatch(r.stdout + r.stderr, LEAK);
    assert.doesNotMatch(await readFile(path.join(dir, "report.json"), "utf8"), LEAK);
  });

  test("RUN output printing the secret across a 64 KiB pipe read is masked", async () => {
    const { r } = await kiln(
      [`FROM ${base}`, "ARG TOKEN", `RUN printf '%65530s' '' | tr ' ' x; echo "$TOKEN"; echo "\${TOKEN#ghp_}"`],
      ["--secret-build-arg", "TOKEN", "--tar-path", "out.tar"],
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout + r.stderr, /x{1000}\*\*\*\n\*\*\*\n/);
    assert.doesNotMatch(r.stdout + r.stderr, LEAK);
  });

  test("ADD of a URL with credentials: sent as Basic auth; not in the log, report or history", async () => {
    const { r, dir } = await kiln(
      ["FROM scratch", `ADD http://alice:S3CRETPW@127.0.0.1:${port}/f.txt?X-Amz-Signature=SIG /f`],
      ["--tar-path", "out.tar", "--report", "report.json"],
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /ADD http:\/\/\*\*\*@127\.0\.0\.1/);
    assert.doesNotMatch(
      r.stdout + r.stderr,
      /X-Amz-Signature=SIG\b/,
      "a pre-signed URL's signature is masked in the log",
    );
    assert.doesNotMatch(r.stdout + r.stderr, LEAK);
    assert.doesNotMatch(await readFile(path.join(dir, "report.json"), "utf8"), LEAK);
    const tar = await readFile(path.join(dir, "out.tar"), "latin1");
    assert.match(tar, new RegExp(`ADD http://127\\.0\\.0\\.1:${port}/f\\.txt\\?X-Amz-Signature=SIG /f`));
    assert.doesNotMatch(tar, LEAK);
  });

  test("--dryrun shows an https --digest-file by its host only", async () => {
    const { r } = await kiln(
      ["FROM scratch"],
      ["--dryrun", "--digest-file", "https://ci:S3CRETPW@bucket.example.com/d?X-Amz-Signature=SIGSECRET"],
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout + r.stderr, /would write file https:\/\/bucket\.example\.com\/…/);
    assert.doesNotMatch(r.stdout + r.stderr, /S3CRETPW|SIGSECRET/);
  });
});
