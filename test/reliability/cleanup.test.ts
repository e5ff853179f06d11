/**
 * `--cleanup` with the in-place back-end, inside a namespace jail laid out like kiln's executor image
 * (never on this machine's own root): the jail's whole tree is listed before and after a multi-stage
 * build (RUN, COPY, COPY --from, a deleted base file) — path, type, mode, owner, size, content hash, link
 * target. With `--cleanup --preserve-context` the listing after must equal the listing before; with
 * `--cleanup` alone (kaniko's semantics: the build root is wiped) nothing may be added or changed, and
 * only the container's own unprotected files may be gone — kiln's runtime under /kaniko stays intact.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { lstat, readdir, readFile, readlink } from "node:fs/promises";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { writeTree } from "../integration/helpers.js";
import { startBusyboxRegistry } from "../support/busybox-registry.js";
import { buildInJail, makeJail } from "../support/in-place-jail.js";
import type { TestRegistry } from "../support/registry.js";
import { removeDir, tempDir } from "../support/tmp.js";
import { Figures } from "./support.js";

const figures = new Figures("--cleanup leaves the build root as found (in-place, namespace jail)");
const canJail = process.getuid?.() === 0;

/** Every path below `root` (mount points /proc and /dev not entered) → a line describing it exactly. */
async function listing(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const visit = async (rel: string): Promise<void> => {
    for (const name of (await readdir(path.join(root, rel))).sort()) {
      const r = rel === "" ? name : `${rel}/${name}`;
      const p = path.join(root, r);
      const st = await lstat(p);
      const mode = (st.mode & 0o7777).toString(8);
      const own = `${st.uid}:${st.gid}`;
      if (st.isDirectory()) {
        out.set(r, `dir ${mode} ${own}`);
        if (r !== "proc" && r !== "dev") await visit(r);
      } else if (st.isSymbolicLink()) out.set(r, `link ${own} -> ${await readlink(p)}`);
      else if (st.isFile()) {
        const sum = createHash("sha256")
          .update(await readFile(p))
          .digest("hex")
          .slice(0, 16);
        out.set(r, `file ${mode} ${own} ${st.size} ${sum}`);
      } else out.set(r, `other ${mode} ${own}`);
    }
  };
  await visit("");
  return out;
}

/** Human-readable differences between two listings (at most 20). */
function diff(
  before: Map<string, string>,
  after: Map<string, string>,
): { added: string[]; removed: string[]; changed: string[] } {
  const added = [...after.keys()].filter((k) => !before.has(k));
  const removed = [...before.keys()].filter((k) => !after.has(k));
  const changed = [...after.keys()].filter((k) => before.has(k) && before.get(k) !== after.get(k));
  return { added, removed, changed };
}

describe("--cleanup in place", { skip: canJail ? false : "needs root (namespace jail)" }, () => {
  let reg: TestRegistry;
  let base: string;
  let work: string;
  before(async () => {
    ({ reg, base } = await startBusyboxRegistry());
    work = await tempDir("cleanup");
  });
  after(async () => {
    await figures.flush();
    await reg?.stop();
    if (work) await removeDir(work);
  });

  /** A jail with the container's own files (like an executor image: /etc, /workspace, /busybox). */
  async function jail(name: string): Promise<string> {
    const dir = await makeJail(path.join(work, name));
    await writeTree(dir, {
      "etc/nsswitch.conf": "hosts: files dns\n",
      "etc/ssl/certs/ca.pem": "not really a certificate\n",
      "workspace/.keep": "",
      "busybox/README": "debug shell lives here\n",
      "kaniko/ctx/Dockerfile": [
        `FROM ${base} AS build`,
        "RUN echo built > /artifact && mkdir -p /usr/local/app && echo x > /usr/local/app/x",
        `FROM ${base}`,
        "COPY --from=build /artifact /artifact",
        "COPY payload.txt /etc/payload.txt",
        "RUN rm -f /bin/ls && echo y > /etc/nsswitch.conf && mkdir -p /workspace/out && echo z > /workspace/out/z",
        "",
      ].join("\n"),
      "kaniko/ctx/payload.txt": "payload\n",
    });
    return dir;
  }
  const common = ["--context", "/kaniko/ctx", "--no-push", "--insecure-pull", "--isolation=in-place", "--cleanup"];

  const variants: { name: string; flags: string[]; exact: boolean }[] = [
    { name: "--cleanup --preserve-context: identical tree", flags: ["--preserve-context"], exact: true },
    { name: "--cleanup: nothing added or changed, only unprotected container files gone", flags: [], exact: false },
  ];

  for (const [i, v] of variants.entries()) {
    test(v.name, async () => {
      const dir = await jail(`j${i}`);
      const beforeList = await listing(dir);
      const r = await buildInJail(dir, [...common, ...v.flags]);
      const afterList = await listing(dir);
      const d = diff(beforeList, afterList);
      const runtimeIntact = [...beforeList.keys()]
        .filter((k) => k.startsWith("kaniko/bin") || k.startsWith("kaniko/lib") || (v.exact && k === ".dockerenv"))
        .every((k) => afterList.get(k) === beforeList.get(k));
      // Without --preserve-context the build root is wiped except the protected paths (kaniko).
      const protectedPrefixes = ["kaniko", "proc", "dev"];
      const onlyUnprotectedGone = d.removed.every(
        (k) => !protectedPrefixes.some((p) => k === p || k.startsWith(`${p}/`)),
      );
      const ok =
        r.code === 0 &&
        d.added.length === 0 &&
        d.changed.length === 0 &&
        runtimeIntact &&
        (v.exact ? d.removed.length === 0 : onlyUnprotectedGone);
      figures.add(
        `in place, ${v.name}`,
        1,
        ok ? 1 : 0,
        `${beforeList.size} paths before, ${afterList.size} after; added ${d.added.length}, changed ${d.changed.length}, removed ${d.removed.length}`,
      );
      assert.equal(r.code, 0, r.output.slice(-3000));
      assert.deepEqual(d.added.slice(0, 20), [], "nothing the build wrote is left");
      assert.deepEqual(
        d.changed.slice(0, 20).map((k) => `${k}: ${beforeList.get(k)} → ${afterList.get(k)}`),
        [],
        "nothing changed",
      );
      // Plain --cleanup wipes /.dockerenv like every unprotected container file (kaniko does the same).
      assert.ok(runtimeIntact, "kiln's runtime under /kaniko (and with --preserve-context /.dockerenv) is intact");
      if (v.exact) assert.deepEqual(d.removed.slice(0, 20), [], "nothing of the container was lost");
      else assert.ok(onlyUnprotectedGone, `protected paths removed: ${d.removed.join(", ")}`);
    });
  }
});
