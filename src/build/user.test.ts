import * as assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { resolveFileOwner, resolveIdentity } from "./user.js";

test("resolveFileOwner: a bare uid without a passwd entry owns files as uid:uid, RUN identity keeps gid 0", async () => {
  const root = await mkdtemp(path.join(tmpdir(), "kiln-user-"));
  try {
    await mkdir(path.join(root, "etc"));
    await writeFile(path.join(root, "etc/passwd"), "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n");
    await writeFile(path.join(root, "etc/group"), "root:x:0:\napp:x:1001:\nextra:x:50:app\n");
    const owner = async (u: string | undefined) => {
      const id = await resolveFileOwner(root, u);
      return `${id.uid}:${id.gid}`;
    };
    assert.equal(await owner("1000"), "1000:1001", "listed uid: its passwd gid");
    assert.equal(await owner("app"), "1000:1001");
    assert.equal(await owner("4242"), "4242:4242", "unlisted bare uid: gid = uid (BuildKit file ops)");
    assert.equal(await owner("4242:7"), "4242:7", "an explicit group wins");
    assert.equal(await owner(undefined), "0:0");
    assert.equal(await owner("0"), "0:0");
    assert.deepEqual(await resolveIdentity(root, "4242"), { uid: 4242, gid: 0, groups: [], home: "/" });
    assert.deepEqual(await resolveIdentity(root, "app"), { uid: 1000, gid: 1001, groups: [50], home: "/home/app" });
    // No /etc/passwd at all: root by name still works, a bare uid owns as uid:uid.
    await rm(path.join(root, "etc/passwd"));
    assert.equal(await owner("root"), "0:0");
    assert.equal(await owner("7"), "7:7");
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test("resolveIdentity: a numeric id above 4294967294 is refused, also without a root", async () => {
  await assert.rejects(resolveIdentity(undefined, "4294967296"), { code: "USER_ID_INVALID" });
  await assert.rejects(resolveIdentity(undefined, "1000:4294967295"), { code: "USER_ID_INVALID" });
  assert.equal((await resolveIdentity(undefined, "4294967294")).uid, 4294967294);
});
