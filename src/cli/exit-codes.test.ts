import { test } from "node:test";
import assert from "node:assert/strict";
import { KilnError } from "../common/errors.js";
import { RegistryError } from "../registry/index.js";
import { parseAddGitSource } from "../build/steps/add-git.js";
import { errorDetails, errorLine, exitCodeFor } from "./exit-codes.js";

test("--verbosity=debug details: the error code, the registry's answer, then the causes", () => {
  const root = new Error("ECONNRESET");
  const e = new RegistryError("REGISTRY_NOT_FOUND", "pulling reg:5000/app: 404 Not Found (MANIFEST_UNKNOWN: x)", {
    registry: "reg:5000",
    repository: "app",
    status: 404,
    ociCode: "MANIFEST_UNKNOWN",
    cause: root,
  });
  assert.equal(errorLine(e), "pulling reg:5000/app: 404 Not Found (MANIFEST_UNKNOWN: x)");
  assert.deepEqual(errorDetails(e), [
    "error code REGISTRY_NOT_FOUND: registry=reg:5000 repository=app status=404 oci-code=MANIFEST_UNKNOWN",
    "caused by: ECONNRESET",
  ]);
  assert.deepEqual(errorDetails(new KilnError("PARSE", "Dockerfile:2: bad")), ["error code PARSE"]);
});

test("an ADD source kiln does not support (ssh, git://) is a Dockerfile error: exit code 1, not 2", () => {
  for (const src of ["git@github.com:org/repo.git", "git://github.com/org/repo.git#main"]) {
    assert.throws(
      () => parseAddGitSource(src),
      (e: unknown) => e instanceof KilnError && e.code === "ADD_GIT_UNSUPPORTED" && exitCodeFor(e) === 1,
      src,
    );
  }
  assert.equal(exitCodeFor(new KilnError("NOT_IMPLEMENTED", "kiln: --x is not implemented yet")), 2);
});
