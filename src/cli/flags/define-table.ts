import { KilnError } from "../../common/errors.js";
import type { FlagSpec, FlagValue } from "./types.js";

function freezeValue(v: FlagValue): void {
  if (v !== null && typeof v === "object") {
    for (const x of Object.values(v)) if (Array.isArray(x)) Object.freeze(x);
    Object.freeze(v);
  }
}

/**
 * Checks a flag table for clashing names/shorthands and deep-freezes it, so the exported tables
 * are immutable data. Throws INTERNAL on a clash (a programming error in the table).
 */
export function defineTable(command: string, specs: FlagSpec[]): readonly FlagSpec[] {
  const seen = new Set<string>();
  const claim = (key: string): void => {
    if (seen.has(key)) throw new KilnError("INTERNAL", `${command} flag table declares ${key} twice`);
    seen.add(key);
  };
  for (const s of specs) {
    claim(`--${s.name}`);
    if (s.short !== undefined) claim(`-${s.short}`);
    for (const a of s.aliases ?? []) {
      claim(`--${a.name}`);
      Object.freeze(a);
    }
    if (s.type === "enum" && (s.enumValues ?? []).length === 0) {
      throw new KilnError("INTERNAL", `${command} flag --${s.name} is an enum without values`);
    }
    freezeValue(s.default);
    if (s.aliases) Object.freeze(s.aliases);
    if (s.enumValues) Object.freeze(s.enumValues);
    if (s.enumAliases) Object.freeze(s.enumAliases);
    Object.freeze(s);
  }
  return Object.freeze(specs);
}
