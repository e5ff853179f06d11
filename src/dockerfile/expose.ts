import { DockerfileError, ErrorCodes } from "./errors.js";

const PROTOCOLS = ["tcp", "udp", "sctp"];

function portError(message: string, spec: string): DockerfileError {
  return new DockerfileError(ErrorCodes.args, message, {
    lineText: spec,
    hint: "write EXPOSE <port>[/tcp|udp|sctp] or a range like 8000-8010/tcp",
  });
}

function parsePort(s: string, spec: string): number {
  if (!/^[0-9]+$/.test(s) || Number(s) > 65535) throw portError(`invalid containerPort: ${s}`, spec);
  return Number(s);
}

/**
 * The image-config `ExposedPorts` keys for already-expanded EXPOSE values (docker nat.ParsePortSpecs):
 * `80` → `80/tcp`, ranges expanded, `ip:host:container` forms reduced to the container port; sorted,
 * duplicates removed. Throws DockerfileError for an invalid port or protocol.
 */
export function exposedPorts(values: readonly string[]): string[] {
  const keys = new Set<string>();
  for (const spec of values) {
    let raw = spec;
    // [ip:[hostPort:]]containerPort — only the container part matters for EXPOSE.
    const lastColon = raw.lastIndexOf(":");
    if (lastColon >= 0) raw = raw.slice(lastColon + 1);
    const slash = raw.indexOf("/");
    const port = slash < 0 ? raw : raw.slice(0, slash);
    const proto = slash < 0 || raw.slice(slash + 1) === "" ? "tcp" : raw.slice(slash + 1);
    if (!PROTOCOLS.includes(proto.toLowerCase())) throw portError(`invalid proto: ${proto}`, spec);
    if (port === "") throw portError(`no port specified: ${spec}<empty>`, spec);
    const dash = port.indexOf("-");
    const start = parsePort(dash < 0 ? port : port.slice(0, dash), spec);
    const end = dash < 0 ? start : parsePort(port.slice(dash + 1), spec);
    if (end < start) throw portError(`invalid range specified for container port: ${port}`, spec);
    for (let p = start; p <= end; p++) keys.add(`${p}/${proto}`);
  }
  return [...keys].sort();
}
