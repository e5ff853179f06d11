import * as path from "node:path";
import type { BuildOptions, Reporter } from "../build/index.js";
import { stateCacheDir } from "../build/options.js";
import { dockerConfigKeychain, type RegistryClientOptions } from "../registry/index.js";
import { transferEvent } from "./transfer-events.js";
import { KILN_VERSION } from "./version.js";

/** Maps kaniko's registry/TLS flags onto the registry client's per-host options. */
export function registryClientOptions(
  opts: Readonly<BuildOptions>,
  env: Record<string, string | undefined>,
  report: Reporter,
): RegistryClientOptions {
  const r = opts.registry;
  // A dry run writes nothing (not even this cache).
  const cacheDir = opts.dryRun ? undefined : stateCacheDir(opts);
  return {
    env,
    hostOptions(registry, purpose) {
      const insecure =
        r.insecureRegistries.includes(registry) || (purpose === "push" ? r.insecurePush : r.insecurePull);
      const skipTlsVerify = r.skipTlsVerify || r.skipTlsVerifyRegistries.includes(registry);
      const ca = r.registryCertificates[registry];
      const client = r.registryClientCerts[registry];
      const [cert, key] = client ? client.split(",") : [];
      return {
        insecure,
        skipTlsVerify,
        caFiles: ca ? [ca] : [],
        ...(cert && key ? { clientCert: { cert, key } } : {}),
      };
    },
    registryMap: r.registryMap,
    skipDefaultFallback: r.skipDefaultRegistryFallback,
    userAgent: `kiln/${KILN_VERSION}`,
    keychain: dockerConfigKeychain(
      r.azureContainerRegistryConfig
        ? { ...env, AZURE_CONTAINER_REGISTRY_CONFIG: r.azureContainerRegistryConfig }
        : env,
      r.credentialHelpers ? { credentialHelpers: r.credentialHelpers } : {},
    ),
    onEvent: (e) => report(transferEvent(e) ?? { kind: "debug", message: `registry: ${JSON.stringify(e)}` }),
    ...(cacheDir !== undefined ? { metadataCacheDir: path.join(cacheDir, "image-metadata") } : {}),
  };
}
