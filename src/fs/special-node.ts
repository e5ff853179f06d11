import { findTool, runTool } from "./exec-tool.js";
import { isRestorableXattr, XATTR_VALUE_MAX, type XattrRequest } from "./xattr.js";

/**
 * Creates character/block devices and FIFOs from tar entries. Node has no mknod(2), so this runs the
 * `mknod`/`mkfifo` programs (coreutils). One instance per extraction: it looks the programs up once.
 */
export class SpecialNodes {
  #tools: Promise<{ mknod?: string | undefined; mkfifo?: string | undefined }> | undefined;

  private tools(): Promise<{ mknod?: string | undefined; mkfifo?: string | undefined }> {
    this.#tools ??= Promise.all([findTool("mknod"), findTool("mkfifo")]).then(([mknod, mkfifo]) => ({
      mknod,
      mkfifo,
    }));
    return this.#tools;
  }

  /**
   * Creates the node `host` (which must not exist) with the permission bits of `mode`. Devices need
   * root. Resolves undefined on success, else the reason it was not created.
   */
  async create(
    host: string,
    node: { type: "char" | "block" | "fifo"; mode: number; devmajor: number; devminor: number },
  ): Promise<string | undefined> {
    const tools = await this.tools();
    const mode = (node.mode & 0o777).toString(8);
    let res: { ok: boolean; stderr: string } | undefined;
    if (node.type === "fifo") {
      if (tools.mkfifo !== undefined) res = await runTool(tools.mkfifo, ["-m", mode, "--", host]);
    } else if (tools.mknod !== undefined && (process.getuid?.() ?? 1) === 0) {
      const kind = node.type === "char" ? "c" : "b";
      res = await runTool(tools.mknod, ["-m", mode, "--", host, kind, String(node.devmajor), String(node.devminor)]);
    }
    if (res?.ok) return undefined;
    return `${node.type} node not created: ${res === undefined ? "not permitted here (needs root and mknod/mkfifo)" : res.stderr}`;
  }

  /** Creates the overlayfs whiteout `host` (a 0/0 character device). Resolves the failure reason, if any. */
  async whiteout(host: string): Promise<string | undefined> {
    const { mknod } = await this.tools();
    if (mknod === undefined) return "mknod not found";
    const res = await runTool(mknod, ["--", host, "c", "0", "0"]);
    return res.ok ? undefined : res.stderr;
  }
}

/**
 * The xattrs of a tar entry kiln restores ({@link isRestorableXattr}, none on symlinks) as a request
 * for `applyXattrs`, and why it leaves each other one out (one warning line each): values over the Linux
 * limit ({@link XATTR_VALUE_MAX}: the kernel refuses them, and keeping them costs memory). `reserved` names
 * (e.g. `trusted.overlay.` for a layer-store tree) are left out with their own reason.
 */
export function xattrRequest(
  hostPath: string,
  entry: { type: string; xattrs: ReadonlyMap<string, Buffer> },
  reserved?: { prefix: string; reason: string },
): { request?: XattrRequest; skipped: string[] } {
  const attrs = new Map<string, Buffer>();
  const skipped: string[] = [];
  const skip = (name: string, reason: string): number => skipped.push(`xattr ${name} not restored (${reason})`);
  for (const [k, v] of entry.xattrs) {
    if (reserved !== undefined && k.startsWith(reserved.prefix)) skip(k, reserved.reason);
    else if (v.length > XATTR_VALUE_MAX)
      skip(k, `value of ${v.length} bytes, more than the Linux limit of ${XATTR_VALUE_MAX}`);
    else if (isRestorableXattr(k)) attrs.set(k, v);
    else skip(k, "only security.capability, user.*, trusted.*");
  }
  const request = attrs.size > 0 && entry.type !== "symlink" ? { hostPath, attrs } : undefined;
  return { ...(request ? { request } : {}), skipped };
}
