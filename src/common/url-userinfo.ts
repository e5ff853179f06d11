/**
 * URL user info (`scheme://user:password@host`) is a credential: never printed, never written to an image's
 * history. The user info runs to the last `@` before the path, query or fragment, since passwords often
 * hold an unencoded `@` (`https://ci:p@ss@host/x`: the password is `p@ss`; WHATWG URL parsing agrees).
 */

/** A URL's leading `scheme://userinfo@`. */
const LEADING_USERINFO = /^([a-z][a-z0-9+.-]*:\/\/)[^\s/?#]*@/i;

/** The URL without its user info (`https://u:p@h/x?q` → `https://h/x?q`); other text as given. */
export function stripUserinfo(url: string): string {
  return url.replace(LEADING_USERINFO, "$1");
}

/**
 * The user info of every URL in free text: the characters between `://` and the last `@` before a
 * path, query, fragment, quote or white space. Group 1 is the user info. No scheme is required, so
 * that a URL split across two pieces of output is still found in the second.
 */
export function userinfoPattern(): RegExp {
  return /:\/\/([^\s/?#"<>]*)@/g;
}

/**
 * How many characters at the end of `text` could begin a URL's user info that more text would complete
 * (`…https:`, `…https://ci:pa`), up to `max`; 0 when none.
 */
export function openUserinfoTail(text: string, max = 2048): number {
  const m = /:(?:\/(?:\/[^\s/?#"<>]*)?)?$/.exec(text.length > max ? text.slice(text.length - max) : text);
  return m ? m[0].length : 0;
}

/** `s` percent-decoded; bad percent-encoding gives `s` as it is, or throws a URIError when `strict`. */
export function percentDecoded(s: string, strict = false): string {
  try {
    return decodeURIComponent(s);
  } catch (e) {
    if (strict) throw e;
    return s;
  }
}

/**
 * `Basic base64(user:password)` for a URL with user info (percent-decoded, UTF-8), else undefined. Bad
 * percent-encoding is taken as it is, or throws a URIError when `strict`.
 */
export function basicAuthorization(url: URL, strict = false): string | undefined {
  if (url.username === "" && url.password === "") return undefined;
  const pair = `${percentDecoded(url.username, strict)}:${percentDecoded(url.password, strict)}`;
  return `Basic ${Buffer.from(pair, "utf8").toString("base64")}`;
}
