import { constants } from "node:fs";
import { access, stat } from "node:fs/promises";
import * as path from "node:path";

/** The first executable regular file named `program` in `$PATH` (from `env`), or undefined. */
export async function findOnPath(
  program: string,
  env: Record<string, string | undefined>,
): Promise<string | undefined> {
  for (const dir of (env.PATH ?? "").split(":")) {
    if (dir === "") continue;
    const candidate = path.join(dir, program);
    try {
      await access(candidate, constants.X_OK);
      if ((await stat(candidate)).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}
