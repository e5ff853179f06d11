import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { basicAuthorization } from "../../common/url-userinfo.js";
import { downloadUrl } from "./add-url.js";

interface Seen {
  url: string;
  headers: IncomingHttpHeaders;
}

/** A loopback HTTP server answering with `handle`; records every request. */
async function serve(
  handle: (
    url: string,
    headers: IncomingHttpHeaders,
  ) => { status: number; headers?: Record<string, string>; body?: string },
): Promise<{ origin: string; seen: Seen[]; server: Server }> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    seen.push({ url: req.url ?? "", headers: req.headers });
    const a = handle(req.url ?? "", req.headers);
    res.writeHead(a.status, a.headers ?? {});
    res.end(a.body ?? "");
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, server };
}

const basic = (pair: string): string => `Basic ${Buffer.from(pair).toString("base64")}`;

test("an ADD URL's user info is sent as Basic credentials to its origin, not in the URL, not to another origin", async () => {
  const other = await serve(() => ({ status: 200, body: "from the other origin" }));
  const main = await serve((url, headers) => {
    if (headers.authorization !== basic("alice:p@ss word")) return { status: 401 };
    if (url === "/same") return { status: 302, headers: { location: "/f.txt?x=1" } };
    if (url === "/away") return { status: 302, headers: { location: `${other.origin}/g.txt` } };
    return { status: 200, body: "protected" };
  });
  const tmp = await mkdtemp(path.join(tmpdir(), "kiln-add-url-"));
  try {
    const host = main.origin.slice("http://".length);
    const got = await downloadUrl(`http://alice:p%40ss%20word@${host}/f.txt?X-Amz-Signature=SIG`, tmp);
    assert.equal(await readFile(got.file, "utf8"), "protected");
    assert.equal(got.name, "f.txt");
    assert.equal(main.seen[0]?.url, "/f.txt?X-Amz-Signature=SIG");
    assert.equal(main.seen[0]?.headers.authorization, basic("alice:p@ss word"));
    // An unencoded `@` in the password (the URL parser takes the last one) and a same-origin redirect.
    const same = await downloadUrl(`http://alice:p@ss%20word@${host}/same`, tmp);
    assert.equal(await readFile(same.file, "utf8"), "protected");
    assert.equal(main.seen.at(-1)?.headers.authorization, basic("alice:p@ss word"), "kept on the same origin");
    // A redirect to another origin: the credentials stay behind.
    const away = await downloadUrl(`http://alice:p%40ss%20word@${host}/away`, tmp);
    assert.equal(await readFile(away.file, "utf8"), "from the other origin");
    assert.equal(other.seen.length, 1);
    assert.equal(other.seen[0]?.headers.authorization, undefined);
    assert.doesNotMatch(JSON.stringify(other.seen), /alice|p@ss|cEBzcy/);
  } finally {
    main.server.close();
    other.server.close();
    await rm(tmp, { recursive: true, force: true });
  }
});

test("a URL without user info sends no Authorization header", async () => {
  assert.equal(basicAuthorization(new URL("https://h/x")), undefined);
  assert.equal(basicAuthorization(new URL("https://tok@h/x")), basic("tok:"));
  const s = await serve(() => ({ status: 200, body: "open" }));
  const tmp = await mkdtemp(path.join(tmpdir(), "kiln-add-url-"));
  try {
    await downloadUrl(`${s.origin}/o`, tmp);
    assert.equal(s.seen[0]?.headers.authorization, undefined);
  } finally {
    s.server.close();
    await rm(tmp, { recursive: true, force: true });
  }
});
