import { describe, it } from "node:test";
import * as assert from "node:assert/strict";
import { containerEvidence, isInContainer } from "./container-detect.js";
import type { DetectionFs } from "./container-detect.js";

function fakeFs(files: Record<string, string>): DetectionFs {
  return { exists: (p) => p in files, read: (p) => files[p] };
}

const HOST_CGROUP = "0::/init.scope\n1:name=systemd:/\n";
const HOST_MOUNTINFO = "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n";

describe("isInContainer", () => {
  it("is false on a plain host", () => {
    assert.equal(
      isInContainer(fakeFs({ "/proc/1/cgroup": HOST_CGROUP, "/proc/self/mountinfo": HOST_MOUNTINFO })),
      false,
    );
  });

  it("recognises each of kaniko's signals", () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ "/.dockerenv": "" }, /dockerenv/],
      [{ "/run/.containerenv": "" }, /containerenv/],
      [{ "/proc/1/environ": "HOME=/\0container=podman\0" }, /container=/],
      [{ "/proc/1/cgroup": "12:memory:/kubepods/burstable/pod1/abc\n" }, /kubepods/],
      [{ "/proc/self/cgroup": "0::/system.slice/docker-0123.scope\n" }, /docker/],
      [{ "/var/run/secrets/kubernetes.io/serviceaccount": "" }, /serviceaccount/],
      [{ "/proc/self/mountinfo": "600 500 0:50 / / rw - overlay overlay rw,lowerdir=/a\n" }, /overlay/],
    ];
    for (const [files, why] of cases) assert.match(containerEvidence(fakeFs(files)) ?? "not detected", why);
  });

  it("does not mistake a host cgroup path or an overlay elsewhere for a container", () => {
    const fs = fakeFs({
      "/proc/1/cgroup": "0::/user.slice/user-1000.slice\n",
      "/proc/self/mountinfo": `${HOST_MOUNTINFO}90 27 0:60 / /var/lib/x rw - overlay overlay rw\n`,
    });
    assert.equal(containerEvidence(fs), undefined);
  });
});
