import type { Credentials } from "../credentials.js";
import type { CredentialProvider } from "./types.js";

/**
 * Names of the variables the `env` provider reads for a registry host, most specific first:
 * `registry.gitlab.com` → `KANIKO_REGISTRY_GITLAB_COM_*`, `KANIKO_GITLAB_COM_*`, `KANIKO_COM_*`
 * (upper case, `-` → `_`, like the kaniko fork's env helper).
 */
export function envCredentialPrefixes(registry: string): string[] {
  const labels = registry.toUpperCase().replaceAll("-", "_").split(".");
  return labels.map((_, i) => `KANIKO_${labels.slice(i).join("_")}`);
}

function lookup(registry: string, env: Record<string, string | undefined>): Credentials | undefined {
  for (const prefix of envCredentialPrefixes(registry)) {
    const user = env[`${prefix}_USER`];
    const password = env[`${prefix}_PASSWORD`];
    if (user !== undefined && password !== undefined) return { username: user, password };
  }
  return undefined;
}

/** Credentials from `KANIKO_<HOST>_USER` / `KANIKO_<HOST>_PASSWORD` (the kaniko fork's `env` helper). */
export const envProvider: CredentialProvider = {
  name: "env",
  matches: (registry, env) => lookup(registry, env) !== undefined,
  get: (registry, ctx) => Promise.resolve(lookup(registry, ctx.env)),
};
