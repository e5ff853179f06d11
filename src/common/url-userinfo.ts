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
