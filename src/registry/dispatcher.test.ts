import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, test } from "node:test";
import { createServer as createHttpServer, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { request } from "undici";
import { createDispatcher, envCaCertificates, tlsOptions } from "./dispatcher.js";

function selfSigned(dir: string, name: string): string {
  const key = path.join(dir, `${name}.key`);
  const crt = path.join(dir, `${name}.crt`);
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-days",
      "1",
      "-subj",
      `/CN=${name}`,
      "-keyout",
      key,
      "-out",
      crt,
    ],
    { stdio: "ignore" },
  );
  return crt;
}

describe("registry TLS options", () => {
  test("SSL_CERT_DIR duplicates (files, hash links, bundles) collapse to distinct certificates", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "kiln-certs-"));
    try {
      const a = selfSigned(dir, "a");
      const b = selfSigned(dir, "b");
      const certs = path.join(dir, "certs");
      await mkdir(certs);
      const pa = readFileSync(a, "utf8");
      const pb = readFileSync(b, "utf8");
      await writeFile(path.join(certs, "a.pem"), pa);
      await writeFile(path.join(certs, "b.pem"), pb);
      await symlink("a.pem", path.join(certs, "1234abcd.0"));
      await writeFile(path.join(certs, "bundle.crt"), pa + pb);
      const cas = envCaCertificates({ SSL_CERT_DIR: certs, SSL_CERT_FILE: path.join(certs, "bundle.crt") });
      assert.equal(cas.length, 2);
      const opts = tlsOptions({}, cas);
      assert.ok(opts.secureContext, "one secure context for the dispatcher");
      assert.equal(opts.rejectUnauthorized, true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("an unparsable certificate from SSL_CERT_DIR is skipped, as OpenSSL does", () => {
    const bogus = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----";
    const opts = tlsOptions({ skipTlsVerify: true }, [bogus]);
    assert.ok(opts.secureContext);
    assert.equal(opts.rejectUnauthorized, false);
  });

  test("no extra CAs and no client certificate: Node's defaults, no context", () => {
    assert.deepEqual(tlsOptions({}, []), { rejectUnauthorized: true });
  });

  test("the TLS options are built on the first https connection only, and once", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "kiln-certs-"));
    const servers: Server[] = [];
    const listen = async (srv: Server): Promise<number> => {
      servers.push(srv);
      await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
      return (srv.address() as AddressInfo).port;
    };
    try {
      const crt = selfSigned(dir, "localhost");
      const ok = (_q: unknown, res: { end: (s: string) => void }): void => res.end("ok");
      const httpPort = await listen(createHttpServer(ok));
      const httpsPort = await listen(
        createHttpsServer({ cert: readFileSync(crt), key: readFileSync(crt.replace(/\.crt$/, ".key")) }, ok),
      );
      let built = 0;
      const d = createDispatcher({ skipTlsVerify: true }, {}, () => {
        built++;
        return tlsOptions({ skipTlsVerify: true }, []);
      });
      const get = async (url: string): Promise<string> => (await request(url, { dispatcher: d })).body.text();
      assert.equal(await get(`http://127.0.0.1:${httpPort}/`), "ok");
      assert.equal(built, 0, "a plain-HTTP registry never builds TLS options");
      assert.equal(await get(`https://127.0.0.1:${httpsPort}/a`), "ok");
      assert.equal(await get(`https://127.0.0.1:${httpsPort}/b`), "ok");
      assert.equal(built, 1, "built once, on the first https connection");
      await d.close();
    } finally {
      for (const srv of servers) srv.closeAllConnections?.();
      for (const srv of servers) await new Promise((r) => srv.close(r));
      await rm(dir, { recursive: true, force: true });
    }
  });
});
