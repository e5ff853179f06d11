/**
 * A newer kiln with an older kiln-exec (`--helper-path`): options the helper gained after `--probe` are
 * passed only when its probe output names them. An "older helper" here is a wrapper around the real one
 * that prints the probe line without its feature words and rejects `--list-upper` as an unknown option,
 * as a helper from before `--list-upper` did. A RUN on an overlay must then succeed, the snapshot walking
 * the upper instead of reading the helper's listing. Needs root, overlay mounts and busybox.
 */
import * as assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { chmod, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { FileIndex } from "../../src/fs/index.js";
import { OverlaySnapshotter } from "../../src/fs/snapshot/index.js";
import { createRunner, probeIsolation } from "../../src/run/index.js";
import { buildHelper, makeBusyboxRoot } from "../../src/run/testing/busybox-root.js";
import { testRunSpec } from "../../src/run/testing/run-spec.js";
import { removeDir, tempDir } from "../support/tmp.js";

const setup = buildHelper();

/** A helper that knows no `--list-upper` and does not name it when probing (shell builtins only). */
function olderHelper(real: string): string {
  return [
    "#!/bin/sh",
    'for a in "$@"; do',
    '  if [ "$a" = --list-upper ]; then echo "kiln-exec: usage: unknown option --list-upper" >&2; exit 2; fi',
    "done",
    'if [ "$1" = --probe ]; then',
    `  out=$(${JSON.stringify(real)} "$@") || exit $?`,
    '  echo "${out% list-upper=1}"',
    "  exit 0",
    "fi",
    `exec ${JSON.stringify(real)} "$@"`,
    "",
  ].join("\n");
}

test("an older helper without --list-upper: the RUN succeeds and the overlay snapshot walks the upper", async (t) => {
  if (setup.helper === undefined) {
    t.skip(setup.reason);
    return;
  }
  const dir = await tempDir("kiln-old-helper-");
  const root = await makeBusyboxRoot();
  try {
    const current = await probeIsolation({ helperPath: setup.helper, scratchDir: tmpdir() });
    if (!current.overlay) {
      t.skip("overlay mounts do not work here");
      return;
    }
    assert.equal(current.listUpper, true, "the current helper names --list-upper");
    const older = path.join(dir, "kiln-exec");
    await writeFile(older, olderHelper(setup.helper));
    await chmod(older, 0o755);
    const probe = await probeIsolation({ helperPath: older, scratchDir: tmpdir() });
    assert.equal(probe.listUpper, false, "the older helper names no features");
    assert.equal(probe.overlay, true, "and still has every mechanism");

    const runner = createRunner("chroot", probe, { helperPath: older });
    const snap = new OverlaySnapshotter();
    const index = await FileIndex.fromWalk(root);
    const dirs = await snap.beforeRun(root);
    const out: Buffer[] = [];
    const spec = testRunSpec({
      root,
      argv: ["sh", "-c", "echo hi > /work/new && /bin/busybox rm /etc/group"],
      overlay: dirs,
    });
    const r = await runner.run(spec, { stdout: (c) => out.push(c), stderr: (c) => out.push(c) });
    assert.equal(r.exitCode, 0, Buffer.concat(out).toString());
    assert.ok(dirs.listing !== undefined && !existsSync(dirs.listing), "no listing was asked for");
    const changes = await snap.afterRun(root, index);
    assert.deepEqual(changes.changed, ["/etc", "/work", "/work/new"]);
    assert.deepEqual(changes.deleted, ["/etc/group"]);
  } finally {
    await removeDir(root);
    await removeDir(dir);
  }
});
