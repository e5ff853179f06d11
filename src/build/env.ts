/** Helpers over Docker-style `KEY=VALUE` environment lists. Pure. */

/** Default PATH Docker and BuildKit give a Linux container when the image sets none. */
export const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** Splits `KEY=VALUE` (a missing `=` means an empty value). */
export function splitEnv(entry: string): [string, string] {
  const i = entry.indexOf("=");
  return i < 0 ? [entry, ""] : [entry.slice(0, i), entry.slice(i + 1)];
}

/** Returns a new list with `key` set to `value`, replacing an existing entry in place. */
export function setEnv(env: readonly string[], key: string, value: string): string[] {
  const out = [...env];
  const i = out.findIndex((e) => splitEnv(e)[0] === key);
  if (i >= 0) out[i] = `${key}=${value}`;
  else out.push(`${key}=${value}`);
  return out;
}

/** Value of `key` in an env list. */
export function getEnv(env: readonly string[], key: string): string | undefined {
  for (const e of env) {
    const [k, v] = splitEnv(e);
    if (k === key) return v;
  }
  return undefined;
}

/** The env list as a Map (later entries win). */
export function envMap(env: readonly string[]): Map<string, string> {
  return new Map(env.map(splitEnv));
}
