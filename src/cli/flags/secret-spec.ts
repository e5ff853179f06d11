import { UsageError } from "./usage-error.js";

/** A `--secret` for `RUN --mount=type=secret`: read from a file or from an environment variable. */
export type SecretSpec = { id: string; type: "file"; src: string } | { id: string; type: "env"; env: string };

/**
 * Parses one `--secret` value (`id=x,src=path`, `id=x,env=VAR`, optionally `type=file|env`;
 * `source` is accepted for `src`; `type=env` without `env` reads the variable named like the id).
 */
export function parseSecretSpec(raw: string): SecretSpec {
  const fields = new Map<string, string>();
  for (const part of raw.split(",")) {
    const i = part.indexOf("=");
    if (i <= 0)
      throw new UsageError(
        `invalid --secret ${JSON.stringify(raw)}: expected key=value pairs, got ${JSON.stringify(part)}`,
      );
    let key = part.slice(0, i).trim().toLowerCase();
    if (key === "source") key = "src";
    if (!["id", "type", "src", "env"].includes(key)) {
      throw new UsageError(
        `invalid --secret ${JSON.stringify(raw)}: unknown key ${JSON.stringify(key)} (use id, type, src, env)`,
      );
    }
    fields.set(key, part.slice(i + 1));
  }
  const id = fields.get("id");
  if (!id) throw new UsageError(`invalid --secret ${JSON.stringify(raw)}: id=<name> is required`);
  const src = fields.get("src");
  const env = fields.get("env");
  const type = fields.get("type") ?? (env !== undefined && src === undefined ? "env" : "file");
  if (src !== undefined && env !== undefined) {
    throw new UsageError(`invalid --secret ${JSON.stringify(raw)}: give either src= or env=, not both`);
  }
  if (type === "env") {
    if (src !== undefined)
      throw new UsageError(`invalid --secret ${JSON.stringify(raw)}: type=env takes env=, not src=`);
    return { id, type: "env", env: env || id };
  }
  if (type !== "file") throw new UsageError(`invalid --secret ${JSON.stringify(raw)}: type must be file or env`);
  if (env !== undefined)
    throw new UsageError(`invalid --secret ${JSON.stringify(raw)}: type=file takes src=, not env=`);
  if (!src) throw new UsageError(`invalid --secret ${JSON.stringify(raw)}: src=<path> or env=<VAR> is required`);
  return { id, type: "file", src };
}
