import type { Dockerfile, Stage } from "./dockerfile.js";
import type { Warning } from "./errors.js";
import type { ArgDecl, ArgInstruction } from "./instructions.js";
import { envFromPairs, lex } from "./shell-lexer.js";
import { PROXY_ARGS } from "./stages.js";
import { DockerfileError } from "./errors.js";

/** An OS/architecture/variant triple, as in an OCI platform. */
export interface PlatformSpec {
  os: string;
  architecture: string;
  variant?: string;
}

/** Formats a platform as `os/arch[/variant]`. */
export function formatPlatform(p: PlatformSpec): string {
  return p.variant ? `${p.os}/${p.architecture}/${p.variant}` : `${p.os}/${p.architecture}`;
}

/**
 * The automatic platform ARG values (TARGETPLATFORM, TARGETOS, TARGETARCH, TARGETVARIANT and the
 * BUILD* counterparts); `build` defaults to `target` (kiln does not emulate).
 */
export function platformArgValues(target: PlatformSpec, build: PlatformSpec = target): Map<string, string> {
  return new Map([
    ["TARGETPLATFORM", formatPlatform(target)],
    ["TARGETOS", target.os],
    ["TARGETARCH", target.architecture],
    ["TARGETVARIANT", target.variant ?? ""],
    ["BUILDPLATFORM", formatPlatform(build)],
    ["BUILDOS", build.os],
    ["BUILDARCH", build.architecture],
    ["BUILDVARIANT", build.variant ?? ""],
  ]);
}

/**
 * Resolves the global (pre-FROM) ARGs in order: a `--build-arg` wins over the default, defaults
 * are expanded against the platform args and earlier global ARGs. The returned map is the scope of
 * FROM lines (platform args included); ARGs without any value are absent. Throws DockerfileError
 * (located at the ARG) on a bad substitution.
 */
export function resolveMetaArgs(
  metaArgs: readonly ArgInstruction[],
  buildArgs: ReadonlyMap<string, string>,
  predefined: ReadonlyMap<string, string> = new Map(),
  escape: "\\" | "`" = "\\",
  opts: { file?: string } = {},
): { values: Map<string, string>; unmatched: string[] } {
  const values = new Map(predefined);
  const unmatched = new Set<string>();
  for (const instr of metaArgs) {
    for (const decl of instr.args) {
      try {
        const env = envFromPairs(values);
        const key = lex(decl.key, env, { escape }).word;
        let value: string | undefined = buildArgs.get(key);
        if (value === undefined && decl.value !== undefined) {
          const r = lex(decl.value, env, { escape });
          r.unmatched.forEach((u) => unmatched.add(u));
          value = r.word;
        }
        if (value !== undefined) values.set(key, value);
        else if (!predefined.has(key)) values.delete(key);
      } catch (e) {
        if (e instanceof DockerfileError)
          throw e.withLocation({ ...opts, range: instr.range, lineText: instr.original });
        throw e;
      }
    }
  }
  return { values, unmatched: [...unmatched] };
}

/**
 * The value an in-stage ARG takes (BuildKit dispatchArg): the `--build-arg` if given, else the
 * (already expanded) default, else the value of the global ARG of the same name; undefined if none.
 */
export function resolveArgValue(
  decl: ArgDecl,
  buildArgs: ReadonlyMap<string, string>,
  metaValues: ReadonlyMap<string, string>,
): string | undefined {
  return buildArgs.get(decl.key) ?? decl.value ?? metaValues.get(decl.key);
}

/**
 * One UNUSED_BUILD_ARG warning listing the `--build-arg` names that no global ARG and no ARG in
 * `built` stages declares (predefined proxy and platform args never warn). Names are compared as
 * written in the Dockerfile (unexpanded ARG names containing `$` count as consuming nothing).
 */
export function unusedBuildArgs(df: Dockerfile, built: readonly Stage[], buildArgs: Iterable<string>): Warning[] {
  const declared = new Set<string>();
  for (const a of df.metaArgs) for (const d of a.args) declared.add(d.key);
  for (const s of built) {
    for (const i of s.instructions) if (i.kind === "arg") for (const d of i.args) declared.add(d.key);
  }
  const unused = [...buildArgs].filter((k) => !declared.has(k) && !PROXY_ARGS.includes(k)).sort();
  if (unused.length === 0) return [];
  return [
    {
      code: "UNUSED_BUILD_ARG",
      message: `One or more build-args [${unused.join(" ")}] were not consumed`,
    },
  ];
}
