import { KilnError } from "../common/errors.js";
import type { DerivedSecret } from "./secret-key-guard.js";

/** Values of the build args marked secret (`--secret-build-arg`), by name; empty values are left out. */
export function secretBuildArgValues(
  buildArgs: Readonly<Record<string, string | undefined>>,
  secretNames: readonly string[] | undefined,
): Map<string, string> {
  const out = new Map<string, string>();
  for (const name of secretNames ?? []) {
    const v = buildArgs[name];
    if (v !== undefined && v !== "") out.set(name, v);
  }
  return out;
}

/** Depth-first search for the first string (or object key) `holds`; returns its JSON path (`config.Env[1]`). */
function findString(v: unknown, holds: (s: string) => boolean, where: string): string | undefined {
  if (typeof v === "string") return holds(v) ? where : undefined;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const hit = findString(v[i], holds, `${where}[${i}]`);
      if (hit !== undefined) return hit;
    }
    return undefined;
  }
  if (v !== null && typeof v === "object") {
    for (const [k, x] of Object.entries(v)) {
      if (holds(k)) return `${where}.<key>`;
      const hit = findString(x, holds, where === "" ? k : `${where}.${k}`);
      if (hit !== undefined) return hit;
    }
  }
  return undefined;
}

/**
 * Fails the build when the image config (runtime config, labels, history) would carry the value of a
 * build arg marked secret, e.g. through `ENV TOKEN=$TOKEN` or `LABEL x=$TOKEN`, or the value of a name set
 * from one (`derived`: `ENV T2=${TOKEN#ghp_}` stores part of the secret). kiln itself never stores build
 * arg values; this stops a Dockerfile from doing it by accident. The error names the arg and the config
 * field, never the value.
 */
export function assertNoSecretBuildArgs(
  imageConfig: unknown,
  buildArgs: Readonly<Record<string, string | undefined>>,
  secretNames: readonly string[] | undefined,
  derived: readonly DerivedSecret[] = [],
): void {
  // A secret's whole value first, then a derived value (part of a secret, named as such: `ARG T2=${TOKEN#ghp_}`,
  // or the expansion of a word that refers to the secret, `LABEL x=${TOKEN#ghp_}`).
  const secrets = [...secretBuildArgValues(buildArgs, secretNames)];
  const checks: [string, string, (s: string) => boolean][] = [
    ...secrets.map(([n, v]): [string, string, (s: string) => boolean] => [n, n, (s) => s.includes(v)]),
    ...derived
      .filter((d) => d.value !== "" && d.name !== d.from)
      .map((d): [string, string, (s: string) => boolean] => [
        d.from,
        d.name === "" ? `${d.from} (a part of it)` : `${d.name} (set from ${d.from})`,
        (s) => s.includes(d.value),
      ]),
  ];
  for (const [name, what, holds] of checks) {
    const field = findString(imageConfig, holds, "");
    if (field === undefined) continue;
    throw new KilnError(
      "SECRET_BUILD_ARG_STORED",
      `the value of the secret build arg ${what} would be stored in the image config (${field}), ` +
        `e.g. by an ENV, LABEL, USER or WORKDIR that expands $${name}; secret build args are for RUN steps only: ` +
        `read $${name} in a RUN, or use --secret with RUN --mount=type=secret`,
    );
  }
}
