const TRUE_WORDS: readonly string[] = Object.freeze(["1", "t", "T", "TRUE", "true", "True"]);
const FALSE_WORDS: readonly string[] = Object.freeze(["0", "f", "F", "FALSE", "false", "False"]);

/** Parses a boolean like Go's strconv.ParseBool (1/t/T/TRUE/true/True and their false forms). */
export function parseGoBool(s: string): boolean | undefined {
  if (TRUE_WORDS.includes(s)) return true;
  if (FALSE_WORDS.includes(s)) return false;
  return undefined;
}
