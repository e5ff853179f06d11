import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { Agent, getGlobalDispatcher, setGlobalDispatcher } from "undici";
import { hasCode } from "../common/errors.js";
import { emptyImage } from "../image/index.js";
import type { RegistryClient } from "../registry/index.js";
import type { BuildOptions } from "./options.js";
import { writeOutputs, writeTextOutput } from "./outputs.js";

const image = emptyImage({ os: "linux", architecture: "amd64" });

test("digest files: the digest, repo@digest and repo:tag@digest per destination (kaniko's bug of both being tagged fixed)", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "kiln-outputs-"));
  try {
    const file = (n: string) => path.join(dir, "nested", n);
    const opts = {
      noPush: true,
      destinations: ["reg.example:5000/team/app:1.2", "docker.io/library/busybox"],
      digestFile: file("digest"),
      imageNameWithDigestFile: file("name"),
      imageNameTagWithDigestFile: file("name-tag"),
    } as unknown as BuildOptions;
    const registry = {} as RegistryClient; // --no-push: never used
    await writeOutputs(image, opts, registry, () => undefined);
    const d = image.digest;
    assert.equal(readFileSync(file("digest"), "utf8"), d);
    assert.equal(
      readFileSync(file("name"), "utf8"),
      `reg.example:5000/team/app@${d}\nindex.docker.io/library/busybox@${d}\n`,
    );
    assert.equal(
      readFileSync(file("name-tag"), "utf8"),
      `reg.example:5000/team/app:1.2@${d}\nindex.docker.io/library/busybox:latest@${d}\n`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("an https:// digest file is an HTTP PUT; a refusal names the host and status, not the signed URL", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "kiln-outputs-tls-"));
  const key = path.join(dir, "key.pem");
  const cert = path.join(dir, "cert.pem");
  execFileSync(
    "openssl",
    ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1"].concat([
      "-subj",
      "/CN=127.0.0.1",
      "-addext",
      "subjectAltName=IP:127.0.0.1",
    ]),
    { stdio: "ignore" },
  );
  const got: { method: string; url: string; body: string }[] = [];
  const server = createServer({ key: readFileSync(key), cert: readFileSync(cert) }, (req, res) => {
    const parts: Buffer[] = [];
    req.on("data", (c: Buffer) => parts.push(c));
    req.on("end", () => {
      got.push({ method: req.method ?? "", url: req.url ?? "", body: Buffer.concat(parts).toString() });
      res.writeHead(req.url?.startsWith("/refused") ? 403 : 200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const before = getGlobalDispatcher();
  const agent = new Agent({ connect: { ca: readFileSync(cert) } });
  setGlobalDispatcher(agent);
  try {
    const base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
    await writeTextOutput(`${base}/bucket/digest?X-Amz-Signature=sig`, "sha256:abc");
    assert.deepEqual(got, [{ method: "PUT", url: "/bucket/digest?X-Amz-Signature=sig", body: "sha256:abc" }]);
    await assert.rejects(writeTextOutput(`${base}/refused?X-Amz-Signature=sig`, "sha256:abc"), (e: unknown) => {
      assert.ok(hasCode(e, "OUTPUT_FAILED"));
      assert.match((e as Error).message, /HTTP 403/);
      assert.doesNotMatch((e as Error).message, /Signature/);
      return true;
    });
  } finally {
    setGlobalDispatcher(before);
    await agent.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  }
});
