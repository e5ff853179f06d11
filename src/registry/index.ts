/** Public API of the registry client (distribution protocol: references, auth, pull, push). */
export { RegistryClient, type RegistryClientOptions } from "./client.js";
export type { DeferredCancellation } from "./push.js";
export { HEAD_CONCURRENCY, UPLOAD_CONCURRENCY } from "./push.js";
export { hasCredentials, type Credentials, type Keychain } from "./credentials.js";
export type { RegistryHostOptions } from "./dispatcher.js";
export { RegistryError } from "./errors.js";
export type { RegistryEvent } from "./events.js";
export {
  anonymousKeychain,
  dockerConfigKeychain,
  dockerConfigPath,
  staticKeychain,
  type DockerConfigKeychainOptions,
} from "./keychain.js";
export { NO_BUILTIN_HELPERS_ENV, parseCredentialHelpers, type BuiltinProviderName } from "./cred-providers/index.js";
export { MAX_MANIFEST_BYTES } from "./manifest.js";
export { formatPlatform, parsePlatform, selectPlatform } from "./platform.js";
export type { FetchedManifest, ManifestOnly } from "./pull.js";
export { DOCKER_HUB_REGISTRY, makeReference, parseReference, type Reference } from "./reference.js";
