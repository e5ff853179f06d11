/**
 * scripts/undici-lite.mjs stands in for undici's entry module in the CLI bundle (it loads only the parts
 * kiln uses). These tests keep it honest: every value src/ imports from "undici" must be exported, and
 * `request` must behave like undici's for the forms kiln uses — through an Agent, through the global
 * dispatcher, PUT as the default method with a body, query strings kept.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { pathToFileURL } from "node:url";
import * as path from "node:path";
import type { Dispatcher } from "undici";
import { repoRoot } from "../support/tmp.js";

interface Lite {
  Agent: new () => Dispatcher;
  request: (url: string | URL, opts?: Record<string, unknown>) => Promise<Dispatcher.ResponseData>;
  [name: string]: unknown;
}

const lite = (await import(pathToFileURL(path.join(repoRoot(), "scripts", "undici-lite.mjs")).href)) as Lite;

async function sourceFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await sourceFiles(p)));
    else if (e.name.endsWith(".ts") && !e.name.endsWith(".test.ts")) out.push(p);
  }
  return out;
}

describe("undici-lite (the bundle's undici)", () => {
  let server: Server;
  let base: string;
  const seen: { method: string; url: string; body: string }[] = [];
  before(async () => {
    server = createServer((req: IncomingMessage, res) => {
      const parts: Buffer[] = [];
      req.on("data", (b: Buffer) => parts.push(b));
      req.on("end", () => {
        seen.push({ method: req.method ?? "", url: req.url ?? "", body: Buffer.concat(parts).toString() });
        res.setHeader("x-seen", String(seen.length));
        res.end(`hello ${req.method} ${req.url}`);
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => new Promise<void>((r) => server.close(() => r())));

  test("exports every value that src/ and deploy/ import from undici", async () => {
    const names = new Set<string>();
    const files = [
      ...(await sourceFiles(path.join(repoRoot(), "src"))),
      ...(await sourceFiles(path.join(repoRoot(), "deploy"))),
    ];
    for (const f of files) {
      const text = await readFile(f, "utf8");
      for (const m of text.matchAll(/import\s+(type\s+)?\{([^}]*)\}\s+from\s+"undici"/g)) {
        if (m[1]) continue; // import type { … }
        for (const raw of (m[2] ?? "").split(",")) {
          const name = raw.trim();
          if (name === "" || name.startsWith("type ")) continue;
          names.add(name.split(/\s+as\s+/)[0] as string);
        }
      }
      assert.doesNotMatch(text, /import\s+\*\s+as\s+\w+\s+from\s+"undici"/, `${f}: namespace import of undici`);
    }
    assert.ok(names.has("request") && names.has("Agent"), `found ${[...names].join(", ")}`);
    for (const n of names) assert.ok(lite[n] !== undefined, `undici-lite.mjs does not export ${n}`);
  });

  test("request through an Agent and through the global dispatcher, like undici's", async () => {
    const agent = new lite.Agent();
    try {
      const a = await lite.request(new URL("/v2/?n=1", base), { dispatcher: agent, headers: { "x-a": "1" } });
      assert.equal(a.statusCode, 200);
      assert.equal(await a.body.text(), "hello GET /v2/?n=1");
      const b = await lite.request(`${base}/upload`, { dispatcher: agent, body: "data" });
      assert.equal(await b.body.text(), "hello PUT /upload", "a body without a method is a PUT");
      const c = await lite.request(`${base}/global`);
      assert.equal(c.headers["x-seen"], "3");
      await c.body.dump();
      assert.deepEqual(
        seen.map((s) => `${s.method} ${s.url} ${s.body}`),
        ["GET /v2/?n=1 ", "PUT /upload data", "GET /global "],
      );
      assert.throws(() => lite.request("ftp://127.0.0.1/x", { dispatcher: agent }), /protocol/); // thrown at once, as undici does
    } finally {
      await agent.close();
    }
  });
});
