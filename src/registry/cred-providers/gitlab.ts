import type { Credentials } from "../credentials.js";
import type { CredentialProvider } from "./types.js";

function hostOf(url: string): string {
  const stripped = url.replace(/^https?:\/\//, "");
  const slash = stripped.indexOf("/");
  return slash >= 0 ? stripped.slice(0, slash) : stripped;
}

function lookup(registry: string, env: Record<string, string | undefined>): Credentials | undefined {
  const ci = env.CI_REGISTRY;
  if (!ci || hostOf(ci) !== registry || !env.CI_REGISTRY_USER || !env.CI_REGISTRY_PASSWORD) return undefined;
  return { username: env.CI_REGISTRY_USER, password: env.CI_REGISTRY_PASSWORD };
}

/** GitLab CI's job credentials (`CI_REGISTRY`, `CI_REGISTRY_USER`, `CI_REGISTRY_PASSWORD`) for `$CI_REGISTRY`. */
export const gitlabProvider: CredentialProvider = {
  name: "gitlab",
  matches: (registry, env) => lookup(registry, env) !== undefined,
  get: (registry, ctx) => Promise.resolve(lookup(registry, ctx.env)),
};
