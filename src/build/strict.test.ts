import * as assert from "node:assert/strict";
import { test } from "node:test";
import { hasCode } from "../common/errors.js";
import type { BuildEvent } from "./events.js";
import { assertStrict, fromPlatformWarning, strictReporter, strictViolations } from "./strict.js";

test("strictReporter passes everything through unless strict; then leniency warnings throw", () => {
  const seen: BuildEvent[] = [];
  const lenient = strictReporter((e) => seen.push(e), false);
  lenient({ kind: "warning", code: "UNUSED_BUILD_ARG", message: "x" });
  assert.equal(seen.length, 1);
  const strict = strictReporter((e) => seen.push(e), true);
  strict({ kind: "warning", code: "CONSISTENT_INSTRUCTION_CASING", message: "style only" });
  strict({ kind: "info", message: "i" });
  assert.equal(seen.length, 3);
  assert.throws(
    () => strict({ kind: "warning", code: "COPY_IGNORED_PATH", message: "Dockerfile:3: COPY skipped /kaniko/x" }),
    (e: unknown) =>
      hasCode(e, "STRICT") && /Dockerfile:3: COPY skipped .*\[COPY_IGNORED_PATH\].*--strict/.test(String(e)),
  );
});

test("Dockerfile leniencies are listed with file:line; style lints are not", () => {
  const v = strictViolations(
    [
      { code: "MULTIPLE_INSTRUCTIONS_DISALLOWED", message: "only the last CMD is used", range: { start: 4, end: 4 } },
      { code: "JSON_ARGS_RECOMMENDED", message: "style", range: { start: 5, end: 5 } },
    ],
    "Dockerfile",
  );
  assert.deepEqual(v, ["Dockerfile:4: only the last CMD is used [MULTIPLE_INSTRUCTIONS_DISALLOWED]"]);
  assert.throws(
    () => assertStrict(v),
    (e: unknown) => hasCode(e, "STRICT"),
  );
  assertStrict([]);
});

test("FROM --platform is ignored only when it names another platform", () => {
  const amd64 = { os: "linux", architecture: "amd64" };
  assert.equal(fromPlatformWarning("linux/amd64", amd64, 1), undefined);
  assert.equal(fromPlatformWarning("linux/arm/v7", { os: "linux", architecture: "arm", variant: "v7" }, 1), undefined);
  const w = fromPlatformWarning("linux/arm64", amd64, 2);
  assert.equal(w?.code, "FROM_PLATFORM_IGNORED");
  assert.match(w?.message ?? "", /--platform=linux\/arm64 is ignored: kiln builds every stage for linux\/amd64/);
});
