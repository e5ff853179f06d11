import { createHash } from "node:crypto";
import { readFileSync, readlinkSync, realpathSync, statSync, statfsSync } from "node:fs";
import { rename, rm, writeFile } from "node:fs/promises";
import { release } from "node:os";

/**
 * A remembered answer of `kiln-exec --probe`, for builds that keep a directory across runs (the layer
 * store). The answer depends only on what this process may do (user, capabilities, seccomp, the
 * namespaces it lives in), the kernel and its user-namespace knobs, the helper binary and the
 * filesystem of the scratch dir: the cache key is a hash of all of these, read fresh on every build
 * (~a dozen small reads of /proc instead of a spawn and eight forked checks). Any difference, or any
 * input that cannot be read, means "probe again".
 *
 * The key and the cached answer are read synchronously: they are in-memory /proc files, a few `stat`s and
 * one small file, microseconds each, while a chain of a dozen awaited reads waits at every step behind the
 * build's other work (base pulls, cache probes). In a container every build waits for this answer.
 */

/** Format version of the cache file; bump when the key or the stored line change meaning. */
const VERSION = 1;

/** Files whose content is part of the key when present ("-" when absent: that is a state too). */
const KNOBS = [
  "/proc/sys/kernel/random/boot_id",
  "/proc/sys/user/max_user_namespaces",
  "/proc/sys/kernel/unprivileged_userns_clone",
  "/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
];
/** Namespaces of this process: another container (or a host build) has other inode numbers. */
const NAMESPACES = ["user", "mnt", "pid", "net", "ipc", "uts", "cgroup"];
/** Lines of /proc/self/status that say what this process may do. */
const STATUS_FIELDS = /^(Uid|Gid|CapEff|CapPrm|CapBnd|NoNewPrivs|Seccomp):/;

/** A file's content, or "-" when it cannot be read (absent is a state too). */
function readOptional(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return "-";
  }
}

/**
 * The key a cached probe must carry to be used here and now, or undefined when an input cannot be
 * read (then nothing is cached).
 */
export function probeCacheKey(helper: string, scratchDir: string): string | undefined {
  try {
    const h = createHash("sha256");
    const add = (label: string, value: string | number | bigint): void => {
      h.update(`${label}=${String(value)}\n`);
    };
    add("version", VERSION);
    add("kernel", release());
    for (const f of KNOBS) add(f, readOptional(f).trim());
    for (const ns of NAMESPACES) add(`ns/${ns}`, readlinkSync(`/proc/self/ns/${ns}`));
    const status = readFileSync("/proc/self/status", "utf8");
    for (const line of status.split("\n")) if (STATUS_FIELDS.test(line)) add("status", line.replace(/\s+/g, " "));
    const real = realpathSync(helper);
    const hs = statSync(real, { bigint: true });
    add("helper", `${real} ${hs.dev} ${hs.ino} ${hs.size} ${hs.mtimeNs} ${hs.ctimeNs}`);
    const fs = statfsSync(scratchDir);
    const ds = statSync(scratchDir, { bigint: true });
    add("scratch", `${fs.type} ${ds.dev}`);
    return h.digest("hex");
  } catch {
    return undefined;
  }
}

/**
 * The `kiln-exec --probe` output line stored in `file` under `key`, or undefined (no file, another key,
 * unreadable, malformed). The caller parses it as it parses the helper's own output.
 */
export function readProbeCache(file: string, key: string): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, "utf8"));
  } catch {
    return undefined;
  }
  if (typeof parsed !== "object" || parsed === null) return undefined;
  const rec = parsed as { version?: unknown; key?: unknown; line?: unknown };
  if (rec.version !== VERSION || rec.key !== key || typeof rec.line !== "string") return undefined;
  return rec.line;
}

/**
 * Stores the probe output `line` under `key` in `file` (written aside, then renamed). Never throws;
 * nothing is left behind when it fails.
 */
export async function writeProbeCache(file: string, key: string, line: string): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    await writeFile(tmp, JSON.stringify({ version: VERSION, key, line }) + "\n", { mode: 0o600 });
    await rename(tmp, file);
  } catch {
    // Not cached: the next build probes again.
    await rm(tmp, { force: true }).catch(() => undefined);
  }
}
