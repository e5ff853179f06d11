import * as assert from "node:assert/strict";
import { test } from "node:test";
import { IgnoreList } from "./ignore-list.js";
import { parseMountinfo } from "./mountinfo.js";

test("parseMountinfo decodes octal escapes", () => {
  const text = [
    "22 1 8:1 / / rw,relatime - ext4 /dev/root rw",
    "23 22 0:5 / /proc rw - proc proc rw",
    "40 22 0:50 / /mnt/with\\040space rw - tmpfs tmpfs rw",
    "41 22 0:51 / /back\\134slash rw - tmpfs tmpfs rw",
    "",
    "garbage",
  ].join("\n");
  assert.deepEqual(parseMountinfo(text), ["/", "/proc", "/mnt/with space", "/back\\slash"]);
});

test("IgnoreList defaults, mounts, patterns and volumes", () => {
  const ig = IgnoreList.create({
    stateDir: "/kaniko",
    mountinfo:
      "1 0 8:1 / / rw - ext4 x rw\n2 1 0:5 / /etc/hosts rw - tmpfs t rw\n3 1 0:6 / /var/lib/secret rw - tmpfs t rw",
    ignorePaths: ["/opt/*/cache"],
    volumes: ["/data"],
  });
  assert.equal(ig.ignores("/kaniko"), true);
  assert.equal(ig.ignores("/kaniko/executor"), true);
  assert.equal(ig.ignores("/kanikox"), false);
  assert.equal(ig.ignores("/etc/mtab"), true);
  assert.equal(ig.ignores("/etc/hosts"), true);
  assert.equal(ig.ignores("/etc/hostname"), false);
  assert.equal(ig.ignores("/var/run/x"), true);
  assert.equal(ig.ignores("/var/lib/secret/token"), true);
  assert.equal(ig.ignores("/tmp/apt-key-gpghome"), false, "kaniko prefix-only rule");
  assert.equal(ig.ignores("/tmp/apt-key-gpghome/k"), true);
  assert.equal(ig.ignores("/opt/app/cache/f"), true);
  assert.equal(ig.ignores("/opt/app/data"), false);
  assert.equal(ig.ignores("/data/db"), true);
  assert.equal(ig.ignores("/proc/1"), false, "proc only when the caller says it is a mount");
  assert.equal(ig.ignores("/"), false);
  assert.equal(ig.isAncestorOfIgnored("/var"), true);
  assert.equal(ig.isAncestorOfIgnored("/opt/zzz"), true);
  assert.equal(ig.isAncestorOfIgnored("/opt/zzz/cache"), false);
  assert.equal(ig.isAncestorOfIgnored("/usr"), false);
  assert.equal(ig.isAncestorOfIgnored("/"), true);
});

test("IgnoreList options: systemMounts, ignoreVarRun=false, mountinfoRoot", () => {
  const ig = IgnoreList.create({
    systemMounts: true,
    ignoreVarRun: false,
    mountinfo: "2 1 0:5 / /build/root/cache rw - tmpfs t rw\n3 1 0:6 / /elsewhere rw - tmpfs t rw",
    mountinfoRoot: "/build/root",
  });
  assert.equal(ig.ignores("/proc/self"), true);
  assert.equal(ig.ignores("/dev"), true);
  assert.equal(ig.ignores("/var/run/x"), false);
  assert.equal(ig.ignores("/cache/x"), true);
  assert.equal(ig.ignores("/elsewhere"), false);
  assert.throws(() => IgnoreList.create({ ignorePaths: ["/a/[b"] }), /invalid pattern/);
  assert.equal(IgnoreList.empty().ignores("/etc/mtab"), false);
});
