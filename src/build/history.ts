import type { Instruction } from "../dockerfile/index.js";

/**
 * The `created_by` text of a history entry, in BuildKit's style: the instruction keyword and its
 * (expanded) arguments, with ` # buildkit` after RUN/COPY/ADD like BuildKit writes it.
 */
export function createdBy(instr: Instruction, detail: string): string {
  const kw = instr.kind.toUpperCase();
  const suffix = instr.kind === "run" || instr.kind === "copy" || instr.kind === "add" ? " # buildkit" : "";
  return `${kw} ${detail}${suffix}`.replace(/\s+$/, "");
}

/** Go's %q-style rendering of a string list, as BuildKit prints CMD/ENTRYPOINT/SHELL in history. */
export function quoteList(args: readonly string[]): string {
  return `[${args.map((a) => JSON.stringify(a)).join(" ")}]`;
}
