import { symlink } from "node:fs/promises";
import * as path from "node:path";
import { writeTree } from "../integration/helpers.js";
import { libraryBuild } from "./library-build.js";

/**
 * Builds and pushes (`--reproducible`) the base the skeleton COPY tests start from, as `<host>/<repo>:1`: a
 * relative directory symlink (`/lnk` → `real`) and an absolute one (`/abs` → `/real/nested`), owned
 * directories (`/srv/owned`, 7:8, 0750), a file where COPYs write (`/data/file`) and an /etc/passwd naming
 * `app`. Returns its reference. `work` receives the build context.
 */
export async function buildSkeletonBase(host: string, work: string, repo: string): Promise<string> {
  const ctx = path.join(work, "base-ctx");
  await writeTree(ctx, {
    Dockerfile: [
      "FROM scratch",
      "COPY tree/ /",
      "COPY --chown=7:8 --chmod=750 owned/ /srv/owned/",
      "COPY --chown=3:3 etc/ /etc/",
    ].join("\n"),
    "tree/real/keep": "keep\n",
    "tree/real/nested/deep": "deep\n",
    "tree/data/file": "image file\n",
    "owned/inner": "inner\n",
    "etc/passwd": "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
  });
  await symlink("real", path.join(ctx, "tree", "lnk"));
  await symlink("/real/nested", path.join(ctx, "tree", "abs"));
  const ref = `${host}/${repo}:1`;
  await libraryBuild(["--context", ctx, "--destination", ref, "--insecure", "--reproducible"]);
  return ref;
}

/**
 * Flags of a build of `ctx` as in a CI pod: a fresh state dir `state`, the cache `cacheRepo`, pulling over
 * plain HTTP and writing the OCI layout `out` instead of pushing (`--reproducible` unless told otherwise).
 */
export function podFlags(ctx: string, cacheRepo: string, state: string, out: string, reproducible = true): string[] {
  return [
    "--context",
    ctx,
    "--insecure",
    "--insecure-pull",
    "--no-push",
    ...(reproducible ? ["--reproducible"] : []),
    "--cache=true",
    `--cache-repo=${cacheRepo}`,
    "--kaniko-dir",
    state,
    "--oci-layout-path",
    out,
  ];
}
