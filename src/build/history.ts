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

/** Go's `time.Duration.String()` for a nanosecond count (`0s`, `100ms`, `1.5s`, `1m30s`, `1h0m0s`). */
export function goDuration(ns: number): string {
  if (ns === 0) return "0s";
  const sign = ns < 0 ? "-" : "";
  let u = Math.abs(ns);
  const frac = (v: number, div: number): string => {
    const whole = Math.floor(v / div);
    const rest = v - whole * div;
    if (rest === 0) return String(whole);
    const digits = String(div).length - 1;
    return `${whole}.${String(rest).padStart(digits, "0").replace(/0+$/, "")}`;
  };
  if (u < 1e9) {
    const [unit, div] = u < 1e3 ? ["ns", 1] : u < 1e6 ? ["µs", 1e3] : ["ms", 1e6];
    return `${sign}${frac(u, div as number)}${unit as string}`;
  }
  const h = Math.floor(u / 3.6e12);
  u -= h * 3.6e12;
  const m = Math.floor(u / 6e10);
  u -= m * 6e10;
  return `${sign}${h > 0 ? `${h}h` : ""}${h > 0 || m > 0 ? `${m}m` : ""}${frac(u, 1e9)}s`;
}

/** BuildKit's HEALTHCHECK history text: Go's `%+v` of the health config (`{Test:[CMD-SHELL x] Interval:1s …}`). */
export function healthcheckHistory(h: {
  Test?: readonly string[];
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  StartInterval?: number;
  Retries?: number;
}): string {
  const d = (v: number | undefined): string => goDuration(v ?? 0);
  return (
    `{Test:[${(h.Test ?? []).join(" ")}] Interval:${d(h.Interval)} Timeout:${d(h.Timeout)} ` +
    `StartPeriod:${d(h.StartPeriod)} StartInterval:${d(h.StartInterval)} Retries:${h.Retries ?? 0}}`
  );
}

/** BuildKit's EXPOSE history text: this instruction's ports as `port/proto`, sorted (`[80/tcp 53/udp]`). */
export function exposeHistory(values: readonly string[]): string {
  const ports = values
    .map((v) => v.trim())
    .filter((v) => v !== "")
    .map((v) => (v.includes("/") ? v.toLowerCase() : `${v}/tcp`));
  return `[${[...new Set(ports)].sort().join(" ")}]`;
}
