import { MaterialIndex, renderMarked } from "../../common/secret-material.js";
import { openUserinfoTail, userinfoPattern } from "../../common/url-userinfo.js";

/** What replaces a secret (and adjacent ones: two secrets side by side print one `***`). */
const MASK = "***";

/** Raw text held back at most by {@link Redactor.split}, whatever it holds (bounds memory on endless matches). */
const MAX_HELD = 64 * 1024;

/** Replaces secrets in text; `split` does it for text that more text may continue (a RUN's output). */
export interface Redactor {
  (s: string): string;
  /**
   * Redacts `text` up to where a secret (or a URL's user info) could still continue in the next piece:
   * `head` is redacted and ready to print, `tail` is raw text to put in front of the next piece (or to
   * redact on its own when no more comes). A line ending in a newline is not held back unless the
   * newline may be part of a secret.
   */
  split(text: string): { head: string; tail: string };
}

/** Options of {@link redactor}. */
export interface RedactorOptions {
  /**
   * Secrets whose parts are masked too: every run of their characters at least 12 long and at least half the
   * secret (at most 64; see `printedRunLength`), e.g. `${TOKEN#ghp_}` of a token. They are masked whole as
   * well (need not be repeated in `secrets`).
   */
  partial?: readonly string[];
}

/** Query parameters of pre-signed URLs whose values are credentials. */
const SIGNED_PARAMS = [
  "x-amz-signature",
  "x-amz-credential",
  "x-amz-security-token",
  "x-goog-signature",
  "x-goog-credential",
  "sig",
  "signature",
  "access_token",
];

/** Those parameters with their values in text (group 2: the value); global, used with `matchAll`. */
const SIGNED_QUERY_PARAMS = new RegExp(`[?&](${SIGNED_PARAMS.join("|")})=([^&\\s#"'<>]*)`, "gi");

/**
 * How many characters at the end of `text` could be a signed parameter that more text would complete or
 * continue (`…?X-Amz-Sig`, `…&sig=abc`): from its `?` or `&` on; 0 when none.
 */
function openSignedParamTail(text: string): number {
  const m = /[?&]([A-Za-z0-9_-]*)(=[^&\s#"'<>]*)?$/.exec(text.length > 4096 ? text.slice(-4096) : text);
  if (!m) return 0;
  const name = (m[1] ?? "").toLowerCase();
  const open = m[2] === undefined ? SIGNED_PARAMS.some((p) => p.startsWith(name)) : SIGNED_PARAMS.includes(name);
  return open ? m[0].length : 0;
}

/**
 * Builds a function that replaces every occurrence of any secret with `***`. Empty secrets are
 * ignored; for a multi-line secret (a key file) each of its lines of 8+ characters is also redacted
 * on its own, since lines may be logged separately. `partial` secrets are masked in part as well (see
 * {@link RedactorOptions.partial}); the user info of any URL (`scheme://user:password@`) and the signature
 * parameters of pre-signed URLs are masked.
 */
export function redactor(secrets: readonly string[], opts: RedactorOptions = {}): Redactor {
  const needles = new Set<string>();
  for (const s of [...secrets, ...(opts.partial ?? [])]) {
    if (s === "") continue;
    needles.add(s);
    if (/[\r\n]/.test(s)) {
      for (const line of s.split(/\r?\n/)) if (line.trim().length >= 8) needles.add(line);
    }
  }
  const parts = new MaterialIndex(opts.partial ?? []);

  /** Marks every character to mask. */
  const marks = (s: string): Uint8Array => {
    const mask = new Uint8Array(s.length);
    for (const n of needles) {
      for (let i = s.indexOf(n); i >= 0; i = s.indexOf(n, i + 1)) mask.fill(1, i, i + n.length);
    }
    if (!parts.empty) parts.mark(s, mask);
    const re = userinfoPattern();
    for (let m = re.exec(s); m; m = re.exec(s)) {
      const info = m[1] ?? "";
      const from = m.index + 3;
      mask.fill(1, from, from + info.length);
    }
    // Signatures and tokens of pre-signed URLs (S3, GCS, Azure SAS) are credentials for as long as they last.
    for (const m of s.matchAll(SIGNED_QUERY_PARAMS)) {
      const value = m[2] ?? "";
      const from = m.index + m[0].length - value.length;
      mask.fill(1, from, from + value.length);
    }
    return mask;
  };

  const render = (s: string, mask: Uint8Array, end: number): string => renderMarked(s, mask, MASK, end);

  const quick = (s: string): boolean =>
    s.length === 0 || (needles.size === 0 && !s.includes("://") && !s.includes("="));

  const redact = (s: string): string => (quick(s) ? s : render(s, marks(s), s.length));

  const split = (text: string): { head: string; tail: string } => {
    const n = text.length;
    if (n === 0) return { head: "", tail: "" };
    const mask = marks(text);
    let held = Math.max(parts.heldTail(text), openUserinfoTail(text), openSignedParamTail(text));
    // A proper prefix of a secret at the end (`…ghp_SUPER`): the rest may follow.
    for (const needle of needles) {
      const first = needle.charCodeAt(0);
      for (let j = Math.max(0, n - needle.length + 1); j < n && n - j > held; j++) {
        if (text.charCodeAt(j) === first && needle.startsWith(text.slice(j))) {
          held = n - j;
          break;
        }
      }
    }
    let cut = n - held;
    // A masked run that reaches the cut (or the end) may go on in the next piece: hold it whole.
    while (cut > 0 && mask[cut - 1] === 1 && (cut === n || mask[cut] === 1)) cut--;
    if (n - cut > MAX_HELD) cut = n - MAX_HELD;
    // Never between the two halves of a surrogate pair.
    const c = text.charCodeAt(cut - 1);
    if (cut > 0 && cut < n && c >= 0xd800 && c <= 0xdbff) cut--;
    return { head: render(text, mask, cut), tail: text.slice(cut) };
  };

  return Object.assign(redact, { split });
}

/** Values that must never be printed: registry passwords and tokens passed through the environment. */
export function envSecrets(env: Record<string, string | undefined>): string[] {
  const keys = [
    "CI_REGISTRY_PASSWORD",
    "GIT_PASSWORD",
    "GIT_TOKEN",
    "AWS_SECRET_ACCESS_KEY",
    "AZURE_STORAGE_ACCESS_KEY",
    "AZURE_CLIENT_SECRET",
    "AWS_SESSION_TOKEN",
    "GOOGLE_OAUTH_ACCESS_TOKEN",
    "CLOUDSDK_AUTH_ACCESS_TOKEN",
  ];
  return keys.map((k) => env[k]).filter((v): v is string => typeof v === "string" && v.length >= 4);
}
