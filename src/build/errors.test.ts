import { test } from "node:test";
import assert from "node:assert/strict";
import { KilnError } from "../common/errors.js";
import { RegistryError } from "../registry/errors.js";
import { RunFailedError, stepError } from "./errors.js";

test("stepError names the location and instruction, keeping the cause's code", () => {
  const e = stepError("Dockerfile:3", "COPY a b", new KilnError("COPY_BAD_PATTERN", "bad pattern"));
  assert.equal(e.code, "COPY_BAD_PATTERN");
  assert.equal(e.message, "Dockerfile:3: COPY a b: bad pattern");
  const run = new RunFailedError("the command returned 3", 3);
  assert.equal(stepError("Dockerfile:2", "RUN x", run), run);
  assert.equal(stepError("Dockerfile:2", "RUN x", new Error("boom")).code, "STEP_FAILED");
});

test("stepError keeps a registry error's registry, repository and status", () => {
  const cause = new RegistryError("REGISTRY_NOT_FOUND", "pulling reg:5000/base: 404 Not Found", {
    registry: "reg:5000",
    repository: "base",
    status: 404,
    ociCode: "MANIFEST_UNKNOWN",
  });
  const e = stepError("Dockerfile:1", "FROM reg:5000/base", cause);
  assert.ok(e instanceof RegistryError);
  assert.equal(e.code, "REGISTRY_NOT_FOUND");
  assert.equal(e.message, "Dockerfile:1: FROM reg:5000/base: pulling reg:5000/base: 404 Not Found");
  assert.deepEqual([e.registry, e.repository, e.status, e.ociCode], ["reg:5000", "base", 404, "MANIFEST_UNKNOWN"]);
  assert.equal(e.cause, cause);
});

test("stepError leaves the user info of a URL in the instruction out of its message", () => {
  const e = stepError("Dockerfile:3", "ADD https://ci:s3cr3t@host/f.tgz /f", new Error("HTTP 500"));
  assert.equal(e.message, "Dockerfile:3: ADD https://host/f.tgz /f: HTTP 500");
});
