import * as assert from "node:assert/strict";
import { mkdir, symlink, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { lookupUser } from "./lookup-user.js";
import { assertCode, makeSandbox } from "./test-helpers.js";

test("lookupUser resolves names, ids, groups and supplementary groups inside the root", async () => {
  const sb = await makeSandbox();
  try {
    const r = sb.root;
    await mkdir(path.join(r, "real-etc"));
    await symlink("/real-etc", path.join(r, "etc")); // read through the jail, not the host's /etc
    await writeFile(
      path.join(r, "real-etc/passwd"),
      "root:x:0:0:root:/root:/bin/sh\n# comment\nbroken line\napp:x:1000:1001:App:/home/app:/bin/sh\nnohome:x:1002:1002:::\n",
    );
    await writeFile(
      path.join(r, "real-etc/group"),
      "root:x:0:\nappgrp:x:1001:\nwheel:x:10:app,other\ndocker:x:999: app \nstaff:x:50:\n",
    );
    assert.deepEqual(await lookupUser(r, "app"), {
      uid: 1000,
      gid: 1001,
      home: "/home/app",
      groups: [10, 999],
      inPasswd: true,
    });
    assert.deepEqual(await lookupUser(r, "1000"), {
      uid: 1000,
      gid: 1001,
      home: "/home/app",
      groups: [10, 999],
      inPasswd: true,
    });
    assert.deepEqual(await lookupUser(r, "app:staff"), {
      uid: 1000,
      gid: 50,
      home: "/home/app",
      groups: [10, 999],
      inPasswd: true,
    });
    assert.deepEqual(await lookupUser(r, "1000:42"), {
      uid: 1000,
      gid: 42,
      home: "/home/app",
      groups: [10, 999],
      inPasswd: true,
    });
    assert.deepEqual(await lookupUser(r, "4242"), { uid: 4242, gid: 0, home: "/", groups: [], inPasswd: false });
    assert.deepEqual(await lookupUser(r, "4242:staff"), { uid: 4242, gid: 50, home: "/", groups: [], inPasswd: false });
    assert.deepEqual(await lookupUser(r, "nohome"), { uid: 1002, gid: 1002, home: "/", groups: [], inPasswd: true });
    await assertCode(lookupUser(r, "nobody"), "USER_NOT_FOUND");
    await assertCode(lookupUser(r, "app:nogroup"), "USER_NOT_FOUND");
  } finally {
    await sb.cleanup();
  }
});

test("lookupUser without /etc/passwd: numeric ids work, names fail", async () => {
  const sb = await makeSandbox();
  try {
    assert.deepEqual(await lookupUser(sb.root, "1:2"), { uid: 1, gid: 2, home: "/", groups: [], inPasswd: false });
    await assertCode(lookupUser(sb.root, "root"), "USER_NOT_FOUND");
    // A symlinked passwd pointing outside the root is re-rooted, never the host's file.
    await mkdir(path.join(sb.root, "etc"));
    await writeFile(path.join(sb.base, "passwd-outside"), "root:x:0:0:root:/root:/bin/sh\n");
    await symlink("../../passwd-outside", path.join(sb.root, "etc/passwd"));
    await assertCode(lookupUser(sb.root, "root"), "USER_NOT_FOUND");
  } finally {
    await sb.cleanup();
  }
});
