/** The value after `--name` on the command line as a number, or `def` when the flag is absent. */
export function numberFlag(name: string, def: number): number {
  const v = stringFlag(name);
  return v === undefined ? def : Number(v);
}

/** The value after `--name` on the command line, or undefined when the flag is absent. */
export function stringFlag(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
