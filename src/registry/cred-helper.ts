import { spawn } from "node:child_process";
import { KilnError } from "../common/errors.js";
import type { Credentials } from "./credentials.js";

const NOT_FOUND = "credentials not found in native keychain";
/** Real helpers answer in well under a second (a cloud CLI's in a few): a hung one must not hang the build. */
const HELPER_TIMEOUT_MS = 60_000;
/** An answer is a few hundred bytes; more is refused rather than buffered. */
const MAX_HELPER_OUTPUT = 1024 * 1024;

/**
 * Runs `docker-credential-<suffix> get` (docker-credential-helpers protocol): writes the server URL
 * to stdin, reads `{"ServerURL","Username","Secret"}` from stdout. "credentials not found" yields
 * undefined (anonymous); username `<token>` means the secret is an identity (refresh) token.
 */
export function runCredentialHelper(
  suffix: string,
  serverUrl: string,
  env: Record<string, string | undefined>,
  timeoutMs = HELPER_TIMEOUT_MS,
): Promise<Credentials | undefined> {
  const program = `docker-credential-${suffix}`;
  const childEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) childEnv[k] = v;
  return new Promise((resolve, reject) => {
    const child = spawn(program, ["get"], { env: childEnv, stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let size = 0;
    let stopped: string | undefined;
    const stop = (why: string): void => {
      stopped ??= why;
      child.kill("SIGKILL");
    };
    const timer = setTimeout(() => stop(`did not answer within ${timeoutMs / 1000} s`), timeoutMs);
    const collect = (into: Buffer[]) => (b: Buffer) => {
      size += b.length;
      if (size > MAX_HELPER_OUTPUT) stop(`wrote more than ${MAX_HELPER_OUTPUT} bytes`);
      else into.push(b);
    };
    child.stdout.on("data", collect(out));
    child.stderr.on("data", collect(err));
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
      clearTimeout(timer);
      if (stopped !== undefined) {
        reject(new KilnError("CREDENTIAL_HELPER_FAILED", `credential helper ${program} for ${serverUrl} ${stopped}`));
        return;
      }
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
      } catch {
        // No cause: JSON.parse's message quotes the text around the mistake, which may be the secret.
        reject(
          new KilnError(
            "CREDENTIAL_HELPER_FAILED",
            `credential helper ${program} answered invalid JSON for ${serverUrl}`,
          ),
        );
      }
    });
  });
}
