import * as assert from "node:assert/strict";
import { test } from "node:test";
import { KilnError } from "../common/errors.js";
import { RegistryError } from "./errors.js";
import { isRetryable, parseRetryAfter, withRetry } from "./retry.js";

test("Retry-After: seconds or HTTP date, capped at 60 s", () => {
  assert.equal(parseRetryAfter("2"), 2000);
  assert.equal(parseRetryAfter("9999"), 60_000);
  assert.equal(parseRetryAfter(new Date(10_000).toUTCString(), 7_000), 3000);
  assert.equal(parseRetryAfter("soon"), undefined);
  assert.equal(parseRetryAfter(undefined), undefined);
});

test("5xx, 429 and connection resets are retryable; 4xx, digest errors and aborts are not", () => {
  const re = (status: number) => new RegistryError("X", "m", { registry: "r", status });
  assert.ok(isRetryable(re(500)) && isRetryable(re(503)) && isRetryable(re(429)));
  assert.ok(!isRetryable(re(401)) && !isRetryable(re(404)));
  assert.ok(isRetryable(Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" })));
  assert.ok(
    isRetryable(
      new RegistryError("REGISTRY_UNREACHABLE", "m", {
        registry: "r",
        cause: Object.assign(new Error("x"), { code: "UND_ERR_SOCKET" }),
      }),
    ),
  );
  assert.ok(!isRetryable(new RegistryError("DIGEST_MISMATCH", "m", { registry: "r" })));
  // A manifest PUT racing a concurrent commit of one of its blobs is worth another try; other 400s are not.
  const blobUnknown = "pushing r/app: 400 Bad Request (MANIFEST_BLOB_UNKNOWN: blob unknown to registry)";
  assert.ok(isRetryable(new RegistryError("REGISTRY_ERROR", blobUnknown, { registry: "r", status: 400 })));
  assert.ok(
    !isRetryable(
      new RegistryError("REGISTRY_ERROR", "pushing r/app: 400 (NAME_INVALID)", { registry: "r", status: 400 }),
    ),
  );
  assert.ok(isRetryable(new KilnError("PREMATURE_EOF", "short")));
  const abort = new Error("aborted");
  abort.name = "AbortError";
  assert.ok(!isRetryable(abort));
});

test("withRetry retries up to the limit, then rethrows; non-retryable errors fail at once", async () => {
  let calls = 0;
  const retries: number[] = [];
  await assert.rejects(
    withRetry(
      () => {
        calls++;
        return Promise.reject(new RegistryError("REGISTRY_UNAVAILABLE", "down", { registry: "r", status: 503 }));
      },
      { retries: 2, baseDelayMs: 1, onRetry: (a) => retries.push(a) },
    ),
    /down/,
  );
  assert.equal(calls, 3);
  assert.deepEqual(retries, [1, 2]);
  calls = 0;
  await assert.rejects(
    withRetry(
      () => {
        calls++;
        return Promise.reject(new RegistryError("REGISTRY_DENIED", "no", { registry: "r", status: 403 }));
      },
      { retries: 5, baseDelayMs: 1 },
    ),
  );
  assert.equal(calls, 1);
  assert.equal(
    await withRetry((a) => (a < 1 ? Promise.reject(new KilnError("PREMATURE_EOF", "x")) : Promise.resolve(a)), {
      retries: 3,
      baseDelayMs: 1,
    }),
    1,
  );
});
