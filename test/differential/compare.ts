/**
 * Compares docker's and kiln's images of one case: file trees, the config fields the fidelity issue lists,
 * and the layer count. Every normalization applied is in {@link NORMALIZATIONS} with its reason — nothing
 * else is ignored.
 */
import { isDeepStrictEqual } from "node:util";
import type { ImageModel, TreeEntry } from "./image-tree.js";

/** One thing both builders legitimately do differently, and how the comparison neutralizes it. */
export interface Normalization {
  id: string;
  what: string;
  why: string;
}

/** THE list of normalizations (docs/fidelity.md repeats it). */
export const NORMALIZATIONS: readonly Normalization[] = [
  {
    id: "timestamps",
    what: "mtime/atime/ctime of files and the config's created/history times are not compared",
    why: "both builders stamp build time; kaniko's oracle (container-diff) ignores them too",
  },
  {
    id: "root-entry",
    what: "the tree's root directory `/` itself is not compared",
    why: "whether a layer carries a `./` entry is a tar-writer choice; the root always exists",
  },
  {
    id: "config-empty",
    what: "a config field that is absent, null, an empty list, an empty object or an empty string counts as absent",
    why: "Go's encoding of nil vs empty slices/maps differs between the engines without a visible effect",
  },
  {
    id: "hardlink-groups",
    what: "hardlinks are compared as groups of paths sharing content (not which path the tar stores first)",
    why: "tar writers choose the first-seen path of an inode as the link target; the tree is the same",
  },
  {
    id: "from-rewrite",
    what: "external base images in FROM / COPY --from are rewritten to local stand-ins (busybox or Debian) for both builders",
    why: "no Internet on this machine; both builders see the identical rewritten Dockerfile",
  },
  {
    id: "url-rewrite",
    what: "public URLs in ADD/ENV/ARG lines are rewritten to a loopback server serving fixed content (a text file, one tarball, a 404)",
    why: "no Internet on this machine; both builders fetch the identical bytes",
  },
  {
    id: "nondeterministic-content",
    what: "the content (size, sha256) of the paths in CONTENT_IGNORES, per case, is not compared; type, mode and owner still are",
    why: "the Dockerfile itself writes build-time data there (e.g. `RUN date > /date`): two builds of either builder differ",
  },
  {
    id: "run-mountpoints",
    what: "paths in RUN_MOUNTPOINTS (empty files/dirs a runtime creates as bind-mount targets) are not compared when they are empty",
    why: "runc/BuildKit leave mount targets such as /etc/hosts behind in a RUN layer, kiln's runner does not; neither is content a Dockerfile asked for",
  },
];

/** Mount targets a RUN step's runtime may leave behind (see the run-mountpoints normalization). */
export const RUN_MOUNTPOINTS: readonly string[] = [
  "/etc/hosts",
  "/etc/hostname",
  "/etc/resolv.conf",
  "/proc",
  "/sys",
  "/dev",
];

/** Per case: paths whose content is build-time data written by the Dockerfile itself, with the reason. */
export const CONTENT_IGNORES: Readonly<Record<string, { paths: readonly string[]; why: string }>> = {
  "kaniko/Dockerfile_test_cache": { paths: ["/date"], why: "RUN date > /date" },
  "kaniko/Dockerfile_test_cache_oci": { paths: ["/date"], why: "RUN date > /date" },
};

/** Config fields compared (under `config`), plus the top-level architecture/os. */
export const CONFIG_FIELDS = [
  "Env",
  "Cmd",
  "Entrypoint",
  "WorkingDir",
  "User",
  "Labels",
  "ExposedPorts",
  "Volumes",
  "StopSignal",
  "Healthcheck",
  "OnBuild",
  "Shell",
] as const;

function isEmptyValue(v: unknown): boolean {
  if (v === undefined || v === null || v === "") return true;
  if (Array.isArray(v)) return v.length === 0;
  if (typeof v === "object") return Object.keys(v).length === 0;
  return false;
}

/** True when one side lacks `p` and the other has it only as an empty RUN mount target. */
function onlyMountpoint(p: string, a: TreeEntry | undefined, b: TreeEntry | undefined): boolean {
  if (!RUN_MOUNTPOINTS.includes(p) || (a === undefined) === (b === undefined)) return false;
  const e = a ?? b;
  return e !== undefined && ((e.type === "file" && e.size === 0) || e.type === "dir");
}

function describe(e: TreeEntry | undefined): string {
  if (e === undefined) return "absent";
  const mode = e.mode.toString(8).padStart(4, "0");
  const bits = [`${e.type} ${mode} ${e.uid}:${e.gid}`];
  if (e.type === "file") bits.push(`${e.size}B ${e.sha256?.slice(0, 12) ?? ""}`);
  if (e.link !== undefined) bits.push(`-> ${e.link}`);
  if (e.dev !== undefined) bits.push(`dev ${e.dev}`);
  if (e.capability !== undefined) bits.push(`cap ${e.capability}`);
  if (e.xattrs !== undefined) bits.push(`xattrs ${e.xattrs}`);
  return bits.join(" ");
}

function hardlinkGroups(tree: Map<string, TreeEntry>): Map<string, string> {
  const byInode = new Map<TreeEntry, string[]>();
  for (const [p, e] of tree) {
    if (e.type !== "file") continue;
    const list = byInode.get(e) ?? [];
    list.push(p);
    byInode.set(e, list);
  }
  const out = new Map<string, string>();
  for (const paths of byInode.values()) {
    if (paths.length < 2) continue;
    const key = [...paths].sort().join(",");
    for (const p of paths) out.set(p, key);
  }
  return out;
}

/** Differences of one case, each a one-line human-readable statement (empty when identical). */
export function compareImages(docker: ImageModel, kiln: ImageModel, caseName = ""): string[] {
  const contentIgnored = new Set(CONTENT_IGNORES[caseName]?.paths ?? []);
  const diffs: string[] = [];
  const paths = new Set([...docker.tree.keys(), ...kiln.tree.keys()]);
  paths.delete("/");
  const dGroups = hardlinkGroups(docker.tree);
  const kGroups = hardlinkGroups(kiln.tree);
  for (const p of [...paths].sort()) {
    const d = docker.tree.get(p);
    const k = kiln.tree.get(p);
    if (onlyMountpoint(p, d, k)) continue;
    if (d === undefined || k === undefined) {
      diffs.push(`${p}: docker ${describe(d)} | kiln ${describe(k)}`);
      continue;
    }
    const fields: (keyof TreeEntry)[] = [
      "type",
      "mode",
      "uid",
      "gid",
      "size",
      "sha256",
      "link",
      "dev",
      "capability",
      "xattrs",
    ];
    const bad = fields.filter((f) => d[f] !== k[f] && !(contentIgnored.has(p) && (f === "size" || f === "sha256")));
    if (bad.length > 0) diffs.push(`${p}: [${bad.join(",")}] docker ${describe(d)} | kiln ${describe(k)}`);
    const dg = dGroups.get(p) ?? "";
    const kg = kGroups.get(p) ?? "";
    if (dg !== kg) diffs.push(`${p}: hardlink group docker [${dg}] | kiln [${kg}]`);
  }
  const dc = (docker.config["config"] ?? {}) as Record<string, unknown>;
  const kc = (kiln.config["config"] ?? {}) as Record<string, unknown>;
  for (const f of CONFIG_FIELDS) {
    const dv = dc[f];
    const kv = kc[f];
    if (isEmptyValue(dv) && isEmptyValue(kv)) continue;
    if (!isDeepStrictEqual(dv, kv))
      diffs.push(`config.${f}: docker ${JSON.stringify(dv)} | kiln ${JSON.stringify(kv)}`);
  }
  for (const f of ["architecture", "os"]) {
    if (docker.config[f] !== kiln.config[f]) {
      diffs.push(`${f}: docker ${JSON.stringify(docker.config[f])} | kiln ${JSON.stringify(kiln.config[f])}`);
    }
  }
  if (docker.layerCount !== kiln.layerCount)
    diffs.push(`layers: docker ${docker.layerCount} | kiln ${kiln.layerCount}`);
  return diffs;
}
