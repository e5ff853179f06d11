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
  /**
   * True when, configured as `env` is, the provider would only probe a metadata service that exists in its
   * own cloud alone: the automatic lookup then waits at most 3 s for it and takes a failure for "no
   * identity here" (kaniko's keychains: public images of that registry stay pullable off that cloud).
   */
  guessesIdentity?(env: Record<string, string | undefined>): boolean;
  /**
   * True for a registry of this provider that serves pulls anonymously (ECR Public): no identity, or one
   * the registry refuses, leaves it to anonymous access instead of failing the lookup.
   */
  servesAnonymously?(registry: string): boolean;
}
