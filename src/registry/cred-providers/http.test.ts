import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { hasCode } from "../../common/errors.js";
import { requestText } from "./http.js";

test("a credential service answering more than 1 MiB is refused, not buffered", async () => {
  const server = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "application/json" });
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    let left = 64; // 4 MiB
    const pump = (): void => {
      while (left-- > 0) if (!res.write(chunk)) return void res.once("drain", pump);
      res.end();
    };
    pump();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/token`);
  try {
    await assert.rejects(requestText({ url, provider: "Test", timeoutMs: 10_000 }), (e: unknown) => {
      assert.ok(hasCode(e, "CREDENTIAL_PROVIDER_FAILED"));
      assert.match(e.message, /answered more than 1048576 bytes/);
      return true;
    });
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});
