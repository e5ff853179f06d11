import { checkCopySources, validateChmod } from "./convert.js";
import { DockerfileError, ErrorCodes, type Warning } from "./errors.js";
import type { Instruction, KeyValue } from "./instructions.js";
import { parseMount } from "./mounts.js";
import { lex, type EnvLookup } from "./shell-lexer.js";
import type { Heredoc } from "./heredoc.js";

/**
 * Returns a copy of `instr` with every field BuildKit expands substituted against `env`:
 * COPY/ADD sources, dest, --chown, --chmod, ADD --checksum (COPY --from cannot hold variables); ENV/LABEL keys and values;
 * WORKDIR, USER, STOPSIGNAL; EXPOSE and VOLUME values; FROM image and --platform; ARG names and
 * defaults; RUN --mount values. RUN/CMD/ENTRYPOINT/SHELL commands, heredoc bodies, HEALTHCHECK and
 * ONBUILD are untouched. `unmatched` lists referenced variables that were not set.
 * Throws DockerfileError (with the instruction's range) for bad substitutions such as `${X:?msg}`.
 */
export function expandInstruction<T extends Instruction>(
  instr: T,
  env: EnvLookup,
  escape: "\\" | "`" = "\\",
  opts: { file?: string } = {},
): { instruction: T; unmatched: string[] } {
  const unmatched = new Set<string>();
  const word = (s: string): string => {
    const r = lex(s, env, { escape });
    for (const u of r.unmatched) unmatched.add(u);
    return r.word;
  };
  const kv = (pairs: KeyValue[]): KeyValue[] => pairs.map((p) => ({ key: word(p.key), value: word(p.value) }));
  try {
    const out = expandFields(instr, word, kv);
    return { instruction: out, unmatched: [...unmatched] };
  } catch (e) {
    if (e instanceof DockerfileError) throw e.withLocation({ ...opts, range: instr.range, lineText: instr.original });
    throw e;
  }
}

function expandFields<T extends Instruction>(
  instr: T,
  word: (s: string) => string,
  kv: (p: KeyValue[]) => KeyValue[],
): T {
  const i: Instruction = instr;
  switch (i.kind) {
    case "from": {
      const out = { ...i, image: word(i.image) };
      if (out.image === "") {
        throw new DockerfileError(ErrorCodes.args, `base name (${i.image}) should not be blank`, {
          hint: "give the variable a value (--build-arg or an ARG default)",
        });
      }
      if (i.platform !== undefined) out.platform = word(i.platform);
      return out as T;
    }
    case "copy":
    case "add": {
      const out = { ...i, sources: i.sources.map(word), dest: word(i.dest) };
      if (i.chown !== undefined) out.chown = word(i.chown);
      if (i.chmod !== undefined) {
        out.chmod = word(i.chmod);
        validateChmod(out.chmod);
      }
      if (out.kind === "copy") checkCopySources(out.sources);
      if (out.kind === "add" && out.checksum !== undefined) out.checksum = word(out.checksum);
      return out as T;
    }
    case "env":
    case "label":
      return { ...i, pairs: kv(i.pairs) } as T;
    case "arg":
      return {
        ...i,
        args: i.args.map((a) =>
          a.value === undefined ? { key: word(a.key) } : { key: word(a.key), value: word(a.value) },
        ),
      } as T;
    case "workdir":
    case "user":
    case "stopsignal":
      return { ...i, value: word(i.value) } as T;
    case "expose":
      return {
        ...i,
        values: i.values.flatMap((v) =>
          word(v)
            .split(/\s+/)
            .filter((p) => p !== ""),
        ),
      } as T;
    case "volume": {
      const values = i.values.map(word);
      if (values.some((v) => v.trim() === "")) {
        throw new DockerfileError(ErrorCodes.args, "VOLUME specified can not be an empty string", {
          hint: "check the variables used in VOLUME",
        });
      }
      return { ...i, values } as T;
    }
    case "run":
      if (i.mounts.length === 0) return { ...i } as T;
      return { ...i, mounts: i.mounts.map((m) => parseMount(m.raw, word)) } as T;
    case "cmd":
    case "entrypoint":
    case "shell":
    case "healthcheck":
    case "onbuild":
    case "maintainer":
      return { ...i } as T;
  }
}

/** The UNDEFINED_VAR warning for a variable an instruction used but nobody set. */
export function undefinedVarWarning(name: string, instr: Instruction): Warning {
  return { code: "UNDEFINED_VAR", message: `Usage of undefined variable '$${name}'`, range: instr.range };
}

/**
 * The body of a COPY/ADD heredoc as BuildKit writes it: when the marker was unquoted, variables and
 * escapes are processed but quotes are kept; a quoted marker keeps the body verbatim. (RUN heredoc
 * bodies are not expanded at build time: the shell sees ARG/ENV values in its environment.)
 */
export function expandHeredoc(
  doc: Heredoc,
  env: EnvLookup,
  escape: "\\" | "`" = "\\",
): { content: string; unmatched: string[] } {
  if (!doc.expand) return { content: doc.content, unmatched: [] };
  const r = lex(doc.content, env, { escape, skipProcessQuotes: true });
  return { content: r.word, unmatched: r.unmatched };
}
