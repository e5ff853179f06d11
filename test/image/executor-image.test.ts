import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFile, writeFile, mkdir, chmod } from "node:fs/promises";
import * as path from "node:path";
import { promisify } from "node:util";
import { busyboxOciLayout, pushLayoutToRegistry } from "../support/base-images.js";
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
    const script = path.join(repoRoot(), "deploy/build-executor-image.sh");
    for (const target of ["executor", "debug"]) {
      await exec(
        "bash",
        [
          script,
          "--target",
          target,
          "--destination",
          `${plain.host}/kiln:${target}`,
          "--insecure",
          "--verbosity",
          "warn",
        ],
        {
          cwd: repoRoot(),
          env: { ...process.env, KILN_IMAGE_STAGE: path.join(work, `stage-${target}`) },
          maxBuffer: 32 * 1024 * 1024,
        },
      );
    }
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
      (await exec("skopeo", ["inspect", "--tls-verify=false", "--config", `docker://${plain.host}/kiln:executor`]))
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
      (await exec("skopeo", ["inspect", "--tls-verify=false", "--raw", `docker://${plain.host}/kiln:executor`])).stdout,
    ) as { layers: { size: number }[] };
    const size = raw.layers.reduce((a, l) => a + l.size, 0);
    console.log(`# executor image: ${raw.layers.length} layers, ${(size / 1e6).toFixed(1)} MB compressed`);
    const r = await podman.run(["run", "--rm", "--network", "host", `${plain.host}/kiln:executor`, "version"]);
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
      `${plain.host}/kiln:executor`,
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
      .replaceAll("KILN_IMAGE", `${plain.host}/kiln:executor`)
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
});
