import assert from "node:assert/strict";
import * as net from "node:net";
import { test } from "node:test";
import { hasCode } from "../common/errors.js";
import { noProxyMatches, openTunnel, tunnelProxy } from "./s3-proxy.js";

test("NO_PROXY: hosts, subdomains, leading dots and wildcards, ports, lists; no partial names", () => {
  const cases: [string | undefined, string, number, boolean][] = [
    [undefined, "s3.amazonaws.com", 443, false],
    ["", "s3.amazonaws.com", 443, false],
    ["*", "anything.example", 80, true],
    [" * ", "anything.example", 80, true],
    // As undici: `*` counts only alone, not inside a list.
    ["foo,*", "anything.example", 80, false],
    ["amazonaws.com", "s3.amazonaws.com", 443, true],
    ["amazonaws.com", "amazonaws.com", 443, true],
    [".amazonaws.com", "bucket.s3.amazonaws.com", 443, true],
    ["*.amazonaws.com", "s3.amazonaws.com", 443, true],
    ["zonaws.com", "s3.amazonaws.com", 443, false],
    ["minio:9000", "minio", 9000, true],
    ["minio:9000", "minio", 9001, false],
    ["minio:0", "minio", 9001, true],
    ["other, 127.0.0.1", "127.0.0.1", 4566, true],
    ["other 127.0.0.1:4566", "127.0.0.1", 4566, true],
    ["MINIO.Local", "minio.local", 80, true],
    ["[::1]", "::1", 80, true],
    ["10.0.0.0/8", "10.1.2.3", 80, false],
  ];
  for (const [noProxy, host, port, want] of cases) {
    assert.equal(noProxyMatches(noProxy, host, port), want, `${noProxy} ${host}:${port}`);
  }
});

test("a proxy setting: scheme optional, user info moved to Proxy-Authorization, bad settings refused clearly", () => {
  const p = tunnelProxy("http://us%40er:p%3Ass@proxy.corp:3128");
  assert.equal(p.url.toString(), "http://proxy.corp:3128/");
  assert.equal(p.authorization, `Basic ${Buffer.from("us@er:p:ss").toString("base64")}`);
  assert.equal(tunnelProxy("proxy.corp:3128").url.toString(), "http://proxy.corp:3128/");
  assert.equal(tunnelProxy("https://proxy.corp").authorization, undefined);
  for (const bad of ["socks5://proxy.corp:1080", "http://u:%zz@proxy.corp"]) {
    assert.throws(
      () => tunnelProxy(bad),
      (e: unknown) => hasCode(e, "CONTEXT_FETCH") && !/%zz/.test((e as Error).message),
    );
  }
});

/** A TCP server standing in for a proxy: `answer` decides what it does with each connection. */
async function fakeProxy(
  answer: (s: net.Socket) => void,
): Promise<{ port: number; closed: Promise<void>; stop: () => void }> {
  let closed!: () => void;
  const wasClosed = new Promise<void>((r) => (closed = r));
  const server = net.createServer((s) => {
    s.on("close", () => closed());
    s.on("error", () => undefined);
    answer(s);
    s.resume(); // read what comes, so that the client's close is seen
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { port: (server.address() as net.AddressInfo).port, closed: wasClosed, stop: () => server.close() };
}

const target = { host: "s3.example", port: 443, secureEndpoint: false as const };

test("a proxy that never answers CONNECT: the tunnel fails after its time limit and its connection is closed", async () => {
  const proxy = await fakeProxy(() => undefined);
  try {
    const p = tunnelProxy(`http://user:secret@127.0.0.1:${proxy.port}`);
    await assert.rejects(openTunnel(p, target, 300), (e: unknown) => {
      const m = (e as Error).message;
      return /no answer to CONNECT within 0\.3 s/.test(m) && m.includes(`127.0.0.1:${proxy.port}`) && !/secret/.test(m);
    });
    await proxy.closed; // kiln closed it: nothing keeps the process alive
  } finally {
    proxy.stop();
  }
});

test("a refused CONNECT names the proxy and the status, a 407 the credentials; the request carried them", async () => {
  let request = "";
  const proxy = await fakeProxy((s) =>
    s.once("data", (d) => {
      request = d.toString("latin1");
      s.end("HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n");
    }),
  );
  try {
    const p = tunnelProxy(`http://user:secret@127.0.0.1:${proxy.port}`);
    await assert.rejects(openTunnel(p, target, 5000), (e: unknown) =>
      /the proxy 127\.0\.0\.1:\d+: it refused the tunnel to s3\.example:443 \(HTTP 407, proxy authentication required/.test(
        (e as Error).message,
      ),
    );
    assert.match(request, /^CONNECT s3\.example:443 HTTP\/1\.1\r\n/);
    assert.ok(request.includes(`Proxy-Authorization: Basic ${Buffer.from("user:secret").toString("base64")}\r\n`));
  } finally {
    proxy.stop();
  }
});
