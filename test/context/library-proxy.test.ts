/**
 * Remote contexts through the library's `prepareContext` (a local tarball, a loopback GCS emulator, a URL
 * Dockerfile, a git smart-HTTP server), and through an HTTP(S)_PROXY: a context download goes through the
 * proxy (a CONNECT tunnel to the server) unless NO_PROXY names the server's host.
 */
import assert from "node:assert/strict";
import { createReadStream } from "node:fs";
import { readFile } from "node:fs/promises";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { KilnError, optionsFromFlags, prepareContext } from "../../src/index.js";
import { startFaultProxy, type FaultProxy } from "../support/fault-proxy.js";
import { removeDir, tempDir } from "../support/tmp.js";
import { run, startGitServer, writeFiles, type TestServer } from "./servers.js";

describe("library prepareContext and proxies", () => {
  let work: string;
  let ctxTar: string;
  /** Serves the context tarball as a GCS object and a Dockerfile; counts the requests it answered. */
  let files: { url: string; host: string; seen: string[]; server: http.Server };
  let git: TestServer;
  let proxy: FaultProxy;
  let seq = 0;

  /** Flags with a state dir of its own (no /kaniko, no shared $TMPDIR/kiln-<uid>). */
  const flags = (...args: string[]): string[] => [
    "--no-push",
    "--kaniko-dir",
    path.join(work, `state-${++seq}`),
    ...args,
  ];

  before(async () => {
    work = await tempDir("library-proxy");
    const src = path.join(work, "src");
    await writeFiles(src, { Dockerfile: "FROM scratch\nCOPY . /ctx/\n", "hello.txt": "hello\n" });
    ctxTar = path.join(work, "context.tar");
    run("tar", ["-cf", ctxTar, "-C", src, "."]);

    const seen: string[] = [];
    const server = http.createServer((req, res) => {
      seen.push(req.url ?? "");
      if (req.url === "/storage/v1/b/bkt/o/context.tar?alt=media") {
        res.writeHead(200, { "content-type": "application/octet-stream" });
        createReadStream(ctxTar).pipe(res);
      } else if (req.url === "/Remote.Dockerfile") {
        res.end("FROM scratch\nCOPY hello.txt /remote/\n");
      } else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as AddressInfo).port;
    files = { url: `http://127.0.0.1:${port}`, host: `127.0.0.1:${port}`, seen, server };

    const repos = path.join(work, "repos");
    const wt = path.join(work, "wt");
    await writeFiles(wt, { Dockerfile: "FROM scratch\nCOPY . /ctx/\n", "main.txt": "from git\n" });
    run("git", ["init", "-q", "-b", "main"], wt);
    run("git", ["add", "."], wt);
    run("git", ["commit", "-q", "-m", "one"], wt);
    run("git", ["clone", "-q", "--bare", wt, path.join(repos, "app.git")]);
    git = await startGitServer(repos);

    // The proxy's own forwarding target is unused: clients open CONNECT tunnels to the servers.
    proxy = await startFaultProxy({ target: files.host });
  });
  after(async () => {
    await proxy?.stop();
    await git?.stop();
    if (files) {
      files.server.closeAllConnections();
      await new Promise<void>((resolve) => files.server.close(() => resolve()));
    }
    if (work) await removeDir(work);
  });

  test("a local tarball context: optionsFromFlags refuses it, prepareContext unpacks it", async () => {
    assert.throws(
      () => optionsFromFlags(flags("--context", `tar://${ctxTar}`), {}, work),
      (e: unknown) => e instanceof KilnError && e.code === "CONTEXT_INVALID" && /prepareContext/.test(e.message),
    );
    const args = flags("--context", `tar://${ctxTar}`);
    const r = await prepareContext(args, {}, work);
    assert.equal(r.context.fetched, true);
    assert.equal(r.context.source, `tar://${ctxTar}`);
    assert.equal(r.context.dir, path.join(args[2] as string, "buildcontext"));
    assert.equal(r.options.contextDir, r.context.dir);
    assert.equal(r.options.dockerfilePath, path.join(r.context.dir, "Dockerfile"));
    assert.equal(await readFile(path.join(r.context.dir, "hello.txt"), "utf8"), "hello\n");

    // tar://stdin reads the stream the caller gives (never the process's own stdin).
    const piped = await prepareContext(flags("--context", "tar://stdin"), {}, work, {
      stdin: createReadStream(ctxTar),
    });
    assert.equal(piped.context.source, "tar://stdin");
    assert.equal(await readFile(path.join(piped.context.dir, "hello.txt"), "utf8"), "hello\n");
    await assert.rejects(
      prepareContext(flags("--context", "tar://stdin"), {}, work),
      (e: unknown) => e instanceof KilnError && e.code === "CONTEXT_INVALID" && /no input stream/.test(e.message),
    );
  });

  test("a gs:// context and a URL Dockerfile go through HTTP_PROXY; NO_PROXY bypasses it", async () => {
    const args = (): string[] =>
      flags("--context", "gs://bkt/context.tar", "--dockerfile", `${files.url}/Remote.Dockerfile`);
    const env = { STORAGE_EMULATOR_HOST: files.url, HTTP_PROXY: `http://${proxy.host}` };

    const tunnels = proxy.tunnels.length;
    const served = files.seen.length;
    const r = await prepareContext(args(), env, work);
    assert.equal(await readFile(path.join(r.context.dir, "hello.txt"), "utf8"), "hello\n");
    assert.equal(await readFile(r.options.dockerfilePath, "utf8"), "FROM scratch\nCOPY hello.txt /remote/\n");
    assert.deepEqual(proxy.tunnels.slice(tunnels), [files.host, files.host], "both downloads through the proxy");
    assert.equal(files.seen.length, served + 2);

    const bypass = proxy.tunnels.length;
    const direct = await prepareContext(args(), { ...env, NO_PROXY: "127.0.0.1" }, work);
    assert.equal(await readFile(path.join(direct.context.dir, "hello.txt"), "utf8"), "hello\n");
    assert.equal(proxy.tunnels.length, bypass, "NO_PROXY: no tunnel");
    assert.equal(files.seen.length, served + 4, "the server answered directly");
  });

  test("a git:// context goes through HTTP_PROXY (lower-case spellings too); NO_PROXY bypasses it", async () => {
    const host = git.url.replace(/^http:\/\//, "");
    const args = (): string[] => flags("--context", `git://${host}/app.git`);
    const env = { GIT_PULL_METHOD: "http", http_proxy: `http://${proxy.host}` };

    const tunnels = proxy.tunnels.length;
    const r = await prepareContext(args(), env, work);
    assert.equal(await readFile(path.join(r.context.dir, "main.txt"), "utf8"), "from git\n");
    const through = proxy.tunnels.slice(tunnels);
    assert.ok(through.length > 0 && through.every((t) => t === host), `tunnels: ${through.join(", ")}`);

    const bypass = proxy.tunnels.length;
    const direct = await prepareContext(args(), { ...env, no_proxy: "127.0.0.1" }, work);
    assert.equal(await readFile(path.join(direct.context.dir, "main.txt"), "utf8"), "from git\n");
    assert.equal(proxy.tunnels.length, bypass, "NO_PROXY: no tunnel");
  });
});
