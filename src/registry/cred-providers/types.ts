import type { Credentials } from "../credentials.js";

/** kiln's built-in credential providers, by the names of kaniko's (fork) `--credential-helpers` flag. */
export type BuiltinProviderName = "env" | "google" | "ecr" | "acr" | "gitlab";

/** Every built-in provider, in the order the automatic lookup tries them (the fork's default order). */
export const BUILTIN_PROVIDERS: readonly BuiltinProviderName[] = Object.freeze([
  "env",
  "google",
  "ecr",
  "acr",
  "gitlab",
]);

/** What a provider may use: the environment (never `process.env`) and a deadline. */
export interface ProviderContext {
  env: Record<string, string | undefined>;
  /** Give up on any one HTTP call after this many milliseconds. */
  timeoutMs: number;
}

/**
 * One built-in source of registry credentials (a cloud's token exchange, or environment variables).
 * `matches` tells whether the provider is responsible for a registry host when nothing in
 * config.json names it; `get` answers undefined when the provider has nothing configured and
 * throws a `KilnError` when it is configured but fails.
 */
export interface CredentialProvider {
  readonly name: BuiltinProviderName;
  matches(registry: string, env: Record<string, string | undefined>): boolean;
  get(registry: string, ctx: ProviderContext): Promise<Credentials | undefined>;
}
