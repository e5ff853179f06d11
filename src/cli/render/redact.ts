/**
 * Builds a function that replaces every occurrence of any secret with `***`. Empty secrets are
 * ignored; longer secrets are matched first; for a multi-line secret (a key file) each of its
 * lines of 8+ characters is also redacted on its own, since lines may be logged separately.
 */
export function redactor(secrets: readonly string[]): (s: string) => string {
  const needles = new Set<string>();
  for (const s of secrets) {
    if (s === "") continue;
    needles.add(s);
    if (/[\r\n]/.test(s)) {
      for (const line of s.split(/\r?\n/)) if (line.trim().length >= 8) needles.add(line);
    }
  }
  if (needles.size === 0) return (s) => s;
  const alternation = [...needles]
    .sort((a, b) => b.length - a.length)
    .map((n) => n.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
    .join("|");
  const re = new RegExp(alternation, "g");
  return (s) => s.replace(re, "***");
}

/** Values that must never be printed: registry passwords and tokens passed through the environment. */
export function envSecrets(env: Record<string, string | undefined>): string[] {
  const keys = [
    "CI_REGISTRY_PASSWORD",
    "GIT_PASSWORD",
    "GIT_TOKEN",
    "AWS_SECRET_ACCESS_KEY",
    "AZURE_STORAGE_ACCESS_KEY",
    "AZURE_CLIENT_SECRET",
  ];
  return keys.map((k) => env[k]).filter((v): v is string => typeof v === "string" && v.length >= 4);
}
