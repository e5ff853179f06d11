import { test } from "node:test";
import * as assert from "node:assert/strict";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { buffer } from "node:stream/consumers";
import { gzipSync } from "node:zlib";
import { httpGet } from "./http-fetch.js";

/** Serves `/plain`, `/gz` (gzip-encoded), `/odd` (an unknown encoding) and `/loop/N` (redirects for ever). */
async function withServer(use: (base: string, seen: IncomingHttpHeaders[]) => Promise<void>): Promise<void> {
  const seen: IncomingHttpHeaders[] = [];
  const server = createServer((req, res) => {
    seen.push(req.headers);
    if (req.url === "/plain") res.end("FROM scratch\n");
    else if (req.url === "/gz") res.writeHead(200, { "content-encoding": "gzip" }).end(gzipSync("FROM gz\n"));
    else if (req.url === "/odd") res.writeHead(200, { "content-encoding": "zz" }).end("x");
    else if (req.url === "/304") res.writeHead(304).end();
    else if (req.url === "/badgz") res.writeHead(200, { "content-encoding": "gzip" }).end("not gzip at all");
    else if (req.url?.startsWith("/loop/")) {
      res.writeHead(302, { location: `/loop/${Number(req.url.slice(6)) + 1}` }).end();
    } else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    await use(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

const opts = { maxBytes: 1 << 20, what: "Dockerfile" };

test("httpGet sends a User-Agent and Accept, and decodes a Content-Encoding as fetch did", async () => {
  await withServer(async (base, seen) => {
    assert.equal((await buffer(await httpGet(`${base}/plain`, opts))).toString(), "FROM scratch\n");
    assert.equal(seen[0]?.["user-agent"], "kiln");
    assert.equal(seen[0]?.accept, "*/*");
    assert.equal((await buffer(await httpGet(`${base}/gz`, opts))).toString(), "FROM gz\n");
    await assert.rejects(httpGet(`${base}/odd`, opts), /unsupported Content-Encoding zz/);
    await assert.rejects(
      buffer(await httpGet(`${base}/badgz`, opts)),
      (e: unknown) =>
        e instanceof Error &&
        "code" in e &&
        e.code === "CONTEXT_FETCH" &&
        /\/badgz: the gzip body does not decode/.test(e.message),
    );
  });
});

test("httpGet names a redirect loop as such", async () => {
  await withServer(async (base) => {
    await assert.rejects(httpGet(`${base}/loop/0`, opts), /more than 20 redirects \(the last answer: 302 Found\)/);
    await assert.rejects(httpGet(`${base}/304`, opts), /the server answered 304 Not Modified \(expected 200\)/);
  });
});
