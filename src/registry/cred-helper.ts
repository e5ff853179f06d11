import { spawn } from "node:child_process";
import { KilnError } from "../common/errors.js";
import type { Credentials } from "./credentials.js";

const NOT_FOUND = "credentials not found in native keychain";

/**
 * Runs `docker-credential-<suffix> get` (docker-credential-helpers protocol): writes the server URL
 * to stdin, reads `{"ServerURL","Username","Secret"}` from stdout. "credentials not found" yields
 * undefined (anonymous); username `<token>` means the secret is an identity (refresh) token.
 */
export function runCredentialHelper(
  suffix: string,
  serverUrl: string,
  env: Record<string, string | undefined>,
): Promise<Credentials | undefined> {
  const program = `docker-credential-${suffix}`;
  const childEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) childEnv[k] = v;
  return new Promise((resolve, reject) => {
    const child = spawn(program, ["get"], { env: childEnv, stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    child.on("error", (e) =>
      reject(
        new KilnError(
          "CREDENTIAL_HELPER_FAILED",
          `cannot run credential helper ${program} for ${serverUrl}: ${e.message}; install it on PATH or remove it from config.json`,
          { cause: e },
        ),
      ),
    );
    child.stdin.on("error", () => undefined);
    child.stdin.end(serverUrl);
    child.on("close", (code) => {
      const stdout = Buffer.concat(out).toString("utf8").trim();
      if (code !== 0) {
        if (stdout === NOT_FOUND || Buffer.concat(err).toString("utf8").trim() === NOT_FOUND) {
          resolve(undefined);
          return;
        }
        reject(
          new KilnError(
            "CREDENTIAL_HELPER_FAILED",
            `credential helper ${program} failed for ${serverUrl} (exit ${code ?? "signal"}): ${stdout.slice(0, 200)}`,
          ),
        );
        return;
      }
      try {
        const parsed = JSON.parse(stdout) as { Username?: unknown; Secret?: unknown };
        const username = typeof parsed.Username === "string" ? parsed.Username : "";
        const secret = typeof parsed.Secret === "string" ? parsed.Secret : "";
        if (username === "<token>") resolve({ identityToken: secret });
        else if (username === "" && secret === "") resolve(undefined);
        else resolve({ username, password: secret });
      } catch (e) {
        reject(
          new KilnError(
            "CREDENTIAL_HELPER_FAILED",
            `credential helper ${program} answered invalid JSON for ${serverUrl}`,
            {
              cause: e,
            },
          ),
        );
      }
    });
  });
}
