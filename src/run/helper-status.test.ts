import { describe, it } from "node:test";
import * as assert from "node:assert/strict";
import { describeHelperError, parseHelperStatus, signalName } from "./helper-status.js";

describe("helper status pipe", () => {
  it("parses exec-ok, exit and signal lines", () => {
    assert.deepEqual(parseHelperStatus("exec-ok\nexit 42\n"), { execOk: true, exitCode: 42 });
    assert.deepEqual(parseHelperStatus("exec-ok\nsignal 9\n"), { execOk: true, signal: 9 });
  });

  it("keeps the first error line", () => {
    const s = parseHelperStatus("error userns 1 writing: Operation not permitted\nerror userns 1 second\n");
    assert.deepEqual(s.error, { stage: "userns", errno: 1, message: "writing: Operation not permitted" });
    assert.equal(s.execOk, false);
  });

  it("names signals", () => {
    assert.equal(signalName(9), "SIGKILL");
    assert.equal(signalName(15), "SIGTERM");
    assert.equal(signalName(250), "SIG250");
  });

  it("describes failures in the user's terms", () => {
    const enoent = { stage: "exec", errno: 2, message: "/bin/sh: No such file or directory" };
    assert.equal(
      describeHelperError(enoent, "/bin/sh", "/"),
      "/bin/sh: no such file or directory in the image (is it installed, and on PATH?)",
    );
    assert.match(
      describeHelperError({ stage: "exec", errno: 13, message: "" }, "tool", "/"),
      /^tool: permission denied/,
    );
    // A binary of another architecture (no emulation, as in kaniko): ENOEXEC says so.
    assert.match(
      describeHelperError({ stage: "exec", errno: 8, message: "" }, "/usr/bin/arm64-tool", "/"),
      /^\/usr\/bin\/arm64-tool: exec format error \(wrong architecture, or a script without #!\)$/,
    );
    assert.equal(
      describeHelperError({ stage: "chdir", errno: 2, message: "" }, "sh", "/app"),
      "working directory /app does not exist in the image",
    );
    assert.match(
      describeHelperError({ stage: "mount", errno: 1, message: "/r/proc: Operation not permitted" }, "sh", "/"),
      /at mount: \/r\/proc/,
    );
  });
});
