import type { FlagSpec } from "./types.js";
import { EXECUTOR_FLAGS, EXECUTOR_GROUPS } from "./executor-flags.js";
import { WARMER_FLAGS, WARMER_GROUPS } from "./warmer-flags.js";
import { formatDefault } from "./format-default.js";

const cell = (s: string): string => s.replace(/\|/g, "\\|").replace(/\n/g, " ");
const code = (s: string): string => `\`${s}\``;

function row(spec: FlagSpec): string {
  const names = [`--${spec.name}`, ...(spec.short !== undefined ? [`-${spec.short}`] : [])].map(code).join(", ");
  const value =
    spec.type === "bool"
      ? "bool"
      : spec.type === "enum"
        ? (spec.enumValues ?? []).map(code).join(" | ")
        : code(spec.valueName ?? spec.type);
  const def = formatDefault(spec);
  const notes: string[] = [];
  if ((spec.type === "multi" || spec.type === "kv" || spec.type === "kmv") && !/repeat/i.test(spec.description)) {
    notes.push("Repeatable.");
  }
  for (const a of spec.aliases ?? []) {
    notes.push(
      a.deprecated !== undefined ? `Deprecated spelling ${code(`--${a.name}`)}.` : `Also ${code(`--${a.name}`)}.`,
    );
  }
  if (spec.env !== undefined)
    notes.push(
      spec.envAppends === true
        ? `Env ${code(spec.env)} (added to the flag's values).`
        : spec.envOverrides === true
          ? `Env ${code(spec.env)} (wins over the flag).`
          : `Env ${code(spec.env)}.`,
    );
  if (spec.hidden) notes.push("Hidden (accepted for compatibility).");
  if (!spec.implemented) notes.push("**Not implemented yet.**");
  const desc = [spec.description, ...notes].join(" ");
  return `| ${cell(names)} | ${cell(value)} | ${def === undefined ? "" : cell(code(def))} | ${cell(desc)} |`;
}

function section(title: string, table: readonly FlagSpec[], groups: readonly string[]): string[] {
  const out = [`### ${title}`, ""];
  for (const g of groups) {
    const rows = table.filter((s) => s.group === g);
    if (rows.length === 0) continue;
    out.push(`#### ${g}`, "", "| Flag | Value | Default | Description |", "|---|---|---|---|", ...rows.map(row), "");
  }
  return out;
}

/**
 * The README's Markdown flag reference for `kiln build`/`executor` and `kiln warm`/`warmer`,
 * generated from the same tables as parsing and help. Deterministic; ends with a newline.
 */
export function renderFlagReferenceMarkdown(): string {
  return [
    ...section("`kiln build` / `executor`", EXECUTOR_FLAGS, EXECUTOR_GROUPS),
    ...section("`kiln warm` / `warmer`", WARMER_FLAGS, WARMER_GROUPS),
  ]
    .join("\n")
    .replace(/\n+$/, "\n");
}
