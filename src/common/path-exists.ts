import { lstat } from "node:fs/promises";

/** True when `p` exists (a dangling symlink counts: `lstat`, not `stat`). */
export async function pathExists(p: string): Promise<boolean> {
  try {
    await lstat(p);
    return true;
  } catch {
    return false;
  }
}
