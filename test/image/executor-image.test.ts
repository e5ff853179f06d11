import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFile, writeFile, mkdir, chmod, stat } from "node:fs/promises";
import * as path from "node:path";
import { promisify } from "node:util";
import { startFakeEcr } from "../registry/cred-fakes.js";
import { busyboxOciLayout, debianOciLayout, pushLayoutToRegistry } from "../support/base-images.js";
import { podmanAvailable, setupPodman, type Podman } from "../support/podman.js";
import { startRegistry, type TestRegistry } from "../support/registry.js";
import { removeDir, repoRoot, tempDir } from "../support/tmp.js";

const exec = promisify(execFile);

// kiln's executor image, built by kiln itself, run in a real unprivileged container (podman + runc,
// default capabilities and seccomp, no --privileged): the kaniko contract pipelines depend on.
describe("the executor image in an unprivileged container", { timeout: 900_000 }, () => {
  let plain: TestRegistry;
  let secure: TestRegistry;
  let podman: Podman;
  let work: string;
  let skip: string | undefined;
  const user = "ci";
  const pass = "s3cret-pass";

  before(async () => {
    if (process.getuid?.() !== 0) skip = "needs root";
    else if (!(await podmanAvailable())) skip = "podman/runc not installed";
    if (skip) return;
    work = await tempDir("executor-image");
    plain = await startRegistry();
    secure = await startRegistry({ tls: true, htpasswd: { username: user, password: pass } });
    podman = await setupPodman(path.join(work, "podman"), [plain.host]);
    await pushLayoutToRegistry(await busyboxOciLayout(), plain.host, "busybox:latest");
    await pushLayoutToRegistry(await debianOciLayout(), plain.host, "debian:bookworm");
    // One staging, three images: kiln:latest (executor), kiln:debug, kiln:slim.
    const script = path.join(repoRoot(), "deploy/build-executor-image.sh");
    await exec("bash", [script, "--all", `${plain.host}/kiln`, "--insecure", "--verbosity", "warn"], {
      cwd: repoRoot(),
      env: { ...process.env, KILN_IMAGE_STAGE: path.join(work, "stage") },
      maxBuffer: 32 * 1024 * 1024,
    });
    // The workspace a pipeline mounts, and the docker config + CA it mounts under /kaniko.
    await mkdir(path.join(work, "ws"), { recursive: true });
    await writeFile(
      path.join(work, "ws/Dockerfile"),
      `FROM ${plain.host}/busybox:latest\nRUN echo built-in-podman > /proof && id -u > /uid\nCOPY hello.txt /hello.txt\nCMD ["cat", "/proof"]\n`,
    );
    await writeFile(path.join(work, "ws/hello.txt"), "hello from the workspace\n");
    await mkdir(path.join(work, "docker"), { recursive: true });
    const auth = Buffer.from(`${user}:${pass}`).toString("base64");
    await writeFile(path.join(work, "docker/config.json"), JSON.stringify({ auths: { [secure.host]: { auth } } }));
    await chmod(path.join(work, "ws"), 0o755);
  });
  after(async () => {
    await plain?.stop();
    await secure?.stop();
    if (work) await removeDir(work).catch(() => undefined);
  });

  test("has kaniko's layout, env, workdir and entrypoint", async (t) => {
    if (skip) return t.skip(skip);
    const cfg = JSON.parse(
      (await exec("skopeo", ["inspect", "--tls-verify=false", "--config", `docker://${plain.host}/kiln:latest`]))
        .stdout,
    ) as { config: { Env: string[]; Entrypoint: string[]; WorkingDir: string } };
    assert.deepEqual(cfg.config.Entrypoint, ["/kaniko/executor"]);
    assert.equal(cfg.config.WorkingDir, "/workspace");
    for (const e of [
      "DOCKER_CONFIG=/kaniko/.docker/",
      "SSL_CERT_DIR=/kaniko/ssl/certs",
      "PATH=/usr/local/bin:/kaniko",
      "HOME=/root",
      "USER=root",
    ]) {
      assert.ok(cfg.config.Env.includes(e), `missing ${e}`);
    }
    const raw = JSON.parse(
      (await exec("skopeo", ["inspect", "--tls-verify=false", "--raw", `docker://${plain.host}/kiln:latest`])).stdout,
    ) as { layers: { size: number }[] };
    const size = raw.layers.reduce((a, l) => a + l.size, 0);
    console.log(`# executor image: ${raw.layers.length} layers, ${(size / 1e6).toFixed(1)} MB compressed`);
    const r = await podman.run(["run", "--rm", "--network", "host", `${plain.host}/kiln:latest`, "version"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Kaniko version :/);
  });

  test("builds a Dockerfile with RUN from /workspace and pushes with mounted credentials", async (t) => {
    if (skip) return t.skip(skip);
    const dest = `${secure.host}/team/app:podman`;
    const r = await podman.run([
      "run",
      "--rm",
      "--network",
      "host",
      "-v",
      `${path.join(work, "ws")}:/workspace:ro`,
      "-v",
      `${path.join(work, "docker/config.json")}:/kaniko/.docker/config.json:ro`,
      "-v",
      `${secure.caFile}:/kaniko/ssl/certs/test-ca.crt:ro`,
      `${plain.host}/kiln:latest`,
      "--dockerfile",
      "Dockerfile",
      "--context",
      "dir:///workspace",
      "--destination",
      dest,
      "--insecure-pull",
      "--digest-file",
      "/dev/termination-log",
    ]);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.doesNotMatch(r.stdout + r.stderr, new RegExp(pass));
    const inspect = JSON.parse(
      (
        await exec("skopeo", [
          "inspect",
          "--tls-verify=false",
          "--creds",
          `${user}:${pass}`,
          "--config",
          `docker://${dest}`,
        ])
      ).stdout,
    ) as { rootfs: { diff_ids: string[] }; config: { Cmd: string[] } };
    assert.equal(inspect.rootfs.diff_ids.length, 3);
    assert.deepEqual(inspect.config.Cmd, ["cat", "/proof"]);
    const out = path.join(work, "pulled");
    await exec("skopeo", [
      "copy",
      "--src-tls-verify=false",
      "--src-creds",
      `${user}:${pass}`,
      `docker://${dest}`,
      `oci:${out}:x`,
    ]);
    await exec("umoci", ["unpack", "--image", `${out}:x`, path.join(work, "bundle")]);
    assert.equal(await readFile(path.join(work, "bundle/rootfs/proof"), "utf8"), "built-in-podman\n");
    assert.equal(await readFile(path.join(work, "bundle/rootfs/uid"), "utf8"), "0\n");
    assert.equal(await readFile(path.join(work, "bundle/rootfs/hello.txt"), "utf8"), "hello from the workspace\n");
  });

  test(":debug runs the Jenkins pattern (/busybox/cat with a tty, then the executor through /busybox/sh)", async (t) => {
    if (skip) return t.skip(skip);
    const name = `kiln-jenkins-${process.pid}`;
    const started = await podman.run([
      "run",
      "-d",
      "-t",
      "--name",
      name,
      "--network",
      "host",
      "--entrypoint",
      "/busybox/cat",
      "-v",
      `${path.join(work, "ws")}:/workspace:ro`,
      `${plain.host}/kiln:debug`,
    ]);
    assert.equal(started.code, 0, started.stderr);
    try {
      const r = await podman.run([
        "exec",
        name,
        "/busybox/sh",
        "-c",
        "export PATH=/busybox:$PATH; /kaniko/executor -f `pwd`/Dockerfile -c `pwd` --insecure-pull --no-push --digest-file /tmp/digest && cat /tmp/digest",
      ]);
      assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
      assert.match(r.stdout, /sha256:[a-f0-9]{64}$/);
      const timing = await podman.run([
        "exec",
        name,
        "/busybox/sh",
        "-c",
        "/busybox/time -p /kaniko/executor version 2>&1 >/dev/null | /busybox/grep real",
      ]);
      console.log(`# executor start to exit (version) inside the container: ${timing.stdout.trim()} s`);
    } finally {
      await podman.run(["rm", "-f", name]);
    }
  });

  test("podman kube play runs the documented Kubernetes Pod to completion", async (t) => {
    if (skip) return t.skip(skip);
    const docs = await readFile(path.join(repoRoot(), "docs/integrations/kubernetes-pod.yaml"), "utf8");
    const dest = `${secure.host}/team/app:kube`;
    const auth = Buffer.from(`${user}:${pass}`).toString("base64");
    const yaml = docs
      .replaceAll("REGISTRY.EXAMPLE/team/app:latest", dest)
      .replaceAll("KILN_IMAGE", `${plain.host}/kiln:latest`)
      .replaceAll(
        "DOCKER_CONFIG_JSON_BASE64",
        Buffer.from(JSON.stringify({ auths: { [secure.host]: { auth } } })).toString("base64"),
      )
      .replaceAll("/path/to/workspace", path.join(work, "ws"))
      .replace("args:", `args:\n        - --insecure-pull\n        - --skip-tls-verify-registry=${secure.host}`);
    // podman 4.3's `kube play` crashes (a nil pointer in VolumeFromSecret) on secret volumes, so
    // the test plays the documented Pod with the Secret's config.json provided as a hostPath
    // volume at the same mount point; everything else is the documented manifest.
    const podDoc = (yaml.split(/^---$/m)[1] ?? "").replace(
      / {6}secret:\n {8}secretName: kiln-docker-config\n {8}items:\n {10}- key: \.dockerconfigjson\n {12}path: config\.json\n/,
      `      hostPath:\n        path: ${path.join(work, "docker")}\n        type: Directory\n`,
    );
    assert.match(podDoc, /hostPath:\n {8}path: .*docker\n/);
    const file = path.join(work, "pod.yaml");
    await writeFile(file, podDoc);
    const play = await podman.run(["kube", "play", "--network", "host", file]);
    assert.equal(play.code, 0, play.stderr);
    try {
      const wait = await podman.run(["wait", "kiln-build-kiln"], { timeoutMs: 300_000 });
      const logs = await podman.run(["logs", "kiln-build-kiln"]);
      assert.equal(wait.stdout.trim(), "0", `${logs.stdout}\n${logs.stderr}`);
      const inspect = JSON.parse(
        (await exec("skopeo", ["inspect", "--tls-verify=false", "--creds", `${user}:${pass}`, `docker://${dest}`]))
          .stdout,
      ) as { Layers: string[] };
      assert.equal(inspect.Layers.length, 3);
    } finally {
      await podman.run(["kube", "down", file]);
    }
  });
  test(":slim differs only by KILN_NO_BUILTIN_CRED_HELPERS; the full image answers credHelpers ecr-login, :slim refuses it clearly", async (t) => {
    if (skip) return t.skip(skip);
    const envOf = async (tag: string): Promise<string[]> =>
      (
        JSON.parse(
          (await exec("skopeo", ["inspect", "--tls-verify=false", "--config", `docker://${plain.host}/kiln:${tag}`]))
            .stdout,
        ) as { config: { Env: string[] } }
      ).config.Env;
    assert.ok((await envOf("slim")).includes("KILN_NO_BUILTIN_CRED_HELPERS=1"));
    assert.ok(!(await envOf("latest")).some((e) => e.startsWith("KILN_NO_BUILTIN_CRED_HELPERS=")));

    // An "ECR": the ECR API on loopback and a real registry accepting only the token it hands out.
    const ecrPassword = `ecr-${process.pid}-${Date.now()}`;
    const ecr = await startFakeEcr({ accessKeyId: "AKIAKILNIMAGETEST001", password: ecrPassword });
    const ecrReg = await startRegistry({ htpasswd: { username: "AWS", password: ecrPassword } });
    try {
      const cfg = path.join(work, "docker-ecr");
      await mkdir(cfg, { recursive: true });
      await writeFile(path.join(cfg, "config.json"), JSON.stringify({ credHelpers: { [ecrReg.host]: "ecr-login" } }));
      const run = (tag: string, dest: string) =>
        podman.run([
          "run",
          "--rm",
          "--network",
          "host",
          "-e",
          "AWS_ACCESS_KEY_ID=AKIAKILNIMAGETEST001",
          "-e",
          "AWS_SECRET_ACCESS_KEY=kiln-image-test-secret",
          "-e",
          "AWS_REGION=eu-west-1",
          "-e",
          `AWS_ENDPOINT_URL_ECR=${ecr.url}`,
          "-e",
          "AWS_EC2_METADATA_DISABLED=true",
          "-v",
          `${path.join(work, "ws")}:/workspace:ro`,
          "-v",
          `${path.join(cfg, "config.json")}:/kaniko/.docker/config.json:ro`,
          `${plain.host}/kiln:${tag}`,
          "--context",
          "dir:///workspace",
          "--destination",
          dest,
          "--insecure",
          "--insecure-pull",
        ]);
      const full = await run("latest", `${ecrReg.host}/team/app:ecr`);
      assert.equal(full.code, 0, `${full.stdout}\n${full.stderr}`);
      assert.doesNotMatch(full.stdout + full.stderr, new RegExp(ecrPassword));
      await exec("skopeo", [
        "inspect",
        "--tls-verify=false",
        "--creds",
        `AWS:${ecrPassword}`,
        `docker://${ecrReg.host}/team/app:ecr`,
      ]);
      const slim = await run("slim", `${ecrReg.host}/team/app:slim`);
      assert.equal(slim.code, 1, `${slim.stdout}\n${slim.stderr}`);
      assert.match(slim.stdout + slim.stderr, /docker-credential-ecr-login is not on PATH .*:slim/);
    } finally {
      await ecrReg.stop();
      await ecr.stop();
    }
  });

  test("in place: a Debian stage overwrites /lib and /usr, then a busybox stage COPY --from and RUN", async (t) => {
    if (skip) return t.skip(skip);
    const ws = path.join(work, "ws-debian");
    await mkdir(ws, { recursive: true });
    await writeFile(
      path.join(ws, "Dockerfile"),
      [
        `FROM ${plain.host}/debian:bookworm AS deb`,
        // RUN with Debian's own /lib and /usr in place of the image's (kiln keeps running from /kaniko).
        "RUN echo from-debian > /from-debian && dpkg-query -W -f='${Package}\\n' base-files > /pkg && test -e /usr/lib/x86_64-linux-gnu/libc.so.6",
        "RUN rm -rf /usr/share/doc && echo second > /second && cp /bin/true /usr/local/bin/deb-true",
        `FROM ${plain.host}/busybox:latest`,
        "COPY --from=deb /from-debian /pkg /second /",
        "COPY --from=deb /usr/local/bin/deb-true /opt/deb-true",
        // The busybox stage's root no longer has Debian's files.
        "RUN cat /from-debian /pkg /second > /proof && test ! -e /usr/bin/dpkg && test ! -e /usr/lib/x86_64-linux-gnu/libc.so.6 && echo ok >> /proof",
        "",
      ].join("\n"),
    );
    await chmod(ws, 0o755);
    const dest = `${plain.host}/team/app:in-place-debian`;
    const r = await podman.run(
      [
        "run",
        "--rm",
        "--network",
        "host",
        "-v",
        `${ws}:/workspace:ro`,
        `${plain.host}/kiln:latest`,
        "--context",
        "dir:///workspace",
        "--destination",
        dest,
        "--insecure",
        "--insecure-pull",
        "--isolation=in-place",
      ],
      { timeoutMs: 600_000 },
    );
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    const out = path.join(work, "pulled-debian");
    await exec("skopeo", ["copy", "--src-tls-verify=false", `docker://${dest}`, `oci:${out}:x`]);
    const bundle = path.join(work, "bundle-debian");
    await exec("umoci", ["unpack", "--image", `${out}:x`, bundle]);
    assert.equal(await readFile(path.join(bundle, "rootfs/proof"), "utf8"), "from-debian\nbase-files\nsecond\nok\n");
    assert.ok((await stat(path.join(bundle, "rootfs/opt/deb-true"))).isFile());
    await assert.rejects(stat(path.join(bundle, "rootfs/usr/bin/dpkg")));
  });
});
