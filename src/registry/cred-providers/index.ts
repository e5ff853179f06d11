import { KilnError } from "../../common/errors.js";
import { runCredentialHelper } from "../cred-helper.js";
import { hasCredentials, type Credentials } from "../credentials.js";
import { acrProvider } from "./acr.js";
import { ecrProvider } from "./ecr.js";
import { envProvider } from "./env-provider.js";
import { gitlabProvider } from "./gitlab.js";
import { googleProvider } from "./google.js";
import { findOnPath } from "./path-lookup.js";
import { BUILTIN_PROVIDERS, type BuiltinProviderName, type CredentialProvider } from "./types.js";

export { parseEcrHost } from "./ecr.js";
export { isEcrPublicHost } from "./ecr-public.js";
export { envCredentialPrefixes } from "./env-provider.js";
export { isGoogleRegistry } from "./google.js";
export { isAzureRegistry } from "./acr.js";
export { BUILTIN_PROVIDERS, type BuiltinProviderName, type CredentialProvider } from "./types.js";

/**
 * Set (to anything but "" or "0") in the `:slim` executor image: config.json `credHelpers` /
 * `credsStore` names are then answered only by `docker-credential-<name>` programs on PATH, never
 * by the built-in providers — like kaniko's slim image, which has no helper binaries. The
 * automatic per-host lookup (kaniko's in-process keychains) stays.
 */
export const NO_BUILTIN_HELPERS_ENV = "KILN_NO_BUILTIN_CRED_HELPERS";

const PROVIDERS: Record<BuiltinProviderName, CredentialProvider> = {
  env: envProvider,
  google: googleProvider,
  ecr: ecrProvider,
  acr: acrProvider,
  gitlab: gitlabProvider,
};

/** config.json helper names (kaniko image's helper binaries) answered by a built-in provider. */
const HELPER_NAMES: Readonly<Record<string, BuiltinProviderName>> = Object.freeze({
  "ecr-login": "ecr",
  gcr: "google",
  gcloud: "google",
  "acr-env": "acr",
  acr: "acr",
  gitlabci: "gitlab",
});

const SETUP_HINT: Record<BuiltinProviderName, string> = {
  env: "set KANIKO_<HOST>_USER and KANIKO_<HOST>_PASSWORD",
  google: "set GOOGLE_APPLICATION_CREDENTIALS or run on GCE/GKE with a service account",
  ecr: "provide AWS credentials (env, ~/.aws, IRSA or an instance role)",
  acr: "set AZURE_CLIENT_ID and AZURE_TENANT_ID with AZURE_CLIENT_SECRET or AZURE_FEDERATED_TOKEN_FILE, or run on Azure with a managed identity (IMDS, or App Service IDENTITY_ENDPOINT + IDENTITY_HEADER; AZURE_CLIENT_ID picks a user-assigned one)",
  gitlab: "set CI_REGISTRY, CI_REGISTRY_USER and CI_REGISTRY_PASSWORD",
};

/** The built-in provider answering a config.json helper name, if any. */
export function builtinForHelperName(name: string): BuiltinProviderName | undefined {
  return Object.hasOwn(HELPER_NAMES, name) ? HELPER_NAMES[name] : undefined;
}

/**
 * Validates `--credential-helpers` values (comma-separated lists allowed): which built-ins the
 * automatic lookup uses. Empty list = all; a single empty value (`--credential-helpers=`) = none.
 * Throws a `USAGE` KilnError naming an unknown value.
 */
export function parseCredentialHelpers(values: readonly string[]): BuiltinProviderName[] | undefined {
  if (values.length === 0) return undefined;
  const out: BuiltinProviderName[] = [];
  for (const v of values.flatMap((x) => x.split(","))) {
    const name = v.trim();
    if (name === "") continue;
    if (!(BUILTIN_PROVIDERS as readonly string[]).includes(name)) {
      throw new KilnError(
        "USAGE",
        `unknown --credential-helpers value "${name}": expected one of ${BUILTIN_PROVIDERS.join(", ")} (or an empty value to disable them all)`,
      );
    }
    if (!out.includes(name as BuiltinProviderName)) out.push(name as BuiltinProviderName);
  }
  return out;
}

/** Options of {@link credentialSources}. */
export interface CredentialSourcesOptions {
  /** Built-ins the automatic per-host lookup may use, in this order; undefined = all (default order). */
  enabled?: readonly BuiltinProviderName[];
  /** Per-HTTP-call timeout of the providers in milliseconds (default 15000). */
  timeoutMs?: number;
}

/** The credential sources a keychain consults besides config.json's `auths`. */
export interface CredentialSources {
  /**
   * Answers a config.json `credHelpers`/`credsStore` name: an external `docker-credential-<name>`
   * on PATH wins; else a built-in provider for kaniko's helper names (`ecr-login`, `gcr`, `gcloud`,
   * `acr-env`, `acr`, `gitlabci`) unless the image is `:slim`; else a clear error. Named by
   * `credsStore` (`store`), a built-in answers only its own hosts (like the helper binaries, which
   * answer "credentials not found" for others); named by a `credHelpers` entry, it trusts the entry
   * (a VPC endpoint or proxy name of the cloud registry).
   */
  helper(name: string, registry: string, serverUrl: string, store?: boolean): Promise<Credentials | undefined>;
  /** The automatic per-host lookup (kaniko's keychains after config.json): env, google, ecr, acr, gitlab. */
  auto(registry: string): Promise<Credentials | undefined>;
}

function truthy(v: string | undefined): boolean {
  return v !== undefined && v !== "" && v !== "0" && v.toLowerCase() !== "false";
}

/**
 * The credential sources of one keychain: external helpers and kiln's built-in providers for
 * ECR, GCR/Artifact Registry, ACR, GitLab CI and `KANIKO_<HOST>_*` variables. Results are cached
 * per registry for the keychain's lifetime; secrets never appear in error messages.
 */
export function credentialSources(
  env: Record<string, string | undefined>,
  opts: CredentialSourcesOptions = {},
): CredentialSources {
  const enabled = opts.enabled ?? BUILTIN_PROVIDERS;
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const cache = new Map<string, Promise<Credentials | undefined>>();
  const cached = (key: string, f: () => Promise<Credentials | undefined>): Promise<Credentials | undefined> => {
    let p = cache.get(key);
    if (p === undefined) {
      p = f();
      cache.set(key, p);
      p.catch(() => cache.delete(key));
    }
    return p;
  };

  const explicit = async (
    name: string,
    registry: string,
    serverUrl: string,
    store: boolean,
  ): Promise<Credentials | undefined> => {
    const program = `docker-credential-${name}`;
    if ((await findOnPath(program, env)) !== undefined) return runCredentialHelper(name, serverUrl, env);
    const builtin = builtinForHelperName(name);
    if (builtin === undefined) return runCredentialHelper(name, serverUrl, env);
    if (store && !PROVIDERS[builtin].matches(registry, env)) return undefined;
    if (truthy(env[NO_BUILTIN_HELPERS_ENV])) {
      throw new KilnError(
        "CREDENTIAL_HELPER_FAILED",
        `config.json names credential helper "${name}" for ${registry}, but ${program} is not on PATH and this image (${NO_BUILTIN_HELPERS_ENV}, e.g. the :slim executor) has no built-in helpers; use the full executor image, put ${program} on PATH, or add the registry's credentials to "auths"`,
      );
    }
    // A registry serving pulls anonymously (ECR Public): like ecr-login (which answers "not found", and
    // kaniko then pulls anonymously) it is anonymous without an identity; refused, it fails only when a
    // credHelpers entry names it (a credsStore applies to every host, e.g. public base images).
    const anonymousOk = PROVIDERS[builtin].servesAnonymously?.(registry) === true;
    let creds: Credentials | undefined;
    try {
      creds = await PROVIDERS[builtin].get(registry, { env, timeoutMs });
    } catch (e) {
      if (store && anonymousOk) return undefined;
      throw e;
    }
    if (!hasCredentials(creds)) {
      if (anonymousOk) return undefined;
      throw new KilnError(
        "CREDENTIAL_HELPER_FAILED",
        `config.json names credential helper "${name}" for ${registry}, but the built-in ${builtin} provider found no identity: ${SETUP_HINT[builtin]}`,
      );
    }
    return creds;
  };

  const automatic = async (registry: string): Promise<Credentials | undefined> => {
    for (const name of enabled) {
      const p = PROVIDERS[name];
      if (!p.matches(registry, env)) continue;
      // Off Google Cloud (Azure) the metadata server (IMDS) does not exist: do not wait long for it.
      const guessing = p.guessesIdentity?.(env) === true;
      let creds: Credentials | undefined;
      try {
        creds = await p.get(registry, { env, timeoutMs: guessing ? Math.min(timeoutMs, 3000) : timeoutMs });
      } catch (e) {
        // Like kaniko's google keychain: without explicit Google credentials a failing metadata
        // server means "not on Google Cloud", and public gcr.io/pkg.dev images stay pullable; the
        // same for ACR when only IMDS was tried (an Azure VM without an identity answers 400).
        // Likewise public.ecr.aws (ecr-login's behaviour): an AWS identity that ECR Public refuses
        // (e.g. a role made for private ECR) leaves its public images pullable anonymously.
        if (guessing || p.servesAnonymously?.(registry) === true) continue;
        throw e;
      }
      if (hasCredentials(creds)) return creds;
    }
    return undefined;
  };

  return {
    helper: (name, registry, serverUrl, store = false) =>
      cached(`helper ${name} ${registry} ${store}`, () => explicit(name, registry, serverUrl, store)),
    auto: (registry) => cached(`auto ${registry}`, () => automatic(registry)),
  };
}
