import { DockerfileError, ErrorCodes } from "./errors.js";
import type { RunMount } from "./instructions.js";
import { suggest } from "./go-strings.js";

const MOUNT_TYPES = ["bind", "cache", "tmpfs", "secret", "ssh"] as const;
const SHARING = ["shared", "private", "locked"] as const;
const ALL_KEYS = [
  "type",
  "from",
  "source",
  "target",
  "readonly",
  "id",
  "sharing",
  "required",
  "size",
  "mode",
  "uid",
  "gid",
  "src",
  "dst",
  "destination",
  "ro",
  "rw",
  "readwrite",
  "env",
];

function mountError(message: string, hint: string): DockerfileError {
  return new DockerfileError(ErrorCodes.mount, message, { hint });
}

/** Splits one CSV record like Go's encoding/csv (quoted fields, `""` escapes, strict quotes). */
export function parseCsvRecord(s: string): string[] {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    let field = "";
    if (s[i] === '"') {
      i++;
      for (;;) {
        if (i >= s.length)
          throw mountError(`failed to parse csv mounts: extraneous or missing " in quoted-field`, "close the quote");
        if (s[i] === '"') {
          if (s[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        field += s[i];
        i++;
      }
      if (i < s.length && s[i] !== ",") {
        throw mountError(
          `failed to parse csv mounts: extraneous or missing " in quoted-field`,
          "quote the whole field",
        );
      }
    } else {
      const j = s.indexOf(",", i);
      field = j < 0 ? s.slice(i) : s.slice(i, j);
      if (field.includes('"'))
        throw mountError(`failed to parse csv mounts: bare " in non-quoted-field`, "quote the whole field");
      i = j < 0 ? s.length : j;
    }
    fields.push(field);
    if (i >= s.length) break;
    i++; // the comma
    if (i >= s.length) {
      fields.push("");
      break;
    }
  }
  return fields;
}

function parseBool(key: string, value: string): boolean {
  if (["1", "t", "T", "TRUE", "true", "True"].includes(value)) return true;
  if (["0", "f", "F", "FALSE", "false", "False"].includes(value)) return false;
  throw mountError(`invalid value for ${key}: ${value}`, `use ${key}=true or ${key}=false`);
}

function parseUint(key: string, value: string, radix: 8 | 10): number {
  const re = radix === 8 ? /^(0o?)?[0-7]+$/ : /^[0-9]+$/;
  const n = Number.parseInt(value.replace(/^0o/, ""), radix);
  if (!re.test(value) || n > 0xffffffff)
    throw mountError(`invalid value ${value} for ${key}`, `${key} must be a${radix === 8 ? "n octal" : ""} number`);
  return n;
}

/** docker/go-units RAMInBytes: `64m`, `1g`, `1.5GiB`, plain bytes; binary multipliers. */
export function ramInBytes(value: string): number {
  const m = /^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$/.exec(value);
  if (!m) throw mountError(`invalid value for size: ${value}`, "use a size like 64m or 1g");
  const mult: Record<string, number> = { k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40, p: 2 ** 50 };
  const n = Number.parseFloat(m[1] as string);
  return Math.trunc(n * (m[2] ? (mult[m[2].toLowerCase()] ?? 1) : 1));
}

const basename = (p: string): string => {
  const t = p.replace(/\/+$/, "");
  if (t === "") return p === "" ? "." : "/";
  return t.slice(t.lastIndexOf("/") + 1);
};

/**
 * Parses the value of one `RUN --mount=` flag (BuildKit semantics), throwing DockerfileError
 * (code DOCKERFILE_MOUNT) that names the offending key. `expand` substitutes variables in values;
 * without it (parse time) values holding `$` are kept raw and only the keys are checked, the full
 * validation happening again when the instruction is expanded.
 */
export function parseMount(raw: string, expand?: (s: string) => string): RunMount {
  if (expand === undefined && raw.includes("$")) return parseMountDeferred(raw);
  return parseMountNow(raw, expand ?? ((s) => s));
}

function parseMountDeferred(raw: string): RunMount {
  const m: RunMount = { type: "bind", raw };
  for (const field of parseCsvRecord(raw)) {
    const eq = field.indexOf("=");
    if (eq < 0) continue;
    const key = field.slice(0, eq).toLowerCase();
    const value = field.slice(eq + 1);
    if (key === "from") {
      const idx = value.indexOf("$");
      if (idx !== -1 && idx !== value.length - 1) {
        throw mountError(
          `'${key}' doesn't support variable expansion, define alias stage instead`,
          "add a stage `FROM $IMAGE AS alias` and use from=alias",
        );
      }
      m.from = value;
    } else if (!ALL_KEYS.includes(key)) {
      const s = suggest(key, ALL_KEYS);
      throw mountError(
        `unexpected key '${key}' in '${field}'`,
        s ? `did you mean ${s}?` : `valid keys are ${ALL_KEYS.join(", ")}`,
      );
    } else if (!value.includes("$")) {
      if (key === "type" && (MOUNT_TYPES as readonly string[]).includes(value.toLowerCase()))
        m.type = value.toLowerCase() as RunMount["type"];
      if (key === "target" || key === "dst" || key === "destination") m.target = value;
      if (key === "source" || key === "src") m.source = value;
      if (key === "id") m.id = value;
    }
  }
  return m;
}

function parseMountNow(raw: string, expand: (s: string) => string): RunMount {
  const fields = parseCsvRecord(raw);
  const m: RunMount = { type: "bind", raw };
  let roAuto = true;
  for (const field of fields) {
    const eq = field.indexOf("=");
    const key = (eq < 0 ? field : field.slice(0, eq)).toLowerCase();
    if (eq < 0) {
      switch (key) {
        case "readonly":
        case "ro":
          m.readonly = true;
          roAuto = false;
          continue;
        case "readwrite":
        case "rw":
          m.readonly = false;
          roAuto = false;
          continue;
        case "required":
          if (m.type === "secret" || m.type === "ssh") {
            m.required = true;
            continue;
          }
          throw mountError(
            `unexpected key '${key}' for mount type '${m.type}'`,
            "required only applies to secret and ssh mounts",
          );
        default:
          throw mountError(`invalid field '${field}' must be a key=value pair`, `write ${field}=<value>`);
      }
    }
    let value = field.slice(eq + 1);
    if (key === "from") {
      const idx = value.indexOf("$");
      if (idx !== -1 && idx !== value.length - 1) {
        throw mountError(
          `'${key}' doesn't support variable expansion, define alias stage instead`,
          "add a stage `FROM $IMAGE AS alias` and use from=alias",
        );
      }
    } else {
      value = expand(value);
    }
    switch (key) {
      case "type": {
        const t = value.toLowerCase();
        if (!(MOUNT_TYPES as readonly string[]).includes(t)) {
          const s = suggest(value, MOUNT_TYPES);
          throw mountError(
            `unsupported mount type ${JSON.stringify(value)}`,
            s ? `did you mean ${s}?` : `use one of ${MOUNT_TYPES.join(", ")}`,
          );
        }
        m.type = t as RunMount["type"];
        break;
      }
      case "source":
      case "src":
        m.source = value;
        break;
      case "target":
      case "dst":
      case "destination":
        m.target = value;
        break;
      case "readonly":
      case "ro":
        m.readonly = parseBool(key, value);
        roAuto = false;
        break;
      case "readwrite":
      case "rw":
        m.readonly = !parseBool(key, value);
        roAuto = false;
        break;
      case "required":
        if (m.type !== "secret" && m.type !== "ssh") {
          throw mountError(
            `unexpected key '${key}' for mount type '${m.type}'`,
            "required only applies to secret and ssh mounts",
          );
        }
        m.required = parseBool(key, value);
        break;
      case "from":
        m.from = value;
        break;
      case "sharing": {
        const v = value.toLowerCase();
        if (value !== "" && !(SHARING as readonly string[]).includes(v)) {
          throw mountError(`unsupported sharing value ${JSON.stringify(value)}`, `use one of ${SHARING.join(", ")}`);
        }
        if (v !== "") m.sharing = v as RunMount["sharing"];
        break;
      }
      case "mode":
        m.mode = parseUint(key, value, 8);
        break;
      case "uid":
        m.uid = parseUint(key, value, 10);
        break;
      case "gid":
        m.gid = parseUint(key, value, 10);
        break;
      case "id":
        m.id = value;
        break;
      case "size":
        if (m.type !== "tmpfs")
          throw mountError(`unexpected key '${key}' for mount type '${m.type}'`, "size only applies to tmpfs mounts");
        m.size = ramInBytes(value);
        break;
      case "env":
        if (m.type !== "secret")
          throw mountError(`unexpected key '${key}' for mount type '${m.type}'`, "env only applies to secret mounts");
        m.env = value;
        break;
      default: {
        const s = suggest(key, ALL_KEYS);
        throw mountError(
          `unexpected key '${key}' in '${field}'`,
          s ? `did you mean ${s}?` : `valid keys are ${ALL_KEYS.join(", ")}`,
        );
      }
    }
  }
  const fileInfoAllowed = m.type === "secret" || m.type === "ssh" || m.type === "cache";
  if (!fileInfoAllowed) {
    for (const k of ["mode", "uid", "gid"] as const) {
      if (m[k] !== undefined)
        throw mountError(`${k} not allowed for ${JSON.stringify(m.type)} type mounts`, `remove ${k}=`);
    }
  }
  if (roAuto) m.readonly = !(m.type === "cache" || m.type === "tmpfs");
  if (m.sharing !== undefined && m.type !== "cache") {
    throw mountError(`invalid cache sharing set for ${m.type} mount`, "sharing only applies to cache mounts");
  }
  if (m.type === "secret") {
    if (m.from !== undefined) throw mountError("secret mount should not have a from", "remove from=");
    if (m.source === undefined && m.target === undefined && m.id === undefined && m.env === undefined) {
      throw mountError("one of source, target, id or env must be specified for secret mount", "add id=<secret id>");
    }
    if (m.id === undefined) m.id = m.source ?? (m.target !== undefined ? basename(m.target) : undefined);
    if (m.target === undefined && m.env === undefined && m.id !== undefined) m.target = `/run/secrets/${m.id}`;
  } else if (m.type === "ssh") {
    if (m.id === undefined) m.id = "default";
  } else if (m.type === "cache") {
    if (m.sharing === undefined) m.sharing = "shared";
    if (m.id === undefined && m.target !== undefined) m.id = m.target;
  }
  if ((m.type === "bind" || m.type === "cache" || m.type === "tmpfs") && (m.target === undefined || m.target === "")) {
    throw mountError(`mount target is required for ${m.type} mounts`, "add target=<path in the container>");
  }
  return m;
}
