/**
 * What counts as "a part of a secret". The build asks it only of text that was expanded from a secret build
 * arg (`ARG T2=${TOKEN#ghp_}`, `LABEL x=${TOKEN#ghp_}`): a run of at least {@link secretRunLength} characters
 * of the value. The CLI's log and report redactor asks it of everything it prints, where a short run would
 * hide ordinary text (a secret URL shares `https://` with every URL, a password "hunter2password" the word
 * "password"): there a run must be at least {@link printedRunLength} characters long.
 */

/** The shortest secret value kiln accepts and masks (shorter values would mask ordinary text). */
export const MIN_SECRET_LENGTH = 4;

/** The shortest run of a secret's characters that counts as a part of it: 8, or all but one of a shorter secret's (at least 4). */
export function secretRunLength(secretLength: number): number {
  return Math.max(MIN_SECRET_LENGTH, Math.min(8, secretLength - 1));
}

/**
 * The shortest run of a secret that the log redactor masks in text: 12 characters and at least half the
 * secret, at most 64 (`${TOKEN#ghp_}` of a 40-character token leaves 36). A secret shorter than 12 is
 * masked whole only.
 */
export function printedRunLength(secretLength: number): number {
  return Math.min(64, Math.max(12, Math.ceil(secretLength / 2)));
}

/** `s[0..end)` with every run of marked characters (`mask[i] === 1`) replaced by one `placeholder`. */
export function renderMarked(s: string, mask: Uint8Array, placeholder: string, end = s.length): string {
  let out = "";
  let i = 0;
  while (i < end) {
    let j = i;
    while (j < end && mask[j] === 0) j++;
    out += s.slice(i, j);
    if (j >= end) break;
    out += placeholder;
    while (j < end && mask[j] === 1) j++;
    i = j;
  }
  return out;
}

/** Windows indexed per secret at most; a longer secret is indexed at a stride (see {@link MaterialIndex}). */
const MAX_WINDOWS = 16_384;

/** Where a window occurs in a secret. */
interface WindowAt {
  secret: string;
  offset: number;
  /** The secret's stride: matches are extended by up to `stride - 1` characters each way. */
  stride: number;
}

/**
 * Finds the parts of secrets in text, in one pass per run length: every run of at least
 * {@link printedRunLength} characters that is also a run of a secret is marked. A secret's windows (its
 * substrings of that length) are kept in a map; a secret of more than 16 K windows is indexed at a stride
 * `s`, and each window found is extended by up to `s - 1` characters each way, so that a run of at least
 * `run + s - 1` characters is still marked whole (a 128 KiB value: runs of 15+ characters).
 */
export class MaterialIndex {
  /** Windows by run length. */
  private readonly byRun = new Map<number, Map<string, WindowAt[]>>();
  /** The secrets, for {@link heldTail}. */
  private readonly secrets: string[] = [];

  /** `runLength`: the shortest run that counts, given the secret's length (default: the log redactor's rule). */
  constructor(
    secrets: readonly string[],
    private readonly runLength: (secretLength: number) => number = printedRunLength,
  ) {
    for (const secret of new Set(secrets)) {
      const run = runLength(secret.length);
      if (secret.length < MIN_SECRET_LENGTH || run > secret.length) continue;
      this.secrets.push(secret);
      let windows = this.byRun.get(run);
      if (!windows) {
        windows = new Map();
        this.byRun.set(run, windows);
      }
      const count = secret.length - run + 1;
      const stride = Math.max(1, Math.ceil(count / MAX_WINDOWS));
      for (let offset = 0; offset < count; offset += stride) {
        const w = secret.slice(offset, offset + run);
        const at = windows.get(w);
        // A window repeated in a secret (`aaaaaaaaaa`) needs one place only when every window is indexed.
        if (!at) windows.set(w, [{ secret, offset, stride }]);
        else if (stride > 1 && at.length < 8) at.push({ secret, offset, stride });
      }
    }
  }

  get empty(): boolean {
    return this.secrets.length === 0;
  }

  /** Sets `mask[i] = 1` for every character of `text` in a run shared with a secret. */
  mark(text: string, mask: Uint8Array): void {
    for (const [run, windows] of this.byRun) {
      for (let i = 0; i + run <= text.length; i++) {
        const at = windows.get(text.slice(i, i + run));
        if (!at) continue;
        for (const { secret, offset, stride } of at) {
          let from = i;
          let to = i + run;
          for (let k = 1; k < stride && from > 0 && offset - k >= 0; k++) {
            if (text.charCodeAt(from - 1) !== secret.charCodeAt(offset - k)) break;
            from--;
          }
          for (let k = 0; k < stride - 1 && to < text.length && offset + run + k < secret.length; k++) {
            if (text.charCodeAt(to) !== secret.charCodeAt(offset + run + k)) break;
            to++;
          }
          mask.fill(1, from, to);
        }
      }
    }
  }

  /** The maximal runs of `text` that are parts of secrets (adjacent parts as one), in order. */
  parts(text: string): string[] {
    const mask = new Uint8Array(text.length);
    this.mark(text, mask);
    const out: string[] = [];
    for (let i = 0; i < text.length; i++) {
      if (mask[i] === 0) continue;
      let j = i;
      while (j < text.length && mask[j] === 1) j++;
      out.push(text.slice(i, j));
      i = j;
    }
    return out;
  }

  /**
   * How many characters at the end of `text` could begin a run that more text would make long enough
   * to mark: the longest suffix shorter than the run length that is a part of a secret. (A longer one
   * is marked already; see `mark`.)
   */
  heldTail(text: string): number {
    let held = 0;
    for (const secret of this.secrets) {
      const max = Math.min(this.runLength(secret.length) - 1, text.length);
      for (let k = max; k > held; k--) {
        if (secret.includes(text.slice(text.length - k))) {
          held = k;
          break;
        }
      }
    }
    return held;
  }
}
