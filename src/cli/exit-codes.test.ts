import { test } from "node:test";
import assert from "node:assert/strict";
import { KilnError } from "../common/errors.js";
import { RegistryError } from "../registry/index.js";
import { errorDetails, errorLine } from "./exit-codes.js";

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
