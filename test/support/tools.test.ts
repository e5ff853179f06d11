// Tests of the test infrastructure itself: the offline busybox root and image, temp dirs, the CLI runner,
// and pushing a base image into a real registry.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { lstat, mkdir, readFile, readdir, readlink, stat, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { describe, test } from "node:test";
import * as assert from "node:assert/strict";
import { promisify } from "node:util";
import { BUSYBOX_IMAGE_PATH, busyboxOciLayout, debianOciLayout, pushLayoutToRegistry } from "./base-images.js";
import { BUSYBOX_ROOT_MTIME, busyboxApplets, makeBusyboxRoot } from "./busybox.js";
import { runKiln } from "./kiln-cli.js";
import { startRegistry } from "./registry.js";
import { mountsUnder, removeDir, repoRoot, tempDir, tempDirFor, testTmpRoot, withTempDir } from "./tmp.js";

const execFileAsync = promisify(execFile);
const isRoot = process.getuid?.() === 0;

async function sh(cmd: string, args: string[]): Promise<string> {
  return (await execFileAsync(cmd, args, { maxBuffer: 64 * 1024 * 1024 })).stdout;
}

describe("tmp", () => {
  test("repoRoot is the directory holding kiln's package.json", async () => {
    const pkg = JSON.parse(await readFile(path.join(repoRoot(), "package.json"), "utf8")) as { name: string };
    assert.equal(pkg.name, "kiln");
  });

  test("tempDir creates distinct empty dirs under the test tmp root; removeDir deletes them", async () => {
    const a = await tempDir("tools a/b");
    const b = await tempDir("tools a/b");
    assert.notEqual(a, b);
    assert.equal(path.dirname(a), testTmpRoot());
    assert.match(path.basename(a), /^tools_a_b-/);
    assert.deepEqual(await readdir(a), []);
    await mkdir(path.join(a, "x", "y"), { recursive: true });
    await writeFile(path.join(a, "x", "y", "f"), "data");
    await removeDir(a);
    await removeDir(b);
    assert.equal(existsSync(a), false);
    assert.equal(existsSync(b), false);
  });

  test("withTempDir removes the dir even when the callback throws", async () => {
    let seen = "";
    await assert.rejects(
      withTempDir("tools-throw", async (dir) => {
        seen = dir;
        await writeFile(path.join(dir, "f"), "x");
        throw new Error("boom");
      }),
      /boom/,
    );
    assert.notEqual(seen, "");
    assert.equal(existsSync(seen), false);
  });

  test("tempDirFor removes the dir when the test context finishes", async (t) => {
    const hooks: Array<() => unknown> = [];
    const dir = await tempDirFor({ after: (fn) => hooks.push(fn) }, "tools-after");
    assert.equal(existsSync(dir), true);
    assert.equal(hooks.length, 1);
    await hooks[0]?.();
    assert.equal(existsSync(dir), false);
    // and with a real node:test context
    const real = await tempDirFor(t, "tools-after-real");
    assert.equal(existsSync(real), true);
  });

  test("removeDir refuses to delete across a mount point", { skip: !isRoot && "needs root to mount" }, async () => {
    const dir = await tempDir("tools-mount");
    const mnt = path.join(dir, "mnt");
    await mkdir(mnt);
    await sh("mount", ["-t", "tmpfs", "tmpfs", mnt]);
    try {
      await writeFile(path.join(mnt, "keep"), "precious");
      assert.deepEqual(await mountsUnder(dir), [mnt]);
      await assert.rejects(removeDir(dir), /refusing to remove .*still mounted below it/);
      assert.equal(await readFile(path.join(mnt, "keep"), "utf8"), "precious");
    } finally {
      await sh("umount", [mnt]);
    }
    await removeDir(dir);
    assert.equal(existsSync(dir), false);
  });
});

describe("busybox root", () => {
  test("has busybox, an absolute symlink per applet, users, groups, modes and fixed mtimes", async (t) => {
    const root = path.join(await tempDirFor(t, "tools-bbroot"), "root");
    await makeBusyboxRoot(root);

    const bin = await lstat(path.join(root, "bin", "busybox"));
    assert.ok(bin.isFile());
    assert.equal(bin.mode & 0o7777, 0o755);
    const applets = await busyboxApplets();
    assert.ok(applets.includes("sh") && applets.includes("ls") && applets.length > 100, `applets: ${applets.length}`);
    for (const a of applets) {
      assert.equal(await readlink(path.join(root, "bin", a)), "/bin/busybox", `bin/${a}`);
    }

    const passwd = await readFile(path.join(root, "etc", "passwd"), "utf8");
    assert.match(passwd, /^root:x:0:0:root:\/root:\/bin\/sh$/m);
    assert.match(passwd, /^nobody:x:65534:65534:/m);
    assert.match(passwd, /^kiln:x:1000:1000:[^:]*:\/home\/kiln:\/bin\/sh$/m);
    const group = await readFile(path.join(root, "etc", "group"), "utf8");
    assert.match(group, /^root:x:0:$/m);
    assert.match(group, /^nogroup:x:65534:$/m);
    assert.match(group, /^kiln:x:1000:$/m);
    assert.match(group, /^extra:x:2000:kiln$/m);

    assert.equal((await stat(path.join(root, "tmp"))).mode & 0o7777, 0o1777);
    assert.equal((await stat(path.join(root, "root"))).mode & 0o7777, 0o700);
    const home = await stat(path.join(root, "home", "kiln"));
    if (isRoot) assert.deepEqual([home.uid, home.gid], [1000, 1000]);

    for (const rel of ["", "bin", "bin/busybox", "bin/sh", "etc/passwd", "tmp", "home/kiln"]) {
      assert.equal((await lstat(path.join(root, rel))).mtimeMs, BUSYBOX_ROOT_MTIME * 1000, `mtime of /${rel}`);
    }
  });
});

describe("busybox OCI layout", () => {
  test("is a valid single-layer linux/amd64 image that skopeo reads", async () => {
    const layout = await busyboxOciLayout();
    assert.ok(layout.dir.startsWith(path.join(repoRoot(), ".tmp", "images", "busybox-oci")));
    const inspect = JSON.parse(await sh("skopeo", ["inspect", `oci:${layout.dir}:${layout.ref}`])) as {
      Architecture: string;
      Os: string;
      Layers: string[];
      Env: string[];
    };
    assert.equal(inspect.Architecture, "amd64");
    assert.equal(inspect.Os, "linux");
    assert.equal(inspect.Layers.length, 1);
    assert.deepEqual(inspect.Env, [`PATH=${BUSYBOX_IMAGE_PATH}`]);
    const config = JSON.parse(await sh("skopeo", ["inspect", "--config", `oci:${layout.dir}:${layout.ref}`])) as {
      config: { Cmd: string[] };
      rootfs: { diff_ids: string[] };
    };
    assert.deepEqual(config.config.Cmd, ["sh"]);
    assert.equal(config.rootfs.diff_ids.length, 1);

    const raw = JSON.parse(await sh("skopeo", ["inspect", "--raw", `oci:${layout.dir}:${layout.ref}`])) as {
      layers: Array<{ mediaType: string }>;
    };
    assert.equal(raw.layers[0]?.mediaType, "application/vnd.oci.image.layer.v1.tar+gzip");
  });

  test("is cached: a second call returns the same layout", async () => {
    const a = await busyboxOciLayout();
    const b = await busyboxOciLayout();
    assert.deepEqual(a, b);
  });

  test("umoci unpacks it to a root with a working /bin/sh", async (t) => {
    const layout = await busyboxOciLayout();
    const bundle = path.join(await tempDirFor(t, "tools-unpack"), "bundle");
    await sh("umoci", ["unpack", ...(isRoot ? [] : ["--rootless"]), "--image", `${layout.dir}:${layout.ref}`, bundle]);
    const rootfs = path.join(bundle, "rootfs");
    assert.equal(await readlink(path.join(rootfs, "bin", "sh")), "/bin/busybox");
    assert.ok((await lstat(path.join(rootfs, "bin", "busybox"))).isFile());
    assert.equal((await stat(path.join(rootfs, "tmp"))).mode & 0o7777, 0o1777);
    if (isRoot) {
      assert.equal((await stat(path.join(rootfs, "home", "kiln"))).uid, 1000);
      const out = await sh("chroot", [
        rootfs,
        "/bin/sh",
        "-c",
        "id -u kiln; id -Gn kiln; echo ok > /tmp/f; cat /tmp/f",
      ]);
      assert.equal(out, "1000\nkiln extra\nok\n");
    }
  });
});

describe("debian OCI layout", () => {
  // Building it takes one to two minutes: only checked when it exists already or KILN_TEST_DEBIAN=1.
  const exists = existsSync(path.join(repoRoot(), ".tmp", "images", "debian-oci", "index.json"));
  const wanted = exists || process.env["KILN_TEST_DEBIAN"] === "1";
  test(
    "is a one-layer linux image whose layer holds Debian 12",
    { skip: !wanted && "not built (scripts/make-debian-base.sh or KILN_TEST_DEBIAN=1)", timeout: 600_000 },
    async () => {
      const layout = await debianOciLayout();
      const raw = JSON.parse(await sh("skopeo", ["inspect", "--raw", `oci:${layout.dir}:${layout.ref}`])) as {
        layers: Array<{ digest: string; mediaType: string }>;
      };
      assert.equal(raw.layers.length, 1);
      const digest = raw.layers[0]?.digest ?? "";
      assert.match(digest, /^sha256:[0-9a-f]{64}$/);
      const blob = path.join(layout.dir, "blobs", "sha256", digest.slice("sha256:".length));
      assert.match(await sh("tar", ["-xzOf", blob, "etc/debian_version"]), /^12\.\d+\n$/);
    },
  );
});

describe("kiln CLI runner", () => {
  const main = path.join(repoRoot(), "dist", "src", "cli", "main.js");
  test(
    "runs bin/kiln and returns its exit code and output",
    { skip: !existsSync(main) && "dist not built" },
    async () => {
      const ok = await runKiln(["version"]);
      assert.equal(ok.code, 0, ok.stderr);
      assert.notEqual(ok.stdout.trim(), "");
      const bad = await runKiln(["--definitely-not-a-flag-of-kiln"]);
      assert.notEqual(bad.code, 0);
    },
  );
});

describe("push to a real registry", () => {
  async function inspectDigest(ref: string, creds?: string): Promise<{ Digest: string; Layers: string[] }> {
    const args = ["inspect", ...(ref.startsWith("docker://") ? ["--tls-verify=false"] : [])];
    if (creds !== undefined) args.push("--creds", creds);
    return JSON.parse(await sh("skopeo", [...args, ref])) as { Digest: string; Layers: string[] };
  }

  test("skopeo copies the busybox layout into docker-registry and reads it back", async () => {
    const reg = await startRegistry();
    try {
      const layout = await busyboxOciLayout();
      await pushLayoutToRegistry(layout, reg.host, "library/busybox:latest");
      const remote = await inspectDigest(`docker://${reg.host}/library/busybox:latest`);
      const local = await inspectDigest(`oci:${layout.dir}:${layout.ref}`);
      assert.equal(remote.Digest, local.Digest);
      assert.deepEqual(remote.Layers, local.Layers);
    } finally {
      await reg.stop();
    }
  });

  test("pushes with basic-auth credentials to a TLS registry, and fails without them", async () => {
    const user = { username: "kiln", password: "s3cret" };
    const reg = await startRegistry({ tls: true, htpasswd: user });
    try {
      const layout = await busyboxOciLayout();
      await assert.rejects(pushLayoutToRegistry(layout, reg.host, "private/busybox:1"), /unauthorized|401/i);
      await pushLayoutToRegistry(layout, reg.host, "private/busybox:1", user);
      const remote = await inspectDigest(`docker://${reg.host}/private/busybox:1`, "kiln:s3cret");
      assert.equal(remote.Digest, (await inspectDigest(`oci:${layout.dir}:${layout.ref}`)).Digest);
    } finally {
      await reg.stop();
    }
  });
});
