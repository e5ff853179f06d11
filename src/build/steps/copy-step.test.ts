import { createHash } from "node:crypto";
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { DirCacheStore, LayerCache } from "../../cache/index.js";
import { DirContext } from "../../context/index.js";
import { parseDockerfile } from "../../dockerfile/index.js";
import { IgnoreList, WalkSnapshotter } from "../../fs/index.js";
import { emptyImage } from "../../image/empty-image.js";
import type { Runner } from "../../run/index.js";
import { probeResult } from "../../run/testing/probe-fixture.js";
import type { BuildEvent } from "../events.js";
import type { BuildOptions } from "../options.js";
import { buildStage } from "../stage.js";
import { historySources } from "./copy-step.js";

const platform = { os: "linux", architecture: "amd64" };
const work = await mkdtemp(path.join(tmpdir(), "kiln-copy-step-"));
after(() => rm(work, { recursive: true, force: true }));

test("history sources: a URL's user info is removed, its query kept; other sources as written", () => {
  assert.deepEqual(
    historySources([
      "http://alice:S3CRETPW@127.0.0.1:8081/f.txt?X-Amz-Signature=SIG",
      "https://ci:p@ssw0rd-SECRET@example.com/x",
      "https://TOKEN123@github.com/o/r.git#main",
      "git@github.com:o/r.git",
      "local/a@b.txt",
      "https://example.com/plain",
    ]),
    [
      "http://127.0.0.1:8081/f.txt?X-Amz-Signature=SIG",
      "https://example.com/x",
      "https://github.com/o/r.git#main",
      "git@github.com:o/r.git",
      "local/a@b.txt",
      "https://example.com/plain",
    ],
  );
});

/** Files found under `dir`, read as text. */
async function allText(dir: string): Promise<string> {
  let out = "";
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out += await readFile(path.join(e.parentPath, e.name), "latin1");
  }
  return out;
}

test("ADD of a URL with credentials: none in the history or the cache record; sent as Basic auth", async () => {
  const seen: (string | undefined)[] = [];
  const server = createServer((req, res) => {
    seen.push(req.headers.authorization);
    const ok = req.headers.authorization === `Basic ${Buffer.from("alice:S3CRETPW").toString("base64")}`;
    res.writeHead(ok ? 200 : 401);
    res.end(ok ? "payload" : "");
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  try {
    const dir = async (name: string): Promise<string> => {
      const d = path.join(work, name);
      await mkdir(d, { recursive: true });
      return d;
    };
    // With --checksum the download is cacheable: its cache record is written too.
    const sum = `sha256:${createHash("sha256").update("payload").digest("hex")}`;
    const url = `http://alice:S3CRETPW@127.0.0.1:${port}/f.txt?X-Amz-Signature=SIGABC`;
    const dockerfile = `FROM scratch\nADD --checksum=${sum} ${url} /f\n`;
    const df = parseDockerfile(dockerfile);
    const stage = df.stages[0];
    assert.ok(stage);
    const cacheDir = await dir("cache");
    const layers = new LayerCache({
      store: new DirCacheStore(cacheDir),
      platform,
      ttlMs: 3_600_000,
      write: true,
      now: () => new Date(0),
      onWarning: () => undefined,
    });
    const tmp = await dir("tmp");
    const ctxDir = await dir("ctx");
    const opts = {
      dockerfileName: "Dockerfile",
      buildArgs: {},
      ignorePaths: [],
      ignoreVarRun: true,
      stateDir: tmp,
      cacheMountsDir: path.join(work, "cache-mounts"),
    } as unknown as BuildOptions;
    const runner: Runner = {
      isolation: "chroot",
      capabilities: probeResult({ chroot: true, mountns: true }),
      run: () => Promise.resolve({ exitCode: 0 }),
    };
    const events: BuildEvent[] = [];
    const r = await buildStage(
      stage,
      { image: emptyImage(platform), family: "oci", rootDir: await dir("root"), scratch: true },
      {
        opts,
        tmpDir: tmp,
        df,
        dockerfileName: "Dockerfile",
        context: await DirContext.open(ctxDir, []),
        buildArgs: opts.buildArgs,
        metaArgs: new Map(),
        consumedArgs: new Set(),
        sink: {
          blobsDir: await dir("blobs"),
          compression: "gzip",
          mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
          epoch: 0,
        },
        ignore: IgnoreList.create({ ignorePaths: [] }),
        runner: () => Promise.resolve(runner),
        snapshotter: () => Promise.resolve(new WalkSnapshotter()),
        fromRoot: () => DirContext.open(ctxDir, []),
        report: (e) => events.push(e),
        now: () => new Date(0),
        cache: { layers, runLayers: true, copyLayers: true, explain: false },
      },
    );
    await layers.flush();
    assert.deepEqual(seen, [`Basic ${Buffer.from("alice:S3CRETPW").toString("base64")}`]);
    const history = r.history.map((h) => h.created_by ?? "");
    assert.deepEqual(history, [`ADD http://127.0.0.1:${port}/f.txt?X-Amz-Signature=SIGABC /f # buildkit`]);
    const records = await allText(cacheDir);
    assert.match(records, /ADD http:\/\/127\.0\.0\.1/, "the step was recorded");
    assert.doesNotMatch(records, /S3CRETPW|alice/);
  } finally {
    server.close();
  }
});
