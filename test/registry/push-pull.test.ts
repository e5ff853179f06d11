import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { after, before, test } from "node:test";
import { hasCode } from "../../src/common/errors.js";
import { sha256Digest } from "../../src/image/digest.js";
import { MediaTypes } from "../../src/image/media-types.js";
import type { Image } from "../../src/image/types.js";
import { UNCHECKED_UPLOAD_MAX_BYTES } from "../../src/registry/push.js";
import {
  anonymousKeychain,
  parseReference,
  RegistryClient,
  type RegistryClientOptions,
  type RegistryEvent,
} from "../../src/registry/index.js";
import { readAllStream, startRegistry, testImage, testLayer, type TestRegistry } from "../support/registry.js";

const amd64 = { os: "linux", architecture: "amd64" };
let reg: TestRegistry;
before(async () => {
  reg = await startRegistry();
});
after(async () => {
  await reg?.stop();
});

function newClient(extra: Partial<RegistryClientOptions> = {}): { client: RegistryClient; events: RegistryEvent[] } {
  const events: RegistryEvent[] = [];
  const client = new RegistryClient({
    env: {},
    hostOptions: () => ({}),
    keychain: anonymousKeychain,
    retries: 2,
    retryBaseDelayMs: 10,
    onEvent: (e) => events.push(e),
    ...extra,
  });
  return { client, events };
}

function kinds(events: RegistryEvent[], kind: RegistryEvent["kind"]): number {
  return events.filter((e) => e.kind === kind).length;
}

async function putRaw(path: string, contentType: string, body: Uint8Array): Promise<number> {
  const res = await fetch(`${reg.url}${path}`, { method: "PUT", headers: { "content-type": contentType }, body });
  await res.arrayBuffer();
  return res.status;
}

test("push, skopeo reads it, pull back byte-identical, then exists and mount", async () => {
  const l1 = testLayer({ "hello.txt": "hello\n", "dir/a": "a" });
  const l2 = testLayer({ "world.txt": "world\n" });
  const image = testImage([l1, l2]);
  const { client, events } = newClient();
  try {
    const digest = await client.pushImage(parseReference(`${reg.host}/app:v1`), image);
    assert.equal(digest, image.digest);
    assert.equal(kinds(events, "blob-pushed"), 3);
    assert.equal(kinds(events, "manifest-pushed"), 1);

    const inspected = JSON.parse(
      execFileSync("skopeo", ["inspect", "--tls-verify=false", `docker://${reg.host}/app:v1`], { encoding: "utf8" }),
    ) as { Digest: string; Layers: string[] };
    assert.equal(inspected.Digest, image.digest);
    assert.deepEqual(inspected.Layers, [l1.digest, l2.digest]);

    const pulled = await client.pullImage(parseReference(`${reg.host}/app:v1`), { platform: amd64 });
    assert.equal(pulled.digest, image.digest);
    assert.equal(pulled.mediaType, MediaTypes.ociManifest);
    assert.deepEqual(Buffer.from(pulled.rawConfig), Buffer.from(image.rawConfig));
    assert.deepEqual(
      pulled.layers.map((l) => [l.digest, l.diffId, l.size]),
      [l1, l2].map((l) => [l.digest, l.diffId, l.size]),
    );
    assert.deepEqual(pulled.layers[0]?.origins, [{ registry: reg.host, repository: "app" }]);
    const gz = await readAllStream(await (pulled.layers[0] as Image["layers"][number]).openCompressed());
    assert.deepEqual(gz, l1.gz);
    const tar = await readAllStream(await (pulled.layers[1] as Image["layers"][number]).openUncompressed());
    assert.equal(sha256Digest(tar), l2.diffId);
    assert.equal(kinds(events, "pull-manifest"), 1);

    // A fresh client pushing the same image under another tag: blobs made by the build and up to
    // UNCHECKED_UPLOAD_MAX_BYTES are sent again without a HEAD (a build's new config is almost always new);
    // a larger one is checked first and found.
    const big = testLayer({ big: randomBytes(96 * 1024) });
    assert.ok(big.size > UNCHECKED_UPLOAD_MAX_BYTES);
    await client.pushImage(parseReference(`${reg.host}/app:big`), testImage([l1, big]));
    const second = newClient();
    await second.client.pushImage(parseReference(`${reg.host}/app:v2`), image);
    assert.equal(kinds(second.events, "blob-exists"), 0);
    assert.equal(kinds(second.events, "blob-pushed"), 3);
    const withBig = testImage([l1, big], "oci", ["/bin/sh"]);
    await second.client.pushImage(parseReference(`${reg.host}/app:v3`), withBig);
    const found = second.events.filter((e) => e.kind === "blob-exists");
    assert.deepEqual(
      found.map((e) => (e.kind === "blob-exists" ? e.digest : "")),
      [big.digest],
    );
    await second.client.close();

    // The pulled image's layers carry origin app: pushing to another repo mounts them.
    const mounted = newClient();
    await mounted.client.pushImage(parseReference(`${reg.host}/other/repo:latest`), pulled);
    const m = mounted.events.filter((e) => e.kind === "blob-mounted");
    assert.equal(m.length, 2);
    assert.ok(m.every((e) => e.kind === "blob-mounted" && e.from === "app"));
    await mounted.client.close();
    const again = await client.pullImage(parseReference(`${reg.host}/other/repo`), { platform: amd64 });
    assert.equal(again.digest, image.digest);
  } finally {
    await client.close();
  }
});

test("getManifest answers raw bytes, or undefined for a missing tag", async () => {
  const image = testImage([testLayer({ f: "getmanifest" })], "docker");
  const { client } = newClient();
  try {
    await client.pushImage(parseReference(`${reg.host}/gm:1`), image);
    const got = await client.getManifest(parseReference(`${reg.host}/gm:1`));
    assert.ok(got);
    assert.equal(got.digest, image.digest);
    assert.equal(got.mediaType, MediaTypes.dockerManifest);
    assert.deepEqual(Buffer.from(got.raw), Buffer.from(image.rawManifest));
    const byDigest = await client.getManifest(parseReference(`${reg.host}/gm@${image.digest}`));
    assert.equal(byDigest?.digest, image.digest);
    assert.equal(await client.getManifest(parseReference(`${reg.host}/gm:nope`)), undefined);
    await assert.rejects(
      client.pullImage(parseReference(`${reg.host}/gm:nope`), { platform: amd64 }),
      (e: unknown) =>
        hasCode(e, "REGISTRY_NOT_FOUND") && e.message.includes(`${reg.host}/gm`) && e.message.includes("404"),
    );
  } finally {
    await client.close();
  }
});

test("index: platform selection by arch and variant, attestations skipped, clear error otherwise", async () => {
  const { client } = newClient();
  try {
    const mk = (arch: string, variant?: string): Image => {
      const img = testImage([testLayer({ arch: `${arch}${variant ?? ""}` })]);
      const cfg = { ...img.config, architecture: arch, ...(variant ? { variant } : {}) };
      return testImageFromConfig(img, cfg);
    };
    const amd = mk("amd64");
    const arm = mk("arm64", "v8");
    const att = testImage([testLayer({ "att.json": "{}" })]);
    for (const img of [amd, arm, att]) await client.pushImage(parseReference(`${reg.host}/multi@${img.digest}`), img);
    const index = {
      schemaVersion: 2,
      mediaType: MediaTypes.ociIndex,
      manifests: [
        {
          mediaType: MediaTypes.ociManifest,
          digest: att.digest,
          size: att.rawManifest.length,
          platform: { os: "unknown", architecture: "unknown" },
          annotations: {
            "vnd.docker.reference.type": "attestation-manifest",
            "vnd.docker.reference.digest": amd.digest,
          },
        },
        {
          mediaType: MediaTypes.ociManifest,
          digest: amd.digest,
          size: amd.rawManifest.length,
          platform: { os: "linux", architecture: "amd64" },
        },
        {
          mediaType: MediaTypes.ociManifest,
          digest: arm.digest,
          size: arm.rawManifest.length,
          platform: { os: "linux", architecture: "arm64", variant: "v8" },
        },
      ],
    };
    assert.equal(
      await putRaw("/v2/multi/manifests/latest", MediaTypes.ociIndex, Buffer.from(JSON.stringify(index))),
      201,
    );
    const ref = parseReference(`${reg.host}/multi:latest`);
    assert.equal((await client.pullImage(ref, { platform: amd64 })).digest, amd.digest);
    assert.equal(
      (await client.pullImage(ref, { platform: { os: "linux", architecture: "arm64" } })).digest,
      arm.digest,
    );
    await assert.rejects(
      client.pullImage(ref, { platform: { os: "linux", architecture: "s390x" } }),
      (e: unknown) =>
        hasCode(e, "PLATFORM_NOT_FOUND") &&
        /linux\/amd64, linux\/arm64\/v8/.test(e.message) &&
        !e.message.includes("unknown"),
    );
  } finally {
    await client.close();
  }
});

function testImageFromConfig(img: Image, config: Image["config"]): Image {
  const rawConfig = Buffer.from(JSON.stringify(config));
  const manifest = {
    ...img.manifest,
    config: { ...img.manifest.config, digest: sha256Digest(rawConfig), size: rawConfig.length },
  };
  const rawManifest = Buffer.from(JSON.stringify(manifest));
  return { ...img, config, rawConfig, manifest, rawManifest, digest: sha256Digest(rawManifest) };
}

test("pushing to a repository by digest reference and the push-permission check on an open registry", async () => {
  const image = testImage([testLayer({ d: "digest-ref" })]);
  const { client } = newClient();
  try {
    await client.checkPushPermission(parseReference(`${reg.host}/perm:latest`));
    assert.equal(await client.pushImage(parseReference(`${reg.host}/bydigest@${image.digest}`), image), image.digest);
    await assert.rejects(
      client.pushImage(parseReference(`${reg.host}/bydigest@sha256:${"0".repeat(64)}`), image),
      (e: unknown) => hasCode(e, "DIGEST_MISMATCH"),
    );
  } finally {
    await client.close();
  }
});

test("configs over 4 MiB are refused with CONFIG_TOO_LARGE before download", async () => {
  const base = testImage([testLayer({ big: "config" })]);
  const image = testImageFromConfig(base, { ...base.config, filler: "x".repeat(4 * 1024 * 1024 + 10) });
  const { client } = newClient();
  try {
    await client.pushImage(parseReference(`${reg.host}/huge:1`), image);
    await assert.rejects(
      client.pullImage(parseReference(`${reg.host}/huge:1`), { platform: amd64 }),
      (e: unknown) =>
        hasCode(e, "CONFIG_TOO_LARGE") &&
        e.message.includes(`${reg.host}/huge`) &&
        e.message.includes(image.manifest.config.digest),
    );
  } finally {
    await client.close();
  }
});

test("a layer whose local source cannot be read fails the push as a local failure, not retried as the registry's", async () => {
  const good = testLayer({ "gone.txt": "gone\n" });
  let opened = 0;
  const gone = {
    ...good,
    openCompressed: () => {
      opened++;
      const e = Object.assign(new Error("ENOENT: no such file or directory, open '/state/build-x/blobs/layer'"), {
        code: "ENOENT",
      });
      return Promise.reject(e);
    },
  };
  const { client } = newClient();
  try {
    await assert.rejects(
      client.pushImage(parseReference(`${reg.host}/source-gone:v1`), testImage([gone])),
      (e: unknown) => {
        assert.ok(hasCode(e, "PUSH_SOURCE_FAILED"), String(e));
        assert.match(e.message, new RegExp(`pushing ${reg.host}/source-gone: cannot read what is to be sent .*ENOENT`));
        return true;
      },
    );
    assert.equal(opened, 1, "a local failure is not retried");
  } finally {
    await client.close();
  }
});

for (const chunked of [false, true]) {
  test(`a${chunked ? " chunked" : ""} upload whose local source fails mid-way is PUSH_SOURCE_FAILED, not retried`, async () => {
    const good = testLayer({ "mid.txt": "mid\n" });
    let opened = 0;
    const failing = {
      ...good,
      ...(chunked ? { size: 6 * 1024 * 1024 } : {}), // above the chunk size: PATCH chunks
      openCompressed: () => {
        opened++;
        return Promise.resolve(
          Readable.from(
            (async function* () {
              yield Buffer.alloc(1024 * 1024);
              throw Object.assign(new Error("EIO: i/o error, read"), { code: "EIO" });
            })(),
          ),
        );
      },
    };
    const { client } = newClient(chunked ? { uploadChunkSize: 5 * 1024 * 1024 } : {});
    const repo = chunked ? "source-eio-chunked" : "source-eio";
    try {
      await assert.rejects(
        client.pushImage(parseReference(`${reg.host}/${repo}:v1`), testImage([failing])),
        (e: unknown) => {
          assert.ok(hasCode(e, "PUSH_SOURCE_FAILED"), String(e));
          assert.match(e.message, new RegExp(`pushing ${reg.host}/${repo}: cannot read what is to be sent .*EIO`));
          return true;
        },
      );
      assert.equal(opened, 1, "a local failure is not retried");
    } finally {
      await client.close();
    }
  });
}

test("a layer whose stream is shorter than its declared size is PUSH_SOURCE_FAILED, not retried", async () => {
  const good = testLayer({ "short.txt": "short\n" });
  let opened = 0;
  const short = {
    ...good,
    size: good.size + 10,
    openCompressed: () => {
      opened++;
      return Promise.resolve(Readable.from([good.gz]));
    },
  };
  const { client } = newClient();
  try {
    await assert.rejects(
      client.pushImage(parseReference(`${reg.host}/source-short:v1`), testImage([short])),
      (e: unknown) => {
        assert.ok(hasCode(e, "PUSH_SOURCE_FAILED"), String(e));
        return true;
      },
    );
    assert.equal(opened, 1, "a local inconsistency is not retried");
  } finally {
    await client.close();
  }
});
