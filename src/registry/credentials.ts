/** Credentials for one registry, as found in a docker config, a helper or the environment. */
export interface Credentials {
  username?: string;
  password?: string;
  /** OAuth2 refresh token (`identitytoken`, or a helper answering username `<token>`). */
  identityToken?: string;
  /** A bearer token used as-is (`registrytoken`), no token exchange. */
  registryToken?: string;
}

/** Finds credentials for a registry (optionally a repository of it); undefined means anonymous. */
export interface Keychain {
  resolve(registry: string, repository?: string): Promise<Credentials | undefined>;
}

/** True when the credentials carry anything usable. */
export function hasCredentials(c: Credentials | undefined): c is Credentials {
  return (
    c !== undefined &&
    ((c.username !== undefined && c.username !== "") ||
      (c.identityToken !== undefined && c.identityToken !== "") ||
      (c.registryToken !== undefined && c.registryToken !== ""))
  );
}
