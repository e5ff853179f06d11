import type { FlagSpec } from "./types.js";
import { EXECUTOR_FLAGS, EXECUTOR_GROUPS } from "./executor-flags.js";
import { WARMER_FLAGS, WARMER_GROUPS } from "./warmer-flags.js";
import { formatDefault } from "./format-default.js";

/** Commands that have help text. */
export type HelpTopic = "kiln" | "build" | "executor" | "warmer" | "warm";

function valuePlaceholder(spec: FlagSpec): string {
  if (spec.type === "bool") return "";
  if (spec.type === "enum") {
    const values = (spec.enumValues ?? []).join("|");
    return values.length <= 20 || spec.valueName === undefined ? values : spec.valueName;
  }
  return spec.valueName ?? spec.type;
}

function flagColumn(spec: FlagSpec): string {
  const names = `${spec.short !== undefined ? `-${spec.short}, ` : "    "}--${spec.name}`;
  const ph = valuePlaceholder(spec);
  return ph === "" ? names : `${names} ${ph}`;
}

function describe(spec: FlagSpec): string {
  let text = spec.description;
  if (spec.type === "multi" || spec.type === "kv" || spec.type === "kmv") {
    if (!/repeat/i.test(text)) text += " Repeatable.";
  }
  const def = formatDefault(spec);
  if (def !== undefined) text += spec.type === "string" ? ` (default "${def}")` : ` (default ${def})`;
  if (spec.env !== undefined) {
    const how = spec.envAppends === true ? ", added" : spec.envOverrides === true ? ", wins over the flag" : "";
    text += ` [env ${spec.env}${how}]`;
  }
  if (!spec.implemented) text += " [not implemented yet]";
  return text;
}

function flagBlock(table: readonly FlagSpec[], groups: readonly string[]): string {
  const lines: string[] = [];
  const visible = table.filter((s) => !s.hidden);
  const width = Math.max(...visible.map((s) => flagColumn(s).length)) + 3;
  for (const g of groups) {
    const rows = visible.filter((s) => s.group === g);
    if (rows.length === 0) continue;
    lines.push(`${g}:`);
    for (const s of rows) lines.push(`  ${flagColumn(s).padEnd(width)}${describe(s)}`);
    lines.push("");
  }
  lines.push("Other:", `  ${"-h, --help".padEnd(width)}Show this help.`);
  return lines.join("\n");
}

const KILN_HELP = [
  "kiln: build container images from a Dockerfile without a daemon (a drop-in successor to kaniko).",
  "",
  "Usage:",
  "  kiln build [flags]     Build an image and push it (the flags of kaniko's executor)",
  "  kiln warm [flags]      Download base images into a local cache (the flags of kaniko's warmer)",
  "  kiln version           Print the version",
  "  kiln <command> --help  Show the flags of a command",
  "",
  "The same program answers as 'executor' (= kiln build) and 'warmer' (= kiln warm), so",
  "'/kaniko/executor --dockerfile … --context … --destination …' command lines work unchanged.",
  "",
].join("\n");

/**
 * Complete help text for a command, generated from the flag tables (hidden flags and deprecated
 * spellings are accepted but not listed). Ends with a newline.
 */
export function renderHelp(command: HelpTopic): string {
  switch (command) {
    case "kiln":
      return KILN_HELP;
    case "build":
    case "executor": {
      const name = command === "build" ? "kiln build" : "executor";
      return [
        `Build a container image from a Dockerfile and push it, without a daemon.`,
        "",
        "Usage:",
        `  ${name} [flags]`,
        `  ${command === "build" ? "kiln" : "executor"} version`,
        "",
        "Flags take values as --flag value or --flag=value; boolean flags as --flag or --flag=false.",
        "",
        flagBlock(EXECUTOR_FLAGS, EXECUTOR_GROUPS),
        "",
      ].join("\n");
    }
    case "warmer":
    case "warm": {
      const name = command === "warm" ? "kiln warm" : "warmer";
      return [
        "Download base images into a local cache directory for later builds with --cache=true.",
        "",
        "Usage:",
        `  ${name} [flags]`,
        "",
        flagBlock(WARMER_FLAGS, WARMER_GROUPS),
        "",
      ].join("\n");
    }
  }
}
