import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { RegistryClient, staticKeychain, type Keychain } from "../../src/registry/index.js";

/**
 * Runs `use` with a RegistryClient (plain HTTP, no retries) against a tiny HTTP server on loopback that
 * answers with `handle` (given its own host:port), for protocol cases a real registry cannot show;
 * `keychain` gets the host once it is known. Closes both afterwards.
 */
export async function withFakeRegistry(
  handle: (req: IncomingMessage, res: ServerResponse, host: string) => void,
  use: (client: RegistryClient, host: string) => Promise<void>,
  keychain: (host: string) => Keychain = () => staticKeychain({}),
): Promise<void> {
  let host = "";
  const server = createServer((req, res) => handle(req, res, host));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const client = new RegistryClient({
    env: {},
    hostOptions: () => ({ insecure: true }),
    keychain: keychain(host),
    retries: 0,
    retryBaseDelayMs: 5,
  });
  try {
    await use(client, host);
  } finally {
    await client.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
