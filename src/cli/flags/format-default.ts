import type { FlagSpec, FlagValue } from "./types.js";
import { isGit } from "./apply-value.js";

/** Formats milliseconds the way Go's time.Duration.String does ("336h0m0s", "1m30s", "500ms", "0s"). */
export function formatGoDuration(ms: number): string {
  if (ms === 0) return "0s";
  const sign = ms < 0 ? "-" : "";
  const abs = Math.abs(ms);
  if (abs < 1000) return `${sign}${abs}ms`;
  const h = Math.floor(abs / 3_600_000);
  const m = Math.floor((abs % 3_600_000) / 60_000);
  const s = (abs % 60_000) / 1000;
  const sec = `${s}s`;
  if (h > 0) return `${sign}${h}h${m}m${sec}`;
  if (m > 0) return `${sign}${m}m${sec}`;
  return `${sign}${sec}`;
}

function render(spec: FlagSpec, v: FlagValue): string | undefined {
  if (v === undefined || v === "" || v === false) return undefined;
  if (spec.type === "duration" && typeof v === "number") return formatGoDuration(v);
  if (spec.type === "int" && typeof v === "number") return v === 0 ? undefined : String(v);
  if (typeof v === "string" || typeof v === "number" || typeof v === "boolean") return String(v);
  if (Array.isArray(v)) return v.length === 0 ? undefined : v.join(",");
  if (isGit(v)) {
    return `branch=${v.branch},single-branch=${v.singleBranch},recurse-submodules=${v.recurseSubmodules},insecure-skip-tls=${v.insecureSkipTLS}`;
  }
  const entries = Object.entries(v);
  return entries.length === 0
    ? undefined
    : entries.map(([k, x]) => `${k}=${Array.isArray(x) ? x.join(";") : x}`).join(",");
}

/**
 * The default of a flag as shown in help and the README, or undefined when it is the type's empty
 * value (false, "", 0, empty list/map), like pflag.
 */
export function formatDefault(spec: FlagSpec): string | undefined {
  if (spec.name === "git") return undefined;
  return render(spec, spec.default);
}
