import { PassThrough } from "node:stream";
import { writeChangesTar, type Changes } from "../../src/fs/index.js";

/** The layer tar kiln writes for `changes` under `root`, as bytes (for comparing two snapshots). */
export async function tarBytes(root: string, changes: Changes): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const out = new PassThrough();
  out.on("data", (c: Buffer) => chunks.push(c));
  await writeChangesTar(root, changes, out);
  return Buffer.concat(chunks);
}
