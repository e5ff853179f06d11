import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFile, lstat } from "node:fs/promises";
import path from "node:path";
import { runKiln } from "../support/kiln-cli.js";
import { removeDir, tempDir } from "../support/tmp.js";
import { sh, writeTree } from "./helpers.js";

// --no-push outputs: a docker-archive tarball, an OCI layout and the digest file, from FROM scratch,
// checked with skopeo and umoci (independent readers).
describe("file outputs without a registry", () => {
  let work: string;
  before(async () => {
    work = await tempDir("outputs");
  });
  after(async () => {
    if (work) await removeDir(work);
  });

  test("FROM scratch to --tar-path, --oci-layout-path and --digest-file", async () => {
    const ctx = path.join(work, "ctx");
    await writeTree(ctx, {
      Dockerfile: 'FROM scratch\nCOPY hello.txt /hello.txt\nCOPY bin/ /opt/bin/\nENV A=1\nCMD ["/opt/bin/tool"]\n',
      "hello.txt": "hello\n",
      "bin/tool": ["#!/bin/sh\necho tool\n", 0o755],
    });
    const out = path.join(work, "out");
    const r = await runKiln([
      "build",
      "-f",
      path.join(ctx, "Dockerfile"),
      "-c",
      ctx,
      "--no-push",
      "--tar-path",
      path.join(out, "image.tar"),
      "--oci-layout-path",
      path.join(out, "oci"),
      "--digest-file",
      path.join(out, "digest"),
      "--image-name-with-digest-file",
      path.join(out, "names"),
      "--destination",
      "registry.example/team/app:1.0",
    ]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const digest = await readFile(path.join(out, "digest"), "utf8");
    assert.match(digest, /^sha256:[a-f0-9]{64}$/, "digest file holds exactly sha256:<hex>, no newline");
    assert.equal(await readFile(path.join(out, "names"), "utf8"), `registry.example/team/app@${digest}\n`);

    const index = JSON.parse(await readFile(path.join(out, "oci", "index.json"), "utf8")) as {
      manifests: { digest: string }[];
    };
    assert.equal(index.manifests[0]?.digest, digest);
    const ociInspect = JSON.parse(await sh("skopeo", ["inspect", `oci:${path.join(out, "oci")}`])) as {
      Layers: string[];
      Digest: string;
    };
    assert.equal(ociInspect.Layers.length, 2);
    assert.equal(ociInspect.Digest, digest);

    const tarInspect = JSON.parse(
      await sh("skopeo", ["inspect", "--config", `docker-archive:${path.join(out, "image.tar")}`]),
    ) as {
      config: { Env: string[]; Cmd: string[] };
      rootfs: { diff_ids: string[] };
    };
    assert.deepEqual(tarInspect.config.Cmd, ["/opt/bin/tool"]);
    assert.ok(tarInspect.config.Env.includes("A=1"));
    assert.equal(tarInspect.rootfs.diff_ids.length, 2);

    const bundle = path.join(work, "bundle");
    const ref = index.manifests[0] ? `${path.join(out, "oci")}@${digest}` : "";
    void ref;
    await sh("skopeo", ["copy", `oci:${path.join(out, "oci")}`, `oci:${path.join(work, "relayout")}:x`]);
    await sh("umoci", ["unpack", "--image", `${path.join(work, "relayout")}:x`, bundle]);
    assert.equal(await readFile(path.join(bundle, "rootfs/hello.txt"), "utf8"), "hello\n");
    const tool = await lstat(path.join(bundle, "rootfs/opt/bin/tool"));
    assert.equal(tool.mode & 0o777, 0o755);
    assert.equal(tool.uid, 0);
  });
});
