import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { copyFile, mkdir, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { sharedKeyAuthorization } from "../../src/context/index.js";
import { readOciLayout, readTar } from "../../src/image/index.js";
import { startFaultProxy } from "../support/fault-proxy.js";
import { runKiln, type RunKilnResult } from "../support/kiln-cli.js";
import { removeDir, tempDir } from "../support/tmp.js";
import {
  AZURITE_ACCOUNT,
  AZURITE_KEY,
  run,
  startAzurite,
  startGcsServer,
  startGitServer,
  startHttpsFileServer,
  startS3,
  writeFiles,
  type TestServer,
} from "./servers.js";

const DOCKERFILE = "FROM scratch\nCOPY . /ctx/\n";

/** Files (path → content) of every layer of the single image in an OCI layout. */
async function imageFiles(layout: string): Promise<Map<string, string>> {
  const img = await readOciLayout(layout);
  const files = new Map<string, string>();
  for (const layer of img.layers) {
    for await (const e of readTar(await layer.openUncompressed())) {
      if (e.header.type !== "file") {
        e.body.resume();
        continue;
      }
      const chunks: Buffer[] = [];
      for await (const c of e.body) chunks.push(c as Buffer);
      files.set(e.header.name.replace(/^\.?\//, ""), Buffer.concat(chunks).toString("utf8"));
    }
  }
  return files;
}

describe("build contexts from every kaniko source", () => {
  let work: string;
  let seq = 0;
  const servers: TestServer[] = [];
  let ctxTarGz: string;

  /** Runs `kiln build --no-push` into a fresh OCI layout and state dir; returns the result and the image files. */
  async function buildWith(
    args: string[],
    env: Record<string, string | undefined> = {},
    input?: Uint8Array,
  ): Promise<RunKilnResult & { files: Map<string, string> }> {
    const n = ++seq;
    const out = path.join(work, `out-${n}`);
    const r = await runKiln(["build", "--no-push", "--oci-layout-path", out, ...args], {
      env: { KANIKO_DIR: path.join(work, `state-${n}`), ...env },
      cwd: work,
      ...(input ? { input } : {}),
    });
    const files = r.code === 0 ? await imageFiles(out) : new Map<string, string>();
    return { ...r, files };
  }

  before(async () => {
    work = await tempDir("contexts");
    const src = path.join(work, "src");
    await writeFiles(src, {
      Dockerfile: DOCKERFILE,
      "hello.txt": "hello\n",
      "sub/Dockerfile": DOCKERFILE,
      "sub/s.txt": "s\n",
    });
    ctxTarGz = path.join(work, "context.tar.gz");
    run("tar", ["-czf", ctxTarGz, "-C", src, "."]);
    run("tar", ["-cf", path.join(work, "context.tar"), "-C", src, "."]);
    run("sh", ["-c", `zstd -q -o ${path.join(work, "context.tar.zst")} ${path.join(work, "context.tar")}`]);
  });
  after(async () => {
    for (const s of servers) await s.stop();
    if (work) await removeDir(work);
  });

  test("tar:// gzip, plain and zstd archives, and --context-sub-path", async () => {
    for (const f of ["context.tar.gz", "context.tar", "context.tar.zst"]) {
      const r = await buildWith(["--context", `tar://${path.join(work, f)}`]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.files.get("ctx/hello.txt"), "hello\n", f);
      assert.equal(r.files.get("ctx/sub/s.txt"), "s\n", f);
    }
    const sub = await buildWith(["--context", `tar://${ctxTarGz}`, "--context-sub-path", "sub"]);
    assert.equal(sub.code, 0, sub.stderr);
    assert.deepEqual([...sub.files.keys()].sort(), ["ctx/Dockerfile", "ctx/s.txt"]);
  });

  test("an untrusted archive cannot reach host files (Dockerfile symlink, .. entries, link escapes)", async () => {
    const evil = path.join(work, "evil");
    const host = path.join(work, "host.Dockerfile");
    await writeFile(host, "FROM scratch\nCOPY hello.txt /leaked/\n");
    await writeFiles(evil, { "hello.txt": "hi\n" });
    run("ln", ["-s", host, path.join(evil, "Dockerfile")]);
    run("tar", ["-czf", path.join(work, "evil.tar.gz"), "-C", evil, "."]);
    const r = await buildWith(["--context", `tar://${path.join(work, "evil.tar.gz")}`]);
    assert.notEqual(r.code, 0, "the Dockerfile symlink must resolve inside the context");
    assert.match(r.stderr, /buildcontext\/.*host\.Dockerfile: no such file/);

    // A COPY of a link to / reads the context's own files, never the host's.
    const esc = path.join(work, "esc");
    await writeFiles(esc, { Dockerfile: "FROM scratch\nCOPY root/etc/hostname /out/\n" });
    run("ln", ["-s", "/", path.join(esc, "root")]);
    run("tar", ["-czf", path.join(work, "esc.tar.gz"), "-C", esc, "."]);
    const e = await buildWith(["--context", `tar://${path.join(work, "esc.tar.gz")}`]);
    assert.notEqual(e.code, 0);
    assert.match(e.stderr, /not found in the build context/);

    const dots = path.join(work, "dots.tar");
    run("tar", ["-cf", dots, "-C", work, "--transform", "s,^,../,", "context.tar.gz"]);
    const d = await buildWith(["--context", `tar://${dots}`]);
    assert.notEqual(d.code, 0);
    assert.match(d.stderr, /"\.\.\/context\.tar\.gz" has a "\.\." component/);
  });

  test("--context-sub-path applies to dir:// but not to a plain path (kaniko's quirk)", async () => {
    const src = path.join(work, "src");
    const viaScheme = await buildWith(["--context", `dir://${src}`, "--context-sub-path", "sub"]);
    assert.equal(viaScheme.code, 0, viaScheme.stderr);
    assert.ok(!viaScheme.files.has("ctx/hello.txt") && viaScheme.files.has("ctx/s.txt"));
    const plain = await buildWith(["--context", src, "--context-sub-path", "sub"]);
    assert.equal(plain.code, 0, plain.stderr);
    assert.ok(plain.files.has("ctx/hello.txt"));
  });

  test("tar://stdin streams a gzip archive; a missing archive fails clearly", async () => {
    const { readFile } = await import("node:fs/promises");
    const r = await buildWith(["--context", "tar://stdin"], {}, await readFile(ctxTarGz));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.files.get("ctx/hello.txt"), "hello\n");
    const missing = await buildWith(["--context", `tar://${path.join(work, "nope.tar.gz")}`]);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /nope\.tar\.gz: cannot open the archive/);
  });

  test("https:// tarball through redirects, --dockerfile URL, and a 404", async () => {
    const files = path.join(work, "www");
    await mkdir(files, { recursive: true });
    await copyFile(ctxTarGz, path.join(files, "ctx.tar.gz"));
    await writeFile(path.join(files, "Remote.Dockerfile"), "FROM scratch\nCOPY hello.txt /remote/\n");
    const srv = await startHttpsFileServer(files, work);
    servers.push(srv);
    const env = { NODE_EXTRA_CA_CERTS: srv.certFile };
    const r = await buildWith(["--context", `${srv.url}/redirect/3/ctx.tar.gz`], env);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.files.get("ctx/hello.txt"), "hello\n");

    const df = await buildWith(
      ["--context", `${srv.url}/ctx.tar.gz`, "--dockerfile", `${srv.url}/Remote.Dockerfile`],
      env,
    );
    assert.equal(df.code, 0, df.stderr);
    assert.deepEqual([...df.files.keys()], ["remote/hello.txt"]);

    const nf = await buildWith(["--context", `${srv.url}/missing.tar.gz?token=s3cr3tvalue`], env);
    assert.notEqual(nf.code, 0);
    assert.match(nf.stderr, /answered 404/);
    assert.doesNotMatch(nf.stderr, /s3cr3tvalue/);

    const big = await buildWith(["--context", `${srv.url}/ctx.tar.gz`], { ...env, KILN_CONTEXT_MAX_BYTES: "10" });
    assert.notEqual(big.code, 0);
    assert.match(big.stderr, /larger than the limit of 10 bytes|more than 10 bytes/);
  });

  test("git: branches, tags, pull refs, commits, BuildKit subdir, submodules, credentials", async () => {
    const repos = path.join(work, "git");
    const wt = path.join(work, "git-wt");
    const libWt = path.join(work, "git-lib");
    await mkdir(repos, { recursive: true });
    const libSha = await submoduleRepo(libWt, repos);
    // The application repository: main (v1 tag), dev branch, a pull ref, a submodule.
    await writeFiles(wt, {
      Dockerfile: DOCKERFILE,
      "main.txt": "v1\n",
      "app/Dockerfile": DOCKERFILE,
      "app/a.txt": "a\n",
    });
    run("git", ["init", "-q", "-b", "main"], wt);
    run("git", ["add", "."], wt);
    run("git", ["commit", "-q", "-m", "one"], wt);
    run("git", ["tag", "v1"], wt);
    const firstSha = run("git", ["rev-parse", "HEAD"], wt).trim();
    await writeFiles(wt, {
      "main.txt": "v2\n",
      ".gitmodules": '[submodule "lib"]\n\tpath = vendor/lib\n\turl = ../lib.git\n',
    });
    run("git", ["update-index", "--add", "--cacheinfo", `160000,${libSha},vendor/lib`], wt);
    // Not "add .": the gitlink has no checkout in this worktree and would be staged as removed.
    run("git", ["add", "main.txt", ".gitmodules"], wt);
    run("git", ["commit", "-q", "-m", "two"], wt);
    run("git", ["checkout", "-q", "-b", "dev", firstSha], wt);
    await writeFiles(wt, { "dev.txt": "dev\n" });
    run("git", ["add", "."], wt);
    run("git", ["commit", "-q", "-m", "dev"], wt);
    run("git", ["checkout", "-q", "--detach", firstSha], wt);
    await writeFiles(wt, { "pr.txt": "pr\n" });
    run("git", ["add", "."], wt);
    run("git", ["commit", "-q", "-m", "pr"], wt);
    const prSha = run("git", ["rev-parse", "HEAD"], wt).trim();
    const bare = path.join(repos, "app.git");
    run("git", ["clone", "-q", "--bare", wt, bare]);
    run("git", ["push", "-q", bare, "main", "dev", "v1"], wt);
    run("git", ["update-ref", "refs/pull/7/head", prSha], bare);
    run("git", ["symbolic-ref", "HEAD", "refs/heads/main"], bare);

    const srv = await startGitServer(repos);
    servers.push(srv);
    const host = srv.url.replace(/^http:\/\//, "");
    const env = { GIT_PULL_METHOD: "http" };

    const main = await buildWith(["--context", `git://${host}/app.git`], env);
    assert.equal(main.code, 0, main.stderr);
    assert.equal(main.files.get("ctx/main.txt"), "v2\n");
    assert.ok(!main.files.has("ctx/vendor/lib/lib.txt"), "submodules only with recurse-submodules");

    const sub = await buildWith(["--context", `git://${host}/app.git`, "--git", "recurse-submodules=true"], env);
    assert.equal(sub.code, 0, sub.stderr);
    assert.equal(sub.files.get("ctx/vendor/lib/lib.txt"), "lib\n");

    const dev = await buildWith(["--context", `git://${host}/app.git#refs/heads/dev`], env);
    assert.equal(dev.code, 0, dev.stderr);
    assert.equal(dev.files.get("ctx/dev.txt"), "dev\n");
    assert.equal(dev.files.get("ctx/main.txt"), "v1\n");

    const branchFlag = await buildWith(["--context", `git://${host}/app.git`, "--git", "branch=dev"], env);
    assert.equal(branchFlag.code, 0, branchFlag.stderr);
    assert.equal(branchFlag.files.get("ctx/dev.txt"), "dev\n");

    const tag = await buildWith(["--context", `git://${host}/app.git#refs/tags/v1`], env);
    assert.equal(tag.code, 0, tag.stderr);
    assert.equal(tag.files.get("ctx/main.txt"), "v1\n");
    assert.ok(!tag.files.has("ctx/dev.txt"));

    const pr = await buildWith(["--context", `git://${host}/app.git#refs/pull/7/head`], env);
    assert.equal(pr.code, 0, pr.stderr);
    assert.equal(pr.files.get("ctx/pr.txt"), "pr\n");

    const sha = await buildWith(["--context", `git://${host}/app.git#${firstSha}`], env);
    assert.equal(sha.code, 0, sha.stderr);
    assert.equal(sha.files.get("ctx/main.txt"), "v1\n");

    const refThenCommit = await buildWith(["--context", `git://${host}/app.git#refs/heads/main#${firstSha}`], env);
    assert.equal(refThenCommit.code, 0, refThenCommit.stderr);
    assert.equal(refThenCommit.files.get("ctx/main.txt"), "v1\n");

    const buildkit = await buildWith(["--context", `${srv.url}/app.git#main:app`]);
    assert.equal(buildkit.code, 0, buildkit.stderr);
    assert.deepEqual([...buildkit.files.keys()].sort(), ["ctx/Dockerfile", "ctx/a.txt"]);

    const subPath = await buildWith(["--context", `git://${host}/app.git`, "--context-sub-path", "app"], env);
    assert.equal(subPath.code, 0, subPath.stderr);
    assert.ok(subPath.files.has("ctx/a.txt") && !subPath.files.has("ctx/main.txt"));

    // Credentials: a server demanding Basic auth; the token never shows up in the output.
    const authSrv = await startGitServer(repos, { user: "tok3nvalue", pass: "" });
    servers.push(authSrv);
    const authHost = authSrv.url.replace(/^http:\/\//, "");
    const denied = await buildWith(["--context", `git://${authHost}/app.git`], env);
    assert.notEqual(denied.code, 0);
    const withToken = await buildWith(["--context", `git://${authHost}/app.git`], { ...env, GIT_TOKEN: "tok3nvalue" });
    assert.equal(withToken.code, 0, withToken.stderr);
    const inUrl = await buildWith(["--context", `git://tok3nvalue@${authHost}/app.git`, "-v", "debug"], env);
    assert.equal(inUrl.code, 0, inUrl.stderr);
    assert.doesNotMatch(inUrl.stderr + inUrl.stdout, /tok3nvalue/);
    const wrong = await buildWith(["--context", `git://x:wr0ngsecret@${authHost}/app.git`], env);
    assert.notEqual(wrong.code, 0);
    assert.doesNotMatch(wrong.stderr, /wr0ngsecret/);

    // HTTPS with an untrusted certificate: refused unless --git insecure-skip-tls=true.
    const tlsDir = path.join(work, "git-tls");
    await mkdir(tlsDir, { recursive: true });
    const tlsSrv = await startGitServer(repos, undefined, tlsDir);
    servers.push(tlsSrv);
    const tlsHost = tlsSrv.url.replace(/^https:\/\//, "");
    const untrusted = await buildWith(["--context", `git://${tlsHost}/app.git`]);
    assert.notEqual(untrusted.code, 0);
    assert.match(untrusted.stderr, /certificate/i);
    const skip = await buildWith(["--context", `git://${tlsHost}/app.git`, "--git", "insecure-skip-tls=true"]);
    assert.equal(skip.code, 0, skip.stderr);
    assert.equal(skip.files.get("ctx/main.txt"), "v2\n");
  });

  test("git: a .gitmodules symlink in the repository is not followed to a host file", async () => {
    const repos = path.join(work, "git-linkmod");
    const wt = path.join(work, "git-linkmod-wt");
    const libWt = path.join(work, "git-linkmod-lib");
    await mkdir(repos, { recursive: true });
    const libSha = await submoduleRepo(libWt, repos);
    // A valid submodule declaration, but outside the repository: only a followed symlink would reach it.
    const hostModules = path.join(work, "host-gitmodules");
    await writeFile(hostModules, '[submodule "lib"]\n\tpath = vendor/lib\n\turl = ../lib.git\n');
    // git itself refuses a symlinked .gitmodules (git add, update-index), so the tree is made with plumbing,
    // as a hostile server would serve it.
    await writeFiles(wt, { Dockerfile: DOCKERFILE, "main.txt": "main\n" });
    run("git", ["init", "-q", "-b", "main"], wt);
    const blob = (file: string): string => run("git", ["hash-object", "-w", file], wt).trim();
    await writeFile(path.join(work, "gitmodules-link-target"), hostModules);
    const vendor = mktree(wt, `160000 commit ${libSha}\tlib\n`);
    const tree = mktree(
      wt,
      `120000 blob ${blob(path.join(work, "gitmodules-link-target"))}\t.gitmodules\n` +
        `100644 blob ${blob(path.join(wt, "Dockerfile"))}\tDockerfile\n` +
        `100644 blob ${blob(path.join(wt, "main.txt"))}\tmain.txt\n` +
        `040000 tree ${vendor}\tvendor\n`,
    );
    const commit = run("git", ["commit-tree", tree, "-m", "one"], wt).trim();
    run("git", ["update-ref", "refs/heads/main", commit], wt);
    run("git", ["clone", "-q", "--bare", wt, path.join(repos, "app.git")]);
    const srv = await startGitServer(repos);
    servers.push(srv);
    const host = srv.url.replace(/^http:\/\//, "");
    const r = await buildWith(["--context", `git://${host}/app.git`, "--git", "recurse-submodules=true"], {
      GIT_PULL_METHOD: "http",
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.files.get("ctx/main.txt"), "main\n");
    assert.ok(!r.files.has("ctx/vendor/lib/lib.txt"), "the host file's submodule was not fetched");
  });

  test("git: submodules that fan out on every level stop at a total budget", { timeout: 120_000 }, async () => {
    // Level 0 is a plain repository; each level above holds 11 submodules of the level below (all the
    // same commit, at different paths): 11 + 121 + 1,331 checkouts without a budget.
    const repos = path.join(work, "git-fan");
    await mkdir(repos, { recursive: true });
    let below = await submoduleRepo(path.join(work, "git-fan-wt0"), repos); // lib.git
    let belowName = "lib.git";
    for (let level = 1; level <= 3; level++) {
      const wt = path.join(work, `git-fan-wt${level}`);
      const paths = Array.from({ length: 11 }, (_, i) => `m${i}`);
      await writeFiles(wt, {
        Dockerfile: DOCKERFILE,
        ".gitmodules": paths.map((p) => `[submodule "${p}"]\n\tpath = ${p}\n\turl = ../${belowName}\n`).join(""),
      });
      run("git", ["init", "-q", "-b", "main"], wt);
      for (const p of paths) run("git", ["update-index", "--add", "--cacheinfo", `160000,${below},${p}`], wt);
      run("git", ["add", "Dockerfile", ".gitmodules"], wt);
      run("git", ["commit", "-q", "-m", `level ${level}`], wt);
      belowName = `fan${level}.git`;
      run("git", ["clone", "-q", "--bare", wt, path.join(repos, belowName)]);
      below = run("git", ["rev-parse", "HEAD"], wt).trim();
    }
    const srv = await startGitServer(repos);
    servers.push(srv);
    const host = srv.url.replace(/^http:\/\//, "");
    const r = await buildWith(["--context", `git://${host}/${belowName}`, "--git", "recurse-submodules=true"], {
      GIT_PULL_METHOD: "http",
    });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /more than 100 submodules to check out/);
  });

  /** The environment of a build reading from s3rver at `url` (path-style, its fixed credentials, no IMDS). */
  const s3rverEnv = (url: string): Record<string, string> => ({
    S3_ENDPOINT: url,
    S3_FORCE_PATH_STYLE: "true",
    AWS_ACCESS_KEY_ID: "S3RVER",
    AWS_SECRET_ACCESS_KEY: "S3RVER",
    AWS_REGION: "us-east-1",
    AWS_EC2_METADATA_DISABLED: "true",
  });

  test("s3:// through s3rver with S3_ENDPOINT and S3_FORCE_PATH_STYLE, default object", async () => {
    const srv = await startS3(path.join(work, "s3"), "ctxbucket", {
      "context.tar.gz": ctxTarGz,
      "dir/other.tar.gz": ctxTarGz,
    });
    servers.push(srv);
    const env = s3rverEnv(srv.url);
    const r = await buildWith(["--context", "s3://ctxbucket"], env);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.files.get("ctx/hello.txt"), "hello\n");
    const keyed = await buildWith(["--context", "s3://ctxbucket/dir/other.tar.gz", "--context-sub-path", "sub"], env);
    assert.equal(keyed.code, 0, keyed.stderr);
    assert.equal(keyed.files.get("ctx/s.txt"), "s\n");
    const missing = await buildWith(["--context", "s3://ctxbucket/none.tar.gz"], env);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /s3:\/\/ctxbucket\/none\.tar\.gz: NoSuchKey/);
  });

  test("s3:// through HTTP_PROXY (a CONNECT tunnel to the S3 endpoint); NO_PROXY bypasses it", async () => {
    const srv = await startS3(path.join(work, "s3-proxy"), "proxied", { "context.tar.gz": ctxTarGz });
    servers.push(srv);
    const proxy = await startFaultProxy({ target: srv.url.replace(/^http:\/\//, "") });
    try {
      const env = {
        ...s3rverEnv(srv.url),
        // Credentials in the proxy URL: sent as Proxy-Authorization, and printed nowhere (also with the
        // proxy agent's own debug output on).
        HTTP_PROXY: `http://proxy-user:pr0xy%40pass@${proxy.host}`,
        DEBUG: "*",
        NO_PROXY: undefined,
        no_proxy: undefined,
      };
      const host = srv.url.replace(/^http:\/\//, "");
      const r = await buildWith(["--context", "s3://proxied"], env);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.files.get("ctx/hello.txt"), "hello\n");
      assert.ok(
        proxy.tunnels.length > 0 && proxy.tunnels.every((t) => t === host),
        `tunnels: ${proxy.tunnels.join(", ")}`,
      );
      const basic = `Basic ${Buffer.from("proxy-user:pr0xy@pass").toString("base64")}`;
      assert.ok(
        proxy.tunnelAuthorizations.every((a) => a === basic),
        String(proxy.tunnelAuthorizations),
      );
      assert.doesNotMatch(r.stderr + r.stdout, /pr0xy/);

      const through = proxy.tunnels.length;
      const direct = await buildWith(["--context", "s3://proxied"], { ...env, NO_PROXY: "127.0.0.1" });
      assert.equal(direct.code, 0, direct.stderr);
      assert.equal(proxy.tunnels.length, through, "NO_PROXY: no tunnel");
    } finally {
      await proxy.stop();
    }
  });

  test("gs:// and the hidden --bucket through a GCS JSON API server", async () => {
    const root = path.join(work, "gcs");
    await mkdir(path.join(root, "b1", "p"), { recursive: true });
    await copyFile(ctxTarGz, path.join(root, "b1", "context.tar.gz"));
    await copyFile(ctxTarGz, path.join(root, "b1", "p", "c.tgz"));
    const srv = await startGcsServer(root, "ya29.testtoken");
    servers.push(srv);
    const env = { STORAGE_EMULATOR_HOST: srv.url, GOOGLE_OAUTH_ACCESS_TOKEN: "ya29.testtoken" };
    const r = await buildWith(["--context", "gs://b1/p/c.tgz"], env);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.files.get("ctx/hello.txt"), "hello\n");
    const legacy = await buildWith(["--context", "", "--bucket", "b1"], env);
    assert.equal(legacy.code, 0, legacy.stderr);
    assert.equal(legacy.files.get("ctx/hello.txt"), "hello\n");
    assert.ok(srv.requests.includes("GET /storage/v1/b/b1/o/p%2Fc.tgz?alt=media"), srv.requests.join("\n"));
    assert.ok(srv.requests.includes("GET /storage/v1/b/b1/o/context.tar.gz?alt=media"));
    const anon = await buildWith(["--context", "gs://b1"], { STORAGE_EMULATOR_HOST: srv.url });
    assert.notEqual(anon.code, 0);
    assert.match(anon.stderr, /answered 401/);
  });

  test("Azure blob URLs with shared-key auth against azurite", async () => {
    const sign = (url: URL, headers: Record<string, string>, contentLength: number): string =>
      sharedKeyAuthorization(AZURITE_ACCOUNT, AZURITE_KEY, url, headers, { method: "PUT", contentLength });
    const srv = await startAzurite(
      path.join(work, "azurite"),
      { "ctx/context.tar.gz": ctxTarGz, "ctx/d/c.tar.gz": ctxTarGz },
      sign,
    );
    servers.push(srv);
    const env = {
      AZURE_STORAGE_ACCESS_KEY: AZURITE_KEY,
      AZURE_STORAGE_CONNECTION_STRING: `BlobEndpoint=${srv.endpoint}`,
    };
    const r = await buildWith(["--context", `https://${AZURITE_ACCOUNT}.blob.core.windows.net/ctx/d/c.tar.gz`], env);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.files.get("ctx/hello.txt"), "hello\n");
    const dflt = await buildWith(["--context", `https://${AZURITE_ACCOUNT}.blob.core.windows.net/ctx`], env);
    assert.equal(dflt.code, 0, dflt.stderr);
    const badKey = await buildWith(["--context", `https://${AZURITE_ACCOUNT}.blob.core.windows.net/ctx`], {
      ...env,
      AZURE_STORAGE_ACCESS_KEY: Buffer.from("wrong-key-wrong-key").toString("base64"),
    });
    assert.notEqual(badKey.code, 0);
    assert.match(badKey.stderr, /answered 403/);
    const noKey = await buildWith(["--context", `https://${AZURITE_ACCOUNT}.blob.core.windows.net/ctx`], {
      AZURE_STORAGE_CONNECTION_STRING: `BlobEndpoint=${srv.endpoint}`,
    });
    assert.match(noKey.stderr, /AZURE_STORAGE_ACCESS_KEY is not set/);
  });
});

/** `git mktree` of `entries` (its stdin format) in the repository at `cwd`; returns the tree's id. */
function mktree(cwd: string, entries: string): string {
  return execFileSync("git", ["mktree"], { cwd, input: entries, encoding: "utf8" }).trim();
}

/** The submodule repository the git tests use: `lib.txt` committed in `wt`, cloned bare to `<repos>/lib.git`. */
async function submoduleRepo(wt: string, repos: string): Promise<string> {
  await writeFiles(wt, { "lib.txt": "lib\n" });
  run("git", ["init", "-q", "-b", "main"], wt);
  run("git", ["add", "."], wt);
  run("git", ["commit", "-q", "-m", "lib"], wt);
  run("git", ["clone", "-q", "--bare", wt, path.join(repos, "lib.git")]);
  return run("git", ["rev-parse", "HEAD"], wt).trim();
}
