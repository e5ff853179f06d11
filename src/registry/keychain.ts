import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import * as path from "node:path";
import { KilnError } from "../common/errors.js";
import { credentialSources, type BuiltinProviderName } from "./cred-providers/index.js";
import { hasCredentials, type Credentials, type Keychain } from "./credentials.js";

/** One `auths` entry of a docker config.json. */
interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
  registrytoken?: string;
}

/** The parts of a docker config.json kiln reads. */
interface DockerConfig {
  auths: Record<string, AuthEntry>;
  credHelpers: Record<string, string>;
  credsStore?: string;
}

const DOCKER_HUB_KEY = "https://index.docker.io/v1/";
const DOCKER_HUB_HOSTS = new Set(["index.docker.io", "docker.io", "registry-1.docker.io"]);

/** `https://host:port/v2/` → `host:port` (docker/cli ConvertToHostname). */
export function keyHostname(key: string): string {
  const stripped = key.replace(/^https?:\/\//, "");
  const slash = stripped.indexOf("/");
  return slash >= 0 ? stripped.slice(0, slash) : stripped;
}

/** Which config file the keychain reads, or undefined when none exists (go-containerregistry order). */
export function dockerConfigPath(env: Record<string, string | undefined>): string | undefined {
  const candidates: string[] = [];
  if (env.DOCKER_CONFIG) candidates.push(path.join(env.DOCKER_CONFIG, "config.json"));
  if (env.HOME) candidates.push(path.join(env.HOME, ".docker", "config.json"));
  if (env.REGISTRY_AUTH_FILE) candidates.push(env.REGISTRY_AUTH_FILE);
  if (env.XDG_RUNTIME_DIR) candidates.push(path.join(env.XDG_RUNTIME_DIR, "containers", "auth.json"));
  return candidates.find((c) => existsSync(c));
}

function asRecord(v: unknown): Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

function str(v: unknown): string | undefined {
  return typeof v === "string" && v !== "" ? v : undefined;
}

/**
 * Where JSON.parse stopped, as "line L, column C" when its message gives a position. Its message itself is
 * never shown: Node quotes the text around the mistake, which in a docker config is credentials.
 */
function syntaxErrorAt(text: string, e: unknown): string {
  const m = /position (\d+)/.exec(e instanceof Error ? e.message : "");
  if (!m) return "";
  const before = text.slice(0, Number(m[1]));
  const line = before.split("\n").length;
  return ` at line ${line}, column ${before.length - before.lastIndexOf("\n")}`;
}

async function loadConfig(file: string): Promise<DockerConfig> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    throw new KilnError("INVALID_DOCKER_CONFIG", `cannot read docker config ${file}: ${(e as Error).message}`, {
      cause: e,
    });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new KilnError("INVALID_DOCKER_CONFIG", `docker config ${file} is not valid JSON${syntaxErrorAt(text, e)}`);
  }
  const root = asRecord(parsed);
  const auths: Record<string, AuthEntry> = {};
  for (const [k, v] of Object.entries(asRecord(root.auths))) {
    const e = asRecord(v);
    auths[k] = {
      ...(str(e.auth) ? { auth: str(e.auth) } : {}),
      ...(str(e.username) ? { username: str(e.username) } : {}),
      ...(str(e.password) ? { password: str(e.password) } : {}),
      ...(str(e.identitytoken) ? { identitytoken: str(e.identitytoken) } : {}),
      ...(str(e.registrytoken) ? { registrytoken: str(e.registrytoken) } : {}),
    };
  }
  const credHelpers: Record<string, string> = {};
  for (const [k, v] of Object.entries(asRecord(root.credHelpers))) if (str(v)) credHelpers[k] = v as string;
  const credsStore = str(root.credsStore);
  return { auths, credHelpers, ...(credsStore ? { credsStore } : {}) };
}

function decodeEntry(entry: AuthEntry, key: string, file: string): Credentials | undefined {
  const c: Credentials = {};
  if (entry.username) c.username = entry.username;
  if (entry.password) c.password = entry.password;
  if (entry.auth) {
    const decoded = Buffer.from(entry.auth, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    const user = colon >= 0 ? decoded.slice(0, colon) : decoded;
    if (colon < 0 || user === "") {
      throw new KilnError(
        "INVALID_DOCKER_CONFIG",
        `invalid "auth" for ${key} in ${file}: expected base64 of "username:password"`,
      );
    }
    c.username = user;
    c.password = decoded.slice(colon + 1).replace(/\0+$/, "");
  }
  if (entry.identitytoken) c.identityToken = entry.identitytoken;
  if (entry.registrytoken) c.registryToken = entry.registrytoken;
  return hasCredentials(c) ? c : undefined;
}

/** Config keys that may name `registry`, most specific first. */
function matchingKeys(keys: string[], registry: string, repository: string | undefined): string[] {
  const out: string[] = [];
  const hub = DOCKER_HUB_HOSTS.has(registry);
  if (repository !== undefined) {
    const full = `${registry}/${repository}`;
    if (keys.includes(full)) out.push(full);
  }
  if (hub && keys.includes(DOCKER_HUB_KEY)) out.push(DOCKER_HUB_KEY);
  if (keys.includes(registry)) out.push(registry);
  for (const k of keys) {
    if (out.includes(k)) continue;
    const host = keyHostname(k);
    if (host === registry || (hub && DOCKER_HUB_HOSTS.has(host))) out.push(k);
  }
  return out;
}

/** The helper for `registry`: its `credHelpers` entry, else `credsStore` (`store: true`). */
function helperFor(cfg: DockerConfig, registry: string): { name: string; store: boolean } | undefined {
  const hub = DOCKER_HUB_HOSTS.has(registry);
  for (const [k, v] of Object.entries(cfg.credHelpers)) {
    const host = keyHostname(k);
    if (host === registry || (hub && DOCKER_HUB_HOSTS.has(host))) return { name: v, store: false };
  }
  return cfg.credsStore !== undefined ? { name: cfg.credsStore, store: true } : undefined;
}

/** Options of {@link dockerConfigKeychain}. */
export interface DockerConfigKeychainOptions {
  /** `--credential-helpers`: built-ins the automatic per-host lookup uses; undefined = all. */
  credentialHelpers?: readonly BuiltinProviderName[];
}

/**
 * The default keychain: docker config.json (`auths`, `credHelpers`, `credsStore`), found via
 * `$DOCKER_CONFIG`, `$HOME/.docker`, `$REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers/auth.json`,
 * then kiln's built-in providers by host (`KANIKO_<HOST>_*` variables, GCR/Artifact Registry, ECR,
 * ACR, GitLab CI's `CI_REGISTRY*`). A helper named in config.json runs as `docker-credential-<name>`
 * when on PATH, else kaniko's helper names (`ecr-login`, `gcr`, `gcloud`, `acr-env`) are answered
 * by the built-ins. Docker Hub accepts `https://index.docker.io/v1/` and also `docker.io`,
 * `index.docker.io`, `registry-1.docker.io` keys. The file is read on first use.
 */
export function dockerConfigKeychain(
  env: Record<string, string | undefined>,
  opts: DockerConfigKeychainOptions = {},
): Keychain {
  const file = dockerConfigPath(env);
  const sources = credentialSources(env, opts.credentialHelpers ? { enabled: opts.credentialHelpers } : {});
  const configPromise: Promise<DockerConfig> | undefined = file !== undefined ? loadConfig(file) : undefined;
  // Avoid an unhandled rejection when resolve() is never called.
  configPromise?.catch(() => undefined);
  return {
    async resolve(registry: string, repository?: string): Promise<Credentials | undefined> {
      if (configPromise !== undefined && file !== undefined) {
        const cfg = await configPromise;
        const helper = helperFor(cfg, registry);
        if (helper !== undefined) {
          const serverUrl = DOCKER_HUB_HOSTS.has(registry) ? DOCKER_HUB_KEY : registry;
          const fromHelper = await sources.helper(helper.name, registry, serverUrl, helper.store);
          if (hasCredentials(fromHelper)) return fromHelper;
        }
        for (const key of matchingKeys(Object.keys(cfg.auths), registry, repository)) {
          const entry = cfg.auths[key];
          const c = entry !== undefined ? decodeEntry(entry, key, file) : undefined;
          if (c !== undefined) return c;
        }
      }
      return sources.auto(registry);
    },
  };
}

/** A keychain that always answers anonymous. */
export const anonymousKeychain: Keychain = Object.freeze({
  resolve: () => Promise.resolve(undefined),
});

/** A keychain answering fixed credentials for the given registries (tests, library callers). */
export function staticKeychain(map: Record<string, Credentials>): Keychain {
  const copy = { ...map };
  return { resolve: (registry: string) => Promise.resolve(copy[registry]) };
}
