/** True when logrus's TextFormatter would quote `s` (anything beyond [A-Za-z0-9-._/@^+]). */
export function needsQuoting(s: string): boolean {
  return !/^[A-Za-z0-9\-._/@^+]*$/.test(s);
}

const ESCAPES: Readonly<Record<string, string>> = Object.freeze({
  "\u0007": "\\a",
  "\b": "\\b",
  "\f": "\\f",
  "\n": "\\n",
  "\r": "\\r",
  "\t": "\\t",
  "\v": "\\v",
  '"': '\\"',
  "\\": "\\\\",
});

/**
 * Quotes a string like Go's `%q` (strconv.Quote): backslash escapes for quotes, backslashes and
 * control characters; printable Unicode is kept as is.
 */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const esc = ESCAPES[ch];
    if (esc !== undefined) {
      out += esc;
      continue;
    }
    const cp = ch.codePointAt(0) ?? 0;
    if (cp < 0x20 || cp === 0x7f) out += `\\x${cp.toString(16).padStart(2, "0")}`;
    else if ((cp >= 0x80 && cp < 0xa0) || cp === 0xad || cp === 0x2028 || cp === 0x2029 || cp === 0xfeff) {
      out += cp <= 0xff ? `\\u00${cp.toString(16).padStart(2, "0")}` : `\\u${cp.toString(16).padStart(4, "0")}`;
    } else out += ch;
  }
  return `${out}"`;
}

/** A logfmt value as logrus writes it: bare when safe, else Go-quoted. */
export function logfmtValue(v: string | number | boolean): string {
  const s = String(v);
  return needsQuoting(s) ? goQuote(s) : s;
}
