import * as path from "node:path";
import { readFileSync } from "node:fs";

/** Absolute path of a file in the external conformance corpus (resolved from the repo root). */
export function conformancePath(...parts: string[]): string {
  return path.resolve(process.cwd(), "../shared/conformance", ...parts);
}

/** Reads a conformance file as UTF-8 text. */
export function readConformance(...parts: string[]): string {
  return readFileSync(conformancePath(...parts), "utf8");
}

/** Reads and parses a conformance JSON file. */
export function readConformanceJson<T>(...parts: string[]): T {
  return JSON.parse(readConformance(...parts)) as T;
}
