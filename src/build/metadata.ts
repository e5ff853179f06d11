import { KilnError } from "../common/errors.js";
import type { CommandForm, HealthcheckInstruction } from "../dockerfile/index.js";
import type { ContainerConfig, HealthConfig } from "../image/types.js";

/** Resolves a CMD/ENTRYPOINT/RUN command form against the stage's SHELL. */
export function commandArgv(cmd: CommandForm, shell: readonly string[]): string[] {
  return cmd.form === "exec" ? [...cmd.args] : [...shell, cmd.command];
}

/** Joins a WORKDIR value onto the current working directory like Docker (relative paths are relative to it). */
export function resolveWorkdir(current: string | undefined, value: string): string {
  const base = current && current.length > 0 ? current : "/";
  const joined = value.startsWith("/") ? value : `${base.replace(/\/+$/, "")}/${value}`;
  const parts: string[] = [];
  for (const p of joined.split("/")) {
    if (p === "" || p === ".") continue;
    if (p === "..") parts.pop();
    else parts.push(p);
  }
  return `/${parts.join("/")}`;
}

const PROTOCOLS = new Set(["tcp", "udp", "sctp"]);

/**
 * Parses EXPOSE values (`80`, `80/udp`, `8000-8002/tcp`) into the config's `port/proto` keys.
 * Throws EXPOSE_INVALID for anything Docker rejects.
 */
export function parseExposedPorts(values: readonly string[]): string[] {
  const out: string[] = [];
  for (const raw of values) {
    const v = raw.trim();
    if (v === "") continue;
    const [portPart = "", proto = "tcp", ...rest] = v.split("/");
    const p = proto.toLowerCase();
    if (rest.length > 0 || !PROTOCOLS.has(p)) throw new KilnError("EXPOSE_INVALID", `invalid EXPOSE value "${raw}"`);
    // Docker accepts "ip:hostport:containerport" forms only to reject them with a clear message.
    if (portPart.includes(":")) {
      throw new KilnError("EXPOSE_INVALID", `EXPOSE "${raw}": publishing to host ports is not allowed in a Dockerfile`);
    }
    const m = /^(\d+)(?:-(\d+))?$/.exec(portPart);
    if (!m) throw new KilnError("EXPOSE_INVALID", `invalid EXPOSE port "${raw}"`);
    const start = Number(m[1]);
    const end = m[2] === undefined ? start : Number(m[2]);
    if (start < 1 || end > 65535 || end < start)
      throw new KilnError("EXPOSE_INVALID", `invalid EXPOSE port range "${raw}"`);
    for (let port = start; port <= end; port++) out.push(`${port}/${p}`);
  }
  return out;
}

const SIGNALS = [
  "HUP",
  "INT",
  "QUIT",
  "ILL",
  "TRAP",
  "ABRT",
  "IOT",
  "BUS",
  "FPE",
  "KILL",
  "USR1",
  "SEGV",
  "USR2",
  "PIPE",
  "ALRM",
  "TERM",
  "STKFLT",
  "CHLD",
  "CONT",
  "STOP",
  "TSTP",
  "TTIN",
  "TTOU",
  "URG",
  "XCPU",
  "XFSZ",
  "VTALRM",
  "PROF",
  "WINCH",
  "IO",
  "POLL",
  "PWR",
  "SYS",
  "RTMIN",
  "RTMAX",
];

/** Validates a STOPSIGNAL value (name with or without SIG, number, or RTMIN+n) and returns it unchanged. */
export function validateStopSignal(value: string): string {
  const v = value.trim();
  if (/^\d+$/.test(v) && Number(v) > 0 && Number(v) < 65) return v;
  const name = v.toUpperCase().replace(/^SIG/, "");
  const rt = /^RTM(IN|AX)([+-]\d+)?$/.exec(name);
  if (SIGNALS.includes(name) || rt) return v;
  throw new KilnError("STOPSIGNAL_INVALID", `invalid STOPSIGNAL "${value}"`);
}

/** Converts a HEALTHCHECK instruction into the config's Healthcheck. */
export function healthConfig(h: HealthcheckInstruction, shell: readonly string[]): HealthConfig {
  if (h.test === "NONE") return { Test: ["NONE"] };
  const test = h.test.form === "exec" ? ["CMD", ...h.test.args] : ["CMD-SHELL", h.test.command];
  void shell;
  const out: HealthConfig = { Test: test };
  if (h.interval !== undefined) out.Interval = h.interval;
  if (h.timeout !== undefined) out.Timeout = h.timeout;
  if (h.startPeriod !== undefined) out.StartPeriod = h.startPeriod;
  if (h.startInterval !== undefined) out.StartInterval = h.startInterval;
  if (h.retries !== undefined) out.Retries = h.retries;
  return out;
}

/** Copies a container config deeply enough that reducers never mutate the base image's object. */
export function cloneConfig(c: ContainerConfig | undefined): ContainerConfig {
  return structuredClone(c ?? {});
}
