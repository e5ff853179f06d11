import * as assert from "node:assert/strict";
import { test } from "node:test";
import { parseReference } from "../../src/registry/index.js";
import { withFakeRegistry } from "../support/fake-registry.js";

// The push check opens an upload session and hands its DELETE to the build (DeferredCancellation). A registry
// that never answers that DELETE must not hold the build: the cancellation is bounded and never rejects.
test(
  "a deferred upload-session DELETE the registry never answers is given up at its bound",
  { timeout: 20_000 },
  async () => {
    const deletes: { closed: Promise<void> }[] = [];
    await withFakeRegistry(
      (req, res, host) => {
        if (req.method === "POST") {
          res.writeHead(202, { location: `http://${host}/v2/app/blobs/uploads/s1`, "content-length": "0" }).end();
          return;
        }
        if (req.method === "DELETE") {
          // Held open: only the client's abort ends it.
          deletes.push({ closed: new Promise((resolve) => res.on("close", () => resolve())) });
          return;
        }
        res.writeHead(404).end();
      },
      async (c, host) => {
        const pending: Promise<void>[] = [];
        await c.checkPushPermission(parseReference(`${host}/app:1`), undefined, {
          add: (p) => pending.push(p),
          timeoutMs: 200,
        });
        assert.equal(pending.length, 1, "the check passed and handed its cancellation over");
        await Promise.all(pending);
        assert.equal(deletes.length, 1, "the DELETE was sent");
        await deletes[0]?.closed; // the client gave up the request: the server saw its connection close
      },
    );
  },
);
