import { test } from "node:test";
import * as assert from "node:assert/strict";
import { exposedPorts } from "./expose.js";
import { DockerfileError } from "./errors.js";

test("exposedPorts normalises EXPOSE values like docker", () => {
  assert.deepEqual(exposedPorts(["3000", "4000/udp", "5000", "3000/tcp"]), ["3000/tcp", "4000/udp", "5000/tcp"]);
  assert.deepEqual(exposedPorts(["8000-8002/sctp"]), ["8000/sctp", "8001/sctp", "8002/sctp"]);
  assert.deepEqual(exposedPorts(["127.0.0.1:8080:80"]), ["80/tcp"]);
  assert.throws(() => exposedPorts(["80/foo"]), DockerfileError);
  assert.throws(() => exposedPorts(["abc"]), /invalid containerPort/);
  assert.throws(() => exposedPorts(["/tcp"]), /no port specified/);
  assert.throws(() => exposedPorts(["90-80"]), /invalid range/);
});
