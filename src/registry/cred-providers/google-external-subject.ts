import { readFile } from "node:fs/promises";
import { executableSubjectToken } from "./google-external-executable.js";
import { type SubjectTokenFormat, type SubjectTokenSource } from "./google-external-config.js";
import { googleFail } from "./google-errors.js";
import { requestText, safeUrl } from "./http.js";
import type { ProviderContext } from "./types.js";

/** The token in `text` (a file's content or an HTTP answer) per `format`; `where` names it in errors. */
export function extractSubjectToken(text: string, format: SubjectTokenFormat, where: string): string {
  let token: unknown;
  if (format.type === "text") {
    token = text.trim();
  } else {
    let j: unknown;
    try {
      j = JSON.parse(text);
    } catch {
      throw googleFail(`the subject token in ${where} is not JSON (credential_source.format.type is "json")`);
    }
    token =
      typeof j === "object" && j !== null && !Array.isArray(j)
        ? (j as Record<string, unknown>)[format.field]
        : undefined;
    if (typeof token === "string") token = token.trim();
  }
  if (typeof token !== "string" || token === "") {
    const what = format.type === "json" ? `has no string field "${format.field}"` : "is empty";
    throw googleFail(`the subject token in ${where} ${what}`);
  }
  return token;
}

/** Where a subject token comes from, for messages (a file path or a URL without its query). */
export function describeSource(source: SubjectTokenSource): string {
  if (source.kind === "file") return `the file ${source.file}`;
  if (source.kind === "executable") return `the command ${source.argv[0] ?? ""}`;
  if (source.kind === "aws") return "a signed AWS GetCallerIdentity request";
  return safeUrl(source.url);
}

/**
 * Reads the external identity's subject token (AIP-4117 file-, URL- and executable-sourced
 * credentials): the file's content, or the answer of a GET to the URL with the configured headers,
 * as text or as a JSON field; the response of the executable; or a signed AWS request. Errors name the file or the URL's host and the status, never the token.
 */
export async function readSubjectToken(source: SubjectTokenSource, ctx: ProviderContext): Promise<string> {
  if (source.kind === "executable") return executableSubjectToken(source, ctx);
  if (source.kind === "aws") {
    // Loaded only for AWS sources: it brings the SigV4 signer, which file, URL and executable sources need not load.
    const { awsSubjectToken } = await import("./google-external-aws.js");
    return awsSubjectToken(source, ctx);
  }
  if (source.kind === "file") {
    let text: string;
    try {
      text = await readFile(source.file, "utf8");
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
      throw googleFail(
        `cannot read the subject token file ${source.file} (credential_source.file): ${code}; the CI job must write its OIDC token there before kiln runs`,
        e,
      );
    }
    return extractSubjectToken(text, source.format, `the file ${source.file}`);
  }
  const text = await requestText({
    url: source.url,
    method: "GET",
    headers: source.headers,
    provider: "Google (subject token URL)",
    timeoutMs: ctx.timeoutMs,
  });
  return extractSubjectToken(text, source.format, `the answer of ${safeUrl(source.url)}`);
}
