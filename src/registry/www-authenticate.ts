/** One authentication challenge of a `WWW-Authenticate` header (RFC 7235 / RFC 6750 syntax). */
export interface Challenge {
  /** Lower-cased scheme, e.g. `bearer`, `basic`. */
  scheme: string;
  /** Parameters with lower-cased names, e.g. `realm`, `service`, `scope`, `error`. */
  params: Record<string, string>;
}

/**
 * Parses a `WWW-Authenticate` value (or several joined by commas) into challenges. Quoted strings
 * with backslash escapes are handled; unknown tokens are ignored rather than thrown on.
 */
export function parseWwwAuthenticate(header: string | string[] | undefined): Challenge[] {
  if (header === undefined) return [];
  const text = Array.isArray(header) ? header.join(", ") : header;
  const out: Challenge[] = [];
  let i = 0;
  const n = text.length;
  const skipWs = (): void => {
    while (i < n && /[\s,]/.test(text[i] ?? "")) i++;
  };
  const readToken = (): string => {
    const start = i;
    while (i < n && /[!#$%&'*+.^_`|~0-9A-Za-z-]/.test(text[i] ?? "")) i++;
    return text.slice(start, i);
  };
  let current: Challenge | undefined;
  while (i < n) {
    skipWs();
    if (i >= n) break;
    const start = i;
    const token = readToken();
    if (token === "") {
      i++;
      continue;
    }
    let j = i;
    while (j < n && text[j] === " ") j++;
    if (text[j] === "=" && current !== undefined) {
      // auth-param of the current challenge
      i = j + 1;
      while (i < n && text[i] === " ") i++;
      let value = "";
      if (text[i] === '"') {
        i++;
        while (i < n && text[i] !== '"') {
          if (text[i] === "\\" && i + 1 < n) i++;
          value += text[i];
          i++;
        }
        i++;
      } else {
        const vs = i;
        while (i < n && text[i] !== ",") i++;
        value = text.slice(vs, i).trim();
      }
      current.params[token.toLowerCase()] = value;
    } else if (start === i) {
      i++;
    } else {
      current = { scheme: token.toLowerCase(), params: {} };
      out.push(current);
      // token68 form (e.g. `Negotiate abc==`) is skipped: not used by registries
    }
  }
  return out;
}
