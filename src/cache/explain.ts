/** Kinds of key input, by name prefix, as named in explanations. */
const NAMED: Record<string, string> = {
  parent: "the result of an earlier step",
  base: "the base image digest",
  instruction: "the instruction text",
  platform: "the platform",
  layer: "the layer format",
  user: "the USER",
  workdir: "the WORKDIR",
  shell: "the SHELL",
};

function describe(name: string): string {
  const named = NAMED[name];
  if (named !== undefined) return named;
  const i = name.indexOf(":");
  if (i < 0) return name;
  const kind = name.slice(0, i);
  const what = name.slice(i + 1);
  switch (kind) {
    case "arg":
      return `build arg ${what}`;
    case "env":
      return `env ${what}`;
    case "file":
      return `file ${what}`;
    default:
      return `${kind} ${what}`;
  }
}

/**
 * Names the inputs that differ between a step's current key inputs and those recorded with the
 * closest previous entry (same stage and step position): changed, added and removed inputs.
 * Returns human-readable phrases such as `build arg VERSION changed`, `file src/a.go added`.
 */
export function explainDifference(
  current: Readonly<Record<string, string>>,
  previous: Readonly<Record<string, string>>,
): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(current)) {
    if (!(k in previous)) out.push(`${describe(k)} added`);
    else if (previous[k] !== v) out.push(`${describe(k)} changed`);
  }
  for (const k of Object.keys(previous)) if (!(k in current)) out.push(`${describe(k)} removed`);
  // The step's own inputs first; a changed parent only says that something earlier differed.
  const parent = `${describe("parent")} changed`;
  return [...out.filter((x) => x !== parent), ...out.filter((x) => x === parent)];
}
