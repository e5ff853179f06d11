import { KilnError } from "../common/errors.js";
import { isDigest, type Digest } from "../image/digest.js";

/** A parsed, normalised image reference (Docker reference grammar). */
export interface Reference {
  /** Registry host with optional port, e.g. `index.docker.io`, `127.0.0.1:5000`. */
  readonly registry: string;
  /** Repository path inside the registry, e.g. `library/busybox`. */
  readonly repository: string;
  readonly tag?: string;
  readonly digest?: Digest;
  /** `registry/repository`. */
  readonly name: string;
  /** Canonical string, e.g. `index.docker.io/library/busybox:latest` (`:tag` and/or `@digest`). */
  toString(): string;
}

/** Docker Hub's API host: `docker.io` references are normalised to it (as go-containerregistry does). */
export const DOCKER_HUB_REGISTRY = "index.docker.io";

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN_COMPONENT = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const PORT = /^[0-9]+$/;
const MAX_NAME = 255;

function invalid(s: string, why: string): KilnError {
  return new KilnError(
    "INVALID_REFERENCE",
    `invalid image reference ${JSON.stringify(s)}: ${why} (expected [registry[:port]/]repository[:tag][@sha256:digest])`,
  );
}

function validDomain(d: string): boolean {
  let host = d;
  let port: string | undefined;
  if (d.startsWith("[")) {
    const end = d.indexOf("]");
    if (end < 0) return false;
    host = d.slice(1, end);
    const rest = d.slice(end + 1);
    if (rest !== "" && !rest.startsWith(":")) return false;
    port = rest === "" ? undefined : rest.slice(1);
    if (!/^[0-9a-fA-F:.]+$/.test(host)) return false;
  } else {
    const colon = d.lastIndexOf(":");
    if (colon >= 0) {
      host = d.slice(0, colon);
      port = d.slice(colon + 1);
    }
    if (!host.split(".").every((c) => DOMAIN_COMPONENT.test(c))) return false;
  }
  return port === undefined || (PORT.test(port) && Number(port) > 0 && Number(port) < 65536);
}

/** Builds a Reference value from already-validated parts. */
export function makeReference(registry: string, repository: string, tag?: string, digest?: Digest): Reference {
  const name = `${registry}/${repository}`;
  const str = `${name}${tag !== undefined ? `:${tag}` : ""}${digest !== undefined ? `@${digest}` : ""}`;
  return Object.freeze({
    registry,
    repository,
    name,
    ...(tag !== undefined ? { tag } : {}),
    ...(digest !== undefined ? { digest } : {}),
    toString: () => str,
  });
}

/**
 * Parses an image reference (Docker grammar) and normalises it: no registry → `index.docker.io`,
 * `docker.io` → `index.docker.io`, a one-component Docker Hub path gets `library/`, no tag and no
 * digest → tag `latest`. Throws KilnError `INVALID_REFERENCE` naming the input and the problem.
 */
export function parseReference(s: string): Reference {
  if (s.length === 0) throw invalid(s, "empty reference");
  if (s.trim() !== s) throw invalid(s, "surrounding whitespace");
  let rest = s;
  let digest: Digest | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    const d = rest.slice(at + 1);
    if (!isDigest(d)) throw invalid(s, `bad digest ${JSON.stringify(d)} (only sha256:<64 lowercase hex> is supported)`);
    digest = d;
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf("/");
  const colon = rest.lastIndexOf(":");
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw invalid(s, `bad tag ${JSON.stringify(tag)}`);
  }
  if (rest.length === 0) throw invalid(s, "missing repository");
  const parts = rest.split("/");
  let registry = DOCKER_HUB_REGISTRY;
  const first = parts[0] ?? "";
  if (
    parts.length > 1 &&
    (first.includes(".") || first.includes(":") || first === "localhost" || /[A-Z]/.test(first))
  ) {
    if (!validDomain(first)) throw invalid(s, `bad registry host ${JSON.stringify(first)}`);
    registry = first === "docker.io" ? DOCKER_HUB_REGISTRY : first;
    parts.shift();
  }
  for (const p of parts) {
    if (!PATH_COMPONENT.test(p)) {
      const why = /[A-Z]/.test(p)
        ? "repository name must be lowercase"
        : `bad repository path component ${JSON.stringify(p)}`;
      throw invalid(s, why);
    }
  }
  if (registry === DOCKER_HUB_REGISTRY && parts.length === 1) parts.unshift("library");
  const repository = parts.join("/");
  if (`${registry}/${repository}`.length > MAX_NAME) throw invalid(s, `name longer than ${MAX_NAME} characters`);
  if (tag === undefined && digest === undefined) tag = "latest";
  return makeReference(registry, repository, tag, digest);
}
