import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { type ExecutableSource } from "./google-external-config.js";
import { googleFail } from "./google-errors.js";
import { parseJsonObject } from "./http.js";
import type { ProviderContext } from "./types.js";

/** The variable that must be "1" before kiln runs a command named by a credentials file. */
const ALLOW_EXECUTABLES_ENV = "GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES";

const TOKEN_TYPES: Readonly<Record<string, "id_token" | "saml_response">> = {
  "urn:ietf:params:oauth:token-type:jwt": "id_token",
  "urn:ietf:params:oauth:token-type:id_token": "id_token",
  "urn:ietf:params:oauth:token-type:saml2": "saml_response",
};

/** A successful executable response's token, `expired` when its `expiration_time` has passed. */
type ExecutableResult = { token: string; expired: boolean };

/**
 * Reads an executable's JSON response (version 1): `{success: true, token_type, id_token |
 * saml_response, expiration_time}` or `{success: false, code, message}`. `where` names the output
 * in errors; the executable's own `code` and `message` are shown, a token never.
 */
export function parseExecutableResponse(
  text: string,
  where: string,
  opts: { requireExpiry: boolean; nowSeconds?: number },
): ExecutableResult {
  const j = parseJsonObject(text);
  if (!j)
    throw googleFail(`${where} is not a JSON object (see AIP-4117 executable-sourced credentials for its format)`);
  if (j.version === undefined) throw googleFail(`${where} has no "version"`);
  if (typeof j.version !== "number" || j.version < 1 || j.version > 1) {
    throw googleFail(`${where} has version ${JSON.stringify(j.version)}; kiln understands version 1`);
  }
  if (j.success === false) {
    const code = typeof j.code === "string" ? j.code : "?";
    const message = typeof j.message === "string" ? j.message.slice(0, 300) : "";
    throw googleFail(`${where} reports failure (code ${code}): ${message}`);
  }
  if (j.success !== true) throw googleFail(`${where} has no boolean "success"`);
  const type = typeof j.token_type === "string" ? TOKEN_TYPES[j.token_type] : undefined;
  if (type === undefined) {
    throw googleFail(
      `${where} has token_type ${JSON.stringify(j.token_type)}; expected urn:ietf:params:oauth:token-type:jwt, id_token or saml2`,
    );
  }
  const token = j[type];
  if (typeof token !== "string" || token === "") throw googleFail(`${where} has no "${type}"`);
  const exp = j.expiration_time;
  if (exp === undefined && opts.requireExpiry) {
    throw googleFail(`${where} has no "expiration_time" (required when "output_file" is set)`);
  }
  if (exp !== undefined && typeof exp !== "number") throw googleFail(`${where}: "expiration_time" must be a number`);
  const now = opts.nowSeconds ?? Date.now() / 1000;
  return { token, expired: exp !== undefined && exp <= now };
}

function run(src: ExecutableSource, ctx: ProviderContext): Promise<string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(ctx.env)) if (v !== undefined) env[k] = v;
  Object.assign(env, src.env);
  const [program = "", ...args] = src.argv;
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { env, stdio: ["ignore", "pipe", "ignore"] });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, src.timeoutMs);
    const out: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(googleFail(`cannot run the credential executable ${program}: ${e.message}`, e));
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (timedOut) {
        reject(
          googleFail(`the credential executable ${program} did not finish within ${src.timeoutMs} ms (timeout_millis)`),
        );
      } else if (code !== 0) {
        reject(
          googleFail(
            `the credential executable ${program} exited with ${code !== null ? `code ${code}` : `signal ${signal ?? "?"}`}`,
          ),
        );
      } else resolve(Buffer.concat(out).toString("utf8"));
    });
  });
}

/**
 * The subject token of an executable source: a still-valid response cached in `output_file`, or
 * else the response the command prints. Needs `GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1`, like
 * Google's auth libraries; the command runs without a shell, with kiln's environment plus the
 * `GOOGLE_EXTERNAL_ACCOUNT_*` variables, stdin closed, within `timeout_millis`.
 */
export async function executableSubjectToken(src: ExecutableSource, ctx: ProviderContext): Promise<string> {
  if (ctx.env[ALLOW_EXECUTABLES_ENV] !== "1") {
    throw googleFail(
      `the credentials file runs the command ${src.argv[0] ?? ""} for its subject token; set ${ALLOW_EXECUTABLES_ENV}=1 to allow that`,
    );
  }
  const requireExpiry = src.outputFile !== undefined;
  if (src.outputFile !== undefined) {
    const cached = await readFile(src.outputFile, "utf8").catch(() => "");
    if (cached.trim() !== "") {
      try {
        const r = parseExecutableResponse(cached, `the output file ${src.outputFile}`, { requireExpiry });
        if (!r.expired) return r.token;
      } catch {
        // An unusable cache: run the executable, which rewrites it.
      }
    }
  }
  const program = src.argv[0] ?? "";
  const r = parseExecutableResponse(await run(src, ctx), `the output of ${program}`, { requireExpiry });
  if (r.expired) throw googleFail(`the output of ${program} holds an expired token (expiration_time has passed)`);
  return r.token;
}
