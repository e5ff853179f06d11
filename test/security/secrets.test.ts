/**
 * Secrets never leak: registry credentials (docker config.json and the Basic header made from them),
 * `--secret` values (file and env), build args marked secret (`--secret-build-arg`) and the executor's own
 * environment never appear in any log line
 * (every verbosity, every log format), nor anywhere in the output image: every blob of the pushed image
 * in the registry's storage, of the OCI layout and of the docker-archive tarball is scanned, decompressed, and
 * so is the `--report` file.
 * The RUN steps actively try to read the executor's credentials and a service-account token path, so the
 * scan also proves RUN isolation (kaniko leaks /kaniko/.docker/config.json, its issue #1861).
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createHash, randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, writeFile, lstat } from "node:fs/promises";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { gunzipSync } from "node:zlib";
import { busyboxOciLayout, pushLayoutToRegistry } from "../support/base-images.js";
import { startRegistry, type TestRegistry } from "../support/registry.js";
import { removeDir, tempDir } from "../support/tmp.js";
import { Figures, runKilnMeasured } from "../reliability/support.js";

const figures = new Figures("secrets (logs and every output byte scanned)");

/** Every file below `dir` (regular files only). */
async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await filesUnder(p)));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

/** The bytes of a blob plus, when it is gzip or zstd, its decompressed bytes. */
function expand(b: Buffer): Buffer[] {
  if (b.length > 2 && b[0] === 0x1f && b[1] === 0x8b) return [b, gunzipSync(b)];
  if (b.length > 4 && b.readUInt32LE(0) === 0xfd2fb528)
    return [b, execFileSync("zstd", ["-dc"], { input: b, maxBuffer: 512 * 1024 * 1024 })];
  return [b];
}

describe("secrets never reach logs or images", { timeout: 600_000 }, () => {
  let reg: TestRegistry;
  let work: string;
  const user = "ci-bot";
  const password = `pw-${randomBytes(12).toString("hex")}`;
  const fileSecret = `file-secret-${randomBytes(12).toString("hex")}`;
  const envSecret = `env-secret-${randomBytes(12).toString("hex")}`;
  const argSecret = `arg-secret-${randomBytes(12).toString("hex")}`;
  const argSecretMd5 = createHash("md5").update(argSecret).digest("hex");
  // A cache-key fingerprint of the value (sha256 prefix) must not be stored either.
  const argSecretSha = createHash("sha256").update(argSecret).digest("hex").slice(0, 16);
  const basic = Buffer.from(`${user}:${password}`).toString("base64");
  const needles = [password, fileSecret, envSecret, basic, argSecret, argSecretSha];
  let scannedBytes = 0;
  let scannedLines = 0;
  let scannedBlobs = 0;

  before(async () => {
    reg = await startRegistry({ htpasswd: { username: user, password } });
    await pushLayoutToRegistry(await busyboxOciLayout(), reg.host, "busybox:latest", { username: user, password });
    work = await tempDir("secrets");
  });
  after(async () => {
    await figures.flush();
    await reg?.stop();
    if (work) await removeDir(work);
  });

  function scan(where: string, bytes: Buffer, leaks: string[]): void {
    scannedBytes += bytes.length;
    for (const n of needles) if (bytes.includes(Buffer.from(n))) leaks.push(`${where} contains ${n.slice(0, 12)}…`);
  }

  const variants: { name: string; flags: string[] }[] = [
    { name: "trace, text, layer cache", flags: ["--verbosity", "trace", "--log-format", "text", "--cache=true"] },
    { name: "debug, json", flags: ["--verbosity", "debug", "--log-format", "json"] },
    { name: "info, color", flags: ["--verbosity", "info", "--log-format", "color", "--log-timestamp"] },
  ];

  for (const [k, v] of variants.entries()) {
    test(`build with credentials and secrets (${v.name}): no secret in logs or any output byte`, async () => {
      const dir = path.join(work, `v${k}`);
      const ctx = path.join(dir, "ctx");
      const dockerConfig = path.join(dir, "docker");
      await mkdir(ctx, { recursive: true });
      await mkdir(dockerConfig, { recursive: true });
      await mkdir(path.join(dir, "cache"));
      const cfgFile = path.join(dockerConfig, "config.json");
      await writeFile(cfgFile, JSON.stringify({ auths: { [reg.host]: { auth: basic } } }));
      const secretFile = path.join(dir, "secret.txt");
      await writeFile(secretFile, `${fileSecret}\n`);
      await writeFile(
        path.join(ctx, "Dockerfile"),
        [
          `FROM ${reg.host}/busybox:latest`,
          // The secret is usable in the step that mounts it…
          "RUN --mount=type=secret,id=filesec --mount=type=secret,id=envsec,env=ENVSEC " +
            'test -s /run/secrets/filesec && test -n "$ENVSEC" && wc -c /run/secrets/filesec > /used',
          // …and nothing of the executor's own is reachable or inherited.
          `RUN (cat ${cfgFile}; cat /kaniko/.docker/config.json; cat ${secretFile}; ` +
            "cat /var/run/secrets/kubernetes.io/serviceaccount/token; ls -la /run/secrets; env) > /probe.txt 2>&1; true",
          // A build arg marked secret: RUN sees it (its hash is stored, proving the value arrived), its output
          // is redacted in the log; the value itself is in no config, history or layer kiln writes.
          "ARG BUILD_TOKEN",
          'RUN echo "token is $BUILD_TOKEN" && printf %s "$BUILD_TOKEN" | md5sum > /arg.md5',
          "COPY . /ctx/",
          "",
        ].join("\n"),
      );
      const tarPath = path.join(dir, "image.tar");
      const layout = path.join(dir, "layout");
      const reportFile = path.join(dir, k % 2 === 0 ? "report.json" : "report.html");
      const r = await runKilnMeasured(
        [
          "build",
          "-f",
          path.join(ctx, "Dockerfile"),
          "-c",
          ctx,
          "--destination",
          `${reg.host}/app:${k}`,
          "--insecure",
          "--insecure-pull",
          "--tar-path",
          tarPath,
          "--oci-layout-path",
          layout,
          "--secret",
          `id=filesec,src=${secretFile}`,
          "--secret",
          "id=envsec,env=KILN_TEST_ENV_SECRET",
          "--secret-build-arg",
          "BUILD_TOKEN",
          "--report",
          reportFile,
          "--kaniko-dir",
          path.join(dir, "state"),
          ...v.flags,
          // The OCI-layout cache writes one layout per entry, named `<prefix>:<key>`, under dir/cache.
          ...(v.flags.includes("--cache=true") ? ["--cache-repo", `oci:${path.join(dir, "cache", "c")}`] : []),
        ],
        {
          env: {
            DOCKER_CONFIG: dockerConfig,
            KILN_TEST_ENV_SECRET: envSecret,
            CI_REGISTRY_PASSWORD: password,
            BUILD_TOKEN: argSecret,
          },
        },
      );
      assert.equal(r.code, 0, r.stderr);
      const leaks: string[] = [];
      const log = r.stdout + r.stderr;
      scannedLines += log.split("\n").length;
      scan(`log (${v.name})`, Buffer.from(log), leaks);
      // The RUN printed the secret build arg: the log shows it redacted.
      assert.match(log, /token is \*\*\*/);
      // The probe ran: its output is in the image (so the scan below really covers what RUN could read).
      assert.match(log, /RUN \(cat/);

      const blobs: [string, Buffer][] = [["report", await readFile(reportFile)]];
      for (const f of await filesUnder(layout))
        blobs.push([`oci-layout ${path.relative(layout, f)}`, await readFile(f)]);
      const untar = path.join(dir, "untar");
      await mkdir(untar, { recursive: true });
      execFileSync("tar", ["-xf", tarPath, "-C", untar]);
      blobs.push(["docker-archive (whole)", await readFile(tarPath)]);
      for (const f of await filesUnder(untar))
        blobs.push([`docker-archive ${path.relative(untar, f)}`, await readFile(f)]);
      if (v.flags.includes("--cache=true"))
        assert.ok((await readdir(path.join(dir, "cache"))).length > 0, "the layer cache was written");
      if (existsSync(path.join(dir, "cache")))
        for (const f of await filesUnder(path.join(dir, "cache")))
          blobs.push([`layer cache ${path.relative(dir, f)}`, await readFile(f)]);
      const storage = path.join(reg.dir, "storage");
      for (const f of await filesUnder(storage)) {
        if ((await lstat(f)).size > 0) blobs.push([`registry ${path.relative(storage, f)}`, await readFile(f)]);
      }
      let probeSeen = false;
      let argSeen = false;
      for (const [where, b] of blobs) {
        scannedBlobs++;
        for (const x of expand(b)) {
          scan(where, x, leaks);
          // The RUN really tried the executor's config path and found nothing there (busybox cat's message).
          if (x.includes(Buffer.from(`can't open '${cfgFile}'`))) probeSeen = true;
          if (x.includes(Buffer.from(argSecretMd5))) argSeen = true;
        }
      }
      assert.ok(probeSeen, "the isolation probe's output (cat: can't open <executor config>) is in a layer");
      assert.ok(argSeen, "the RUN saw the secret build arg (the md5 of its value is in a layer)");
      figures.add(
        `creds + --secret file/env + --secret-build-arg, ${v.name}`,
        1,
        leaks.length === 0 ? 1 : 0,
        `${needles.length} secrets × ${blobs.length} blobs + ${log.split("\n").length} log lines; max RSS ${(r.maxRssKb / 1024).toFixed(0)} MiB`,
      );
      assert.deepEqual(leaks, []);
    });
  }

  test("figures", () => {
    figures.add(
      "secrets scan total",
      variants.length,
      variants.length,
      `${(scannedBytes / 1048576).toFixed(1)} MiB scanned (decompressed), ${scannedBlobs} blobs, ${scannedLines} log lines`,
    );
  });

  test("an instruction that would store a secret build arg in the image config fails the build", async () => {
    const dir = path.join(work, "stored");
    const ctx = path.join(dir, "ctx");
    await mkdir(ctx, { recursive: true });
    await writeFile(
      path.join(ctx, "Dockerfile"),
      `FROM ${reg.host}/busybox:latest\nARG BUILD_TOKEN\nRUN echo "$BUILD_TOKEN" | wc -c\nENV LEAKED=$BUILD_TOKEN\n`,
    );
    const tarPath = path.join(dir, "image.tar");
    const dockerConfig = path.join(dir, "docker");
    await mkdir(dockerConfig, { recursive: true });
    await writeFile(path.join(dockerConfig, "config.json"), JSON.stringify({ auths: { [reg.host]: { auth: basic } } }));
    const r = await runKilnMeasured(
      [
        "build",
        "-f",
        path.join(ctx, "Dockerfile"),
        "-c",
        ctx,
        "--destination",
        `${reg.host}/stored:latest`,
        "--insecure",
        "--insecure-pull",
        "--tar-path",
        tarPath,
        "--secret-build-arg",
        "BUILD_TOKEN",
        "--kaniko-dir",
        path.join(dir, "state"),
        "--verbosity",
        "trace",
      ],
      { env: { BUILD_TOKEN: argSecret, CI_REGISTRY_PASSWORD: password, DOCKER_CONFIG: dockerConfig } },
    );
    const log = r.stdout + r.stderr;
    const ok =
      r.code === 1 &&
      /secret build arg BUILD_TOKEN would be stored in the image config \(config\.Env\[\d+\]\)/.test(log) &&
      !log.includes(argSecret);
    let tarWritten = true;
    try {
      await lstat(tarPath);
    } catch {
      tarWritten = false;
    }
    const manifest = await fetch(`http://${reg.host}/v2/stored/manifests/latest`, {
      headers: { authorization: `Basic ${basic}` },
    });
    figures.add(
      "ENV NAME=$SECRET_BUILD_ARG → build refused",
      1,
      ok && !tarWritten && manifest.status === 404 ? 1 : 0,
      (log.match(/ERRO.*$/m)?.[0] ?? "").slice(0, 110),
    );
    assert.equal(r.code, 1, log);
    assert.match(log, /secret build arg BUILD_TOKEN would be stored in the image config \(config\.Env\[\d+\]\)/);
    assert.ok(!log.includes(argSecret), "the value is not in the log");
    assert.ok(!tarWritten, "no --tar-path output");
    assert.equal(manifest.status, 404, "nothing pushed");
  });
});
