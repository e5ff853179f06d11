import type { AstNode } from "./ast.js";
import { DockerfileError, ErrorCodes, type SourceRange, type Warning } from "./errors.js";
import { parseFlags, parseGoDuration, type FlagType, type ParsedFlags } from "./flags.js";
import { suggest } from "./go-strings.js";
import { chompHeredocContent, parseHeredocWord, type Heredoc } from "./heredoc.js";
import {
  INSTRUCTION_KEYWORDS,
  type AddInstruction,
  type CommandForm,
  type CopyInstruction,
  type Instruction,
  type KeyValue,
  type RunMount,
} from "./instructions.js";
import { parseMount } from "./mounts.js";

/** Conversion context: where we are and where warnings go. */
export interface ConvertContext {
  file: string;
  warnings: Warning[];
}

const VALID_STAGE_NAME = /^[a-z][a-z0-9-_.]*$/;
const CHMOD_OCTAL = /^[0-7]+$/;
const CHMOD_SYMBOLIC = /^[ugoa]*(?:[-+=](?:[rwxXst]*|[ugo]))+(?:,[ugoa]*(?:[-+=](?:[rwxXst]*|[ugo]))+)*$/;

function argsError(message: string, hint: string): DockerfileError {
  return new DockerfileError(ErrorCodes.args, message, { hint });
}

/** Validates a `--chmod` value (octal like 0755 or symbolic like u+x,g-w); values with variables are checked after expansion. */
export function validateChmod(value: string): void {
  if (value.includes("$")) return;
  const octalOk = CHMOD_OCTAL.test(value) && Number.parseInt(value, 8) <= 0o7777;
  if (!octalOk && !CHMOD_SYMBOLIC.test(value)) {
    throw new DockerfileError(
      ErrorCodes.flag,
      `invalid chmod parameter: '${value}'. it should be octal string and between 0 and 07777`,
      {
        hint: "use an octal mode like 0755 or a symbolic mode like u+rwx,go+rx",
      },
    );
  }
}

function commandForm(node: AstNode): CommandForm {
  const args = node.args.map((a) => a.value);
  if (node.json) return { form: "exec", args };
  return { form: "shell", command: args.join(" ") };
}

const FLAG_SPECS: Record<string, Record<string, FlagType>> = {
  from: { platform: "string" },
  run: { mount: "strings", network: "string", security: "string", device: "strings" },
  copy: {
    from: "string",
    chown: "string",
    chmod: "string",
    link: "bool",
    parents: "bool",
    exclude: "strings",
  },
  add: {
    chown: "string",
    chmod: "string",
    link: "bool",
    parents: "bool",
    exclude: "strings",
    checksum: "string",
    "keep-git-dir": "bool",
    unpack: "bool",
  },
  healthcheck: {
    interval: "string",
    timeout: "string",
    "start-period": "string",
    "start-interval": "string",
    retries: "string",
  },
};

function keyValues(node: AstNode, keyword: string): KeyValue[] {
  const out: KeyValue[] = [];
  for (let i = 0; i + 1 < node.args.length; i += 3) {
    const key = node.args[i]?.value ?? "";
    if (key === "") throw argsError(`${keyword} names can not be blank`, `write ${keyword} name=value`);
    out.push({ key, value: node.args[i + 1]?.value ?? "" });
  }
  return out;
}

function copyLike(node: AstNode, keyword: "COPY" | "ADD", flags: ParsedFlags) {
  const words = node.args.map((a) => a.value);
  if (words.length < 2) {
    throw argsError(
      `${keyword} requires at least two arguments, but only one was provided. Destination could not be determined`,
      `write ${keyword} <source>... <destination>`,
    );
  }
  const dest = words[words.length - 1] as string;
  if (parseHeredocWord(dest)) {
    throw new DockerfileError(ErrorCodes.heredoc, `${keyword} cannot accept a heredoc as a destination`, {
      hint: "put the destination path last",
    });
  }
  const bodies = new Map<string, Heredoc>(node.heredocs.map((h) => [h.name, h]));
  const sources: string[] = [];
  const heredocs: Heredoc[] = [];
  for (const src of words.slice(0, -1)) {
    const h = node.json ? null : parseHeredocWord(src);
    if (h) {
      const content = bodies.get(h.name)?.content ?? "";
      const doc: Heredoc = { ...h, content: h.chomp ? chompHeredocContent(content) : content };
      heredocs.push(doc);
    } else {
      sources.push(src);
    }
  }
  const chmod = flags.strings.get("chmod");
  if (chmod !== undefined) validateChmod(chmod);
  const base = {
    range: { start: node.startLine, end: node.endLine },
    original: node.original,
    sources,
    dest,
    heredocs,
    link: flags.bools.get("link") ?? false,
    parents: flags.bools.get("parents") ?? false,
    excludes: flags.lists.get("exclude") ?? [],
  };
  return {
    ...base,
    ...(flags.strings.has("chown") ? { chown: flags.strings.get("chown") as string } : {}),
    ...(chmod !== undefined ? { chmod } : {}),
  };
}

/** BuildKit rejects variables in COPY --from: the stage graph must be known before expansion. */
function checkCopyFrom(from: string): void {
  if (from.includes("$")) {
    throw new DockerfileError(ErrorCodes.flag, "variable expansion is not supported for --from", {
      hint: "define a new stage with FROM using ARG from global scope as a workaround",
    });
  }
}

/** COPY cannot fetch URLs (ADD can). */
export function checkCopySources(sources: readonly string[]): void {
  for (const s of sources) {
    if (/^https?:\/\//i.test(s)) {
      throw new DockerfileError(ErrorCodes.args, "source can't be a URL for COPY", {
        hint: `use ADD ${s} … to download a URL`,
      });
    }
  }
}

function duration(flags: ParsedFlags, name: string): number | undefined {
  const s = flags.strings.get(name);
  if (s === undefined || s === "") return undefined;
  let d: number;
  try {
    d = parseGoDuration(s);
  } catch (e) {
    throw new DockerfileError(ErrorCodes.flag, `invalid --${name}: ${(e as Error).message}`, {
      hint: `use a duration like 30s or 1m30s`,
    });
  }
  if (d === 0) return undefined;
  if (d < 1e6) {
    throw new DockerfileError(ErrorCodes.flag, `Interval "${name}" cannot be less than 1ms`, {
      hint: `use at least 1ms for --${name}`,
    });
  }
  return d;
}

/** Converts one AST node into a typed {@link Instruction}; throws DockerfileError located at the node. */
export function toInstruction(node: AstNode, ctx: ConvertContext): Instruction {
  const range: SourceRange = { start: node.startLine, end: node.endLine };
  try {
    return convert(node, ctx, range);
  } catch (e) {
    if (e instanceof DockerfileError) throw e.withLocation({ file: ctx.file, range, lineText: node.original });
    throw e;
  }
}

function convert(node: AstNode, ctx: ConvertContext, range: SourceRange): Instruction {
  const kind = node.value.toLowerCase();
  const upper = node.value.toUpperCase();
  if (!INSTRUCTION_KEYWORDS.includes(upper)) {
    const s = suggest(upper, INSTRUCTION_KEYWORDS);
    throw new DockerfileError(ErrorCodes.unknownInstruction, `unknown instruction ${JSON.stringify(node.value)}`, {
      hint: s ? `did you mean ${s}?` : `valid instructions are ${INSTRUCTION_KEYWORDS.join(", ")}`,
    });
  }
  const flags = parseFlags(upper, node.flags, FLAG_SPECS[kind] ?? {});
  const base = { range, original: node.original };
  const words = node.args.map((a) => a.value);
  const one = (): string => {
    if (words.length !== 1 || words[0] === "") {
      throw argsError(`${upper} requires exactly one argument`, `write ${upper} <value>`);
    }
    return words[0] as string;
  };
  switch (kind) {
    case "from": {
      let stageName: string | undefined;
      if (words.length === 3 && (words[1] as string).toLowerCase() === "as") {
        const raw = words[2] as string;
        stageName = raw.toLowerCase();
        if (!VALID_STAGE_NAME.test(stageName)) {
          throw new DockerfileError(
            ErrorCodes.stage,
            `invalid name for build stage: ${JSON.stringify(raw)}, name can't start with a number or contain symbols`,
            {
              hint: "use a lower-case name made of letters, digits, -, _ and .",
            },
          );
        }
        if (stageName === "scratch" || stageName === "context") {
          ctx.warnings.push({
            code: "RESERVED_STAGE_NAME",
            message: `'${stageName}' is reserved and should not be used as a stage name`,
            range,
          });
        }
        if (raw !== stageName) {
          ctx.warnings.push({ code: "STAGE_NAME_CASING", message: `Stage name '${raw}' should be lowercase`, range });
        }
        const asWord = words[1] as string;
        const fromUpper = node.value === node.value.toUpperCase();
        const asUpper = asWord === asWord.toUpperCase();
        if (fromUpper !== asUpper) {
          ctx.warnings.push({
            code: "FROM_AS_CASING",
            message: `'${asWord}' and '${node.value}' keywords' casing do not match`,
            range,
          });
        }
      } else if (words.length !== 1) {
        throw argsError("FROM requires either one or three arguments", "write FROM <image> [AS <name>]");
      }
      const platform = flags.strings.get("platform");
      return {
        ...base,
        kind: "from",
        image: words[0] as string,
        ...(stageName !== undefined ? { stageName } : {}),
        ...(platform !== undefined && platform !== "" ? { platform } : {}),
      };
    }
    case "run": {
      if (words.length === 0) throw argsError("RUN requires at least one argument", "write RUN <command>");
      const mounts: RunMount[] = (flags.lists.get("mount") ?? []).map((m) => parseMount(m));
      const network = flags.strings.get("network");
      if (network !== undefined && !["default", "none", "host"].includes(network)) {
        throw new DockerfileError(ErrorCodes.flag, `unsupported network mode ${JSON.stringify(network)}`, {
          hint: "use --network=default, none or host",
        });
      }
      const security = flags.strings.get("security");
      if (security !== undefined && !["sandbox", "insecure"].includes(security)) {
        throw new DockerfileError(ErrorCodes.flag, `unsupported security mode ${JSON.stringify(security)}`, {
          hint: "use --security=sandbox or insecure",
        });
      }
      if (security === "insecure") {
        ctx.warnings.push({
          code: "RUN_SECURITY_IGNORED",
          message:
            "RUN --security=insecure is ignored: every RUN gets the same privileges (BuildKit needs the security.insecure entitlement for it)",
          range,
        });
      }
      // BuildKit's CDI devices (Dockerfile labs); kaniko parses the flag and ignores it, and so does kiln.
      for (const device of flags.lists.get("device") ?? []) {
        ctx.warnings.push({ code: "RUN_DEVICE_IGNORED", message: `RUN --device=${device} is ignored`, range });
      }
      const heredocs = node.heredocs.map((h) => ({
        ...h,
        content: h.chomp ? chompHeredocContent(h.content) : h.content,
      }));
      return {
        ...base,
        kind: "run",
        command: commandForm(node),
        heredocs,
        mounts,
        ...(network !== undefined ? { network: network as "default" | "none" | "host" } : {}),
        ...(security !== undefined ? { security: security as "sandbox" | "insecure" } : {}),
      };
    }
    case "cmd":
    case "entrypoint": {
      const command = commandForm(node);
      if (command.form === "shell" && command.command !== "") {
        ctx.warnings.push({
          code: "JSON_ARGS_RECOMMENDED",
          message: `JSON arguments recommended for ${upper} to prevent unintended behavior related to OS signals`,
          range,
        });
      }
      return { ...base, kind, command };
    }
    case "shell": {
      if (!node.json)
        throw argsError("SHELL requires the arguments to be in JSON form", 'write SHELL ["/bin/sh", "-c"]');
      if (words.length === 0) throw argsError("SHELL requires at least one argument", 'write SHELL ["/bin/sh", "-c"]');
      return { ...base, kind: "shell", command: { form: "exec", args: words } };
    }
    case "copy": {
      const from = flags.strings.get("from");
      if (from !== undefined) checkCopyFrom(from);
      const c: CopyInstruction = { ...copyLike(node, "COPY", flags), kind: "copy" };
      checkCopySources(c.sources);
      if (from !== undefined && from !== "") c.from = from;
      return c;
    }
    case "add": {
      const a: AddInstruction = {
        ...copyLike(node, "ADD", flags),
        kind: "add",
        keepGitDir: flags.bools.get("keep-git-dir") ?? false,
      };
      const checksum = flags.strings.get("checksum");
      if (checksum !== undefined && checksum !== "") {
        // BuildKit: one digest pins one download.
        if (a.sources.length > 1)
          throw argsError("checksum can't be specified for multiple sources", "write one ADD --checksum per source");
        if (a.sources.length === 0)
          throw argsError("checksum requires HTTP(S) or Git sources (got a heredoc)", "drop --checksum");
        a.checksum = checksum;
      }
      const unpack = flags.bools.get("unpack");
      if (unpack !== undefined) a.unpack = unpack;
      return a;
    }
    case "env":
    case "label": {
      if (words.length === 0) throw argsError(`${upper} requires at least one argument`, `write ${upper} name=value`);
      if (words.length === 3 && words[2] === "") {
        ctx.warnings.push({
          code: "LEGACY_KEY_VALUE_FORMAT",
          message: `"${upper} key=value" should be used instead of legacy "${upper} key value" format`,
          range,
        });
      }
      return { ...base, kind, pairs: keyValues(node, upper) };
    }
    case "arg": {
      if (words.length === 0) throw argsError("ARG requires at least one argument", "write ARG name[=default]");
      const args = words.map((w) => {
        const eq = w.indexOf("=");
        const key = eq < 0 ? w : w.slice(0, eq);
        if (key === "") throw argsError("ARG names can not be blank", "write ARG name[=default]");
        return eq < 0 ? { key } : { key, value: w.slice(eq + 1) };
      });
      return { ...base, kind: "arg", args };
    }
    case "workdir":
    case "user":
    case "stopsignal":
      return { ...base, kind, value: one() };
    case "maintainer":
      ctx.warnings.push({
        code: "MAINTAINER_DEPRECATED",
        message: "Maintainer instruction is deprecated in favor of using label",
        range,
      });
      return { ...base, kind: "maintainer", value: one() };
    case "expose":
      if (words.length === 0)
        throw argsError("EXPOSE requires at least one argument", "write EXPOSE <port>[/<protocol>]");
      for (const w of words) {
        if (w.includes(":")) {
          ctx.warnings.push({
            code: "EXPOSE_INVALID_FORMAT",
            message: `EXPOSE instruction should not define an IP address or host-port mapping, found '${w}'`,
            range,
          });
        }
        const proto = w.slice(w.indexOf("/") + 1);
        if (w.includes("/") && proto !== proto.toLowerCase()) {
          ctx.warnings.push({
            code: "EXPOSE_PROTO_CASING",
            message: `Defined protocol '${w}' in EXPOSE instruction should be lowercase`,
            range,
          });
        }
      }
      return { ...base, kind: "expose", values: words };
    case "volume":
      if (words.length === 0) throw argsError("VOLUME requires at least one argument", "write VOLUME <path>");
      for (const w of words) {
        if (w.trim() === "") throw argsError("VOLUME specified can not be an empty string", "give a path");
      }
      return { ...base, kind: "volume", values: words };
    case "healthcheck":
      return healthcheck(node, flags, base);
    case "onbuild":
      return onbuild(node, ctx);
  }
  throw new DockerfileError(ErrorCodes.unknownInstruction, `unknown instruction ${JSON.stringify(node.value)}`);
}

function healthcheck(node: AstNode, flags: ParsedFlags, base: { range: SourceRange; original: string }): Instruction {
  const words = node.args.map((a) => a.value);
  if (words.length === 0)
    throw argsError(
      "HEALTHCHECK requires at least one argument",
      "write HEALTHCHECK [options] CMD <command> or HEALTHCHECK NONE",
    );
  const typ = (words[0] as string).toUpperCase();
  if (typ === "NONE") {
    if (words.length !== 1) throw argsError("HEALTHCHECK NONE takes no arguments", "remove the arguments after NONE");
    return { ...base, kind: "healthcheck", test: "NONE" };
  }
  if (typ !== "CMD") {
    throw argsError(`Unknown type ${JSON.stringify(typ)} in HEALTHCHECK (try CMD)`, "write HEALTHCHECK CMD <command>");
  }
  const rest = words.slice(1);
  const test: CommandForm = node.json ? { form: "exec", args: rest } : { form: "shell", command: rest.join(" ") };
  if (rest.length === 0 || (test.form === "shell" && test.command === "")) {
    throw argsError("missing command after HEALTHCHECK CMD", "write HEALTHCHECK CMD <command>");
  }
  const h: Instruction = { ...base, kind: "healthcheck", test };
  const interval = duration(flags, "interval");
  const timeout = duration(flags, "timeout");
  const startPeriod = duration(flags, "start-period");
  const startInterval = duration(flags, "start-interval");
  if (interval !== undefined) h.interval = interval;
  if (timeout !== undefined) h.timeout = timeout;
  if (startPeriod !== undefined) h.startPeriod = startPeriod;
  if (startInterval !== undefined) h.startInterval = startInterval;
  const retries = flags.strings.get("retries");
  if (retries !== undefined && retries !== "") {
    if (!/^[+-]?[0-9]+$/.test(retries) || Math.abs(Number(retries)) > 2 ** 31 - 1) {
      throw new DockerfileError(ErrorCodes.flag, `invalid --retries value ${JSON.stringify(retries)}`, {
        hint: "use a whole number",
      });
    }
    const n = Number(retries);
    if (n < 0)
      throw new DockerfileError(ErrorCodes.flag, `--retries cannot be negative (${n})`, { hint: "use 0 or more" });
    h.retries = n;
  }
  return h;
}

const FORBIDDEN_TRIGGERS = new Set(["ONBUILD", "MAINTAINER", "FROM"]);

function onbuild(node: AstNode, ctx: ConvertContext): Instruction {
  const child = node.args[0]?.child;
  if (!child) throw argsError("ONBUILD requires at least one argument", "write ONBUILD <instruction>");
  const trig = child.value.toUpperCase();
  if (trig === "ONBUILD") {
    throw argsError("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed", "use a single ONBUILD");
  }
  if (FORBIDDEN_TRIGGERS.has(trig))
    throw argsError(`${trig} isn't allowed as an ONBUILD trigger`, "use another instruction");
  const sub: AstNode = { ...child, startLine: node.startLine, endLine: node.endLine, heredocs: node.heredocs };
  const trigger = convert(sub, { file: ctx.file, warnings: [] }, { start: node.startLine, end: node.endLine });
  let triggerText = node.original.replace(/^\s*ONBUILD\s*/i, "");
  for (const h of node.heredocs) triggerText += "\n" + h.content + h.name;
  return {
    range: { start: node.startLine, end: node.endLine },
    original: node.original,
    kind: "onbuild",
    trigger,
    triggerText,
  };
}
