/**
 * The S3 context's proxy tunnel (src/context/s3-proxy.ts) to an https endpoint, the usual AWS case: TLS
 * runs over the CONNECT tunnel with the request's TLS options (a test CA), the server name is checked, and
 * an endpoint whose certificate the CA did not sign is refused through the tunnel as it is directly. A real
 * CONNECT proxy (the fault proxy) and an https server on loopback with certificates made by openssl.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import type * as http from "node:http";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { s3ProxyAgents } from "../../src/context/s3-proxy.js";
import { startFaultProxy, type FaultProxy } from "../support/fault-proxy.js";
import { makeTls } from "../support/registry.js";
import { removeDir, tempDir } from "../support/tmp.js";

describe("S3 proxy tunnel to an https endpoint", () => {
  let work: string;
  let server: https.Server;
  let port: number;
  let ca: Buffer;
  let proxy: FaultProxy;

  before(async () => {
    work = await tempDir("s3-proxy-tls");
    const tls = makeTls(work, { name: "s3", cn: "localhost", san: "DNS:localhost" });
    ca = readFileSync(tls.caFile);
    server = https.createServer({ cert: readFileSync(tls.cert), key: readFileSync(tls.key) }, (_req, res) => {
      res.end("object bytes\n");
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as AddressInfo).port;
    proxy = await startFaultProxy({ target: `127.0.0.1:${port}` });
  });
  after(async () => {
    await proxy?.stop();
    server?.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    if (work) await removeDir(path.join(work));
  });

  const get = (agent: http.Agent, withCa: boolean): Promise<string> =>
    new Promise((resolve, reject) => {
      const req = https.get(
        { host: "localhost", port, path: "/bucket/key", agent, ...(withCa ? { ca } : {}) },
        (res) => {
          let body = "";
          res.setEncoding("utf8");
          res.on("data", (c: string) => (body += c));
          res.on("end", () => resolve(body));
        },
      );
      req.on("error", reject);
    });

  test("TLS over the tunnel with the request's CA; an untrusted certificate is refused there too", async () => {
    const agents = s3ProxyAgents({ httpsProxy: `http://${proxy.host}`, noProxy: "" });
    assert.ok(agents);
    try {
      assert.equal(await get(agents.httpsAgent, true), "object bytes\n");
      assert.deepEqual(proxy.tunnels, [`localhost:${port}`]);
      await assert.rejects(get(agents.httpsAgent, false), /self[- ]signed|unable to (get|verify)/i);
      assert.equal(proxy.tunnels.length, 2, "the refused connection went through the tunnel as well");
    } finally {
      agents.httpsAgent.destroy();
    }
  });

  test("NO_PROXY: the same request goes directly, with the same TLS checks", async () => {
    const agents = s3ProxyAgents({ httpsProxy: `http://${proxy.host}`, noProxy: "localhost" });
    assert.ok(agents);
    const before = proxy.tunnels.length;
    try {
      assert.equal(await get(agents.httpsAgent, true), "object bytes\n");
      await assert.rejects(get(agents.httpsAgent, false), /self[- ]signed|unable to (get|verify)/i);
      assert.equal(proxy.tunnels.length, before);
    } finally {
      agents.httpsAgent.destroy();
    }
  });
});
