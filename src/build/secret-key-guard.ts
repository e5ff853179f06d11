import type { KeyInput } from "../cache/index.js";
import type { Instruction } from "../dockerfile/index.js";
import { instructionText } from "./cache-inputs.js";
import { MaterialIndex, MIN_SECRET_LENGTH, renderMarked, secretRunLength } from "../common/secret-material.js";

/**
 * A part of a secret build arg that reached a build arg, an env var or another instruction's word through an
 * expansion (`ARG T2=${TOKEN#ghp_}`, `LABEL x=${TOKEN#ghp_}`), or a name set from a secret arg.
 */
export interface DerivedSecret {
  /** The ARG or ENV name; "" for the expanded text of another instruction's word. */
  name: string;
  /** Set by an ARG (else an ENV). */
  arg: boolean;
  /** The secret build arg it comes from (through any number of other derived names). */
  from: string;
  /**
   * A run of the secret's characters the expansion produced (at least 8, see `secretRunLength`); "" for a
   * name whose value holds none (`${TOKEN:+yes}`): the name is still a reference to the secret.
   */
  value: string;
}

/**
 * Keeps the values of secret build args (`--secret-build-arg`) out of the layer cache, whose keys hash a
 * step's inputs and whose entries record fingerprints of them (a short, unsalted hash of a token can be
 * guessed offline). One per stage:
 * - a step other than RUN whose text refers to a secret arg (`$TOKEN`, `${TOKEN#ghp_}`, …) or holds its
 *   value is not cached at all: its entry's history text would hold (part of) the value;
 * - a RUN whose `--mount` fields refer to a secret arg (`id=c-${TOKEN}`), or whose key text holds a secret
 *   value, is not cached either: kiln expands those fields, so its key text would hold (part of) the value.
 *   Its command is not expanded by kiln (the shell sees the arg), so `$TOKEN` there is fine;
 * - ENV and ARG names set from a secret arg are derived: a reference to them counts as a reference to the
 *   secret arg. The runs of the secret that an expansion produced (in those names' values and in any other
 *   instruction's words that refer to a secret or derived name) are tracked: replaced by `<secret>` in later
 *   keys, exactly where they occur, and looked for in the final config. Runs that occur literally in the word
 *   as written are not the secret's (`${URL:+https://pypi.org}` shares `https://` with a secret URL). A stage
 *   built FROM this one inherits all of it;
 * - any input holding a secret value sees `<secret>` in its place, and only there: inputs that differ
 *   elsewhere (`https://v1/?t=$TOKEN`, `https://v2/?t=$TOKEN`) keep different keys.
 * Rotating a secret therefore does not invalidate cached RUN steps, as for the args themselves.
 */
export class SecretKeyGuard {
  /** Runs of the secret args' values, at least `secretRunLength` long. */
  private readonly material: MaterialIndex;
  /** Values to mask (the secrets and the tracked runs), each with the secret arg it is reported under. */
  private readonly values: [string, string][];
  /** References that make a step uncacheable: a name, the secret arg it stands for, its pattern. */
  private readonly refs: [string, string, RegExp][];
  private readonly derivedList: DerivedSecret[] = [];
  /** The build args whose values stay out of the history (see {@link hiddenArgs}). */
  private readonly hidden: Set<string>;

  constructor(
    private readonly secretNames: readonly string[],
    values: ReadonlyMap<string, string>,
    inherited: readonly DerivedSecret[] = [],
  ) {
    this.values = [...values].filter(([, v]) => v.length >= MIN_SECRET_LENGTH);
    this.material = new MaterialIndex(
      this.values.map(([, v]) => v),
      secretRunLength,
    );
    this.refs = secretNames.map((n) => [n, n, refPattern(n)]);
    this.hidden = new Set(secretNames);
    for (const d of inherited) this.adopt(d);
  }

  /** Whether any secret arg is configured (nothing to do otherwise). */
  get active(): boolean {
    return this.refs.length > 0;
  }

  /** The derived names and tracked runs so far (a stage built FROM this one starts with them). */
  derived(): readonly DerivedSecret[] {
    return this.derivedList;
  }

  /** Takes over a derived name or tracked run from elsewhere (a global ARG the stage declares, a FROM stage). */
  adopt(d: DerivedSecret): void {
    if (!this.active) return;
    if (d.name !== "") this.name(d.name, d.from, d.arg);
    this.track(d.name, d.from, d.value, d.arg);
  }

  /** The build args whose values stay out of the history: the secret args and those set from them. */
  hiddenArgs(): string[] {
    return [...this.hidden];
  }

  /** Whether the build arg `name` is one of {@link hiddenArgs}. */
  hidesArg(name: string): boolean {
    return this.hidden.has(name);
  }

  /**
   * The secret arg that keeps a step out of the cache, if any (`TOKEN`, or `TOKEN (through T2)` for a derived
   * name): `raw` is the step before expansion, `text` its key text after expansion ({@link instructionText}).
   */
  uncacheableBecause(raw: Instruction, text: string): string | undefined {
    if (!this.active) return undefined;
    // A RUN's command reaches its key unexpanded; only the fields kiln expands count as references.
    const rawText = raw.kind === "run" ? JSON.stringify(raw.mounts) : instructionText(raw);
    const byRef = this.refs.find(([, , re]) => re.test(rawText));
    if (byRef) return described(byRef[0], byRef[1]);
    return this.values.find(([, v]) => text.includes(v) || text.includes(JSON.stringify(v).slice(1, -1)))?.[0];
  }

  /**
   * Notes the words of any instruction that refer to a secret arg or a derived name: the runs of a secret
   * their expansion produced are tracked (`LABEL x=${TOKEN#ghp_}`, `WORKDIR /w/$T2`). `raw` is the instruction
   * as it was expanded, `expanded` the result.
   */
  noteWords(raw: Instruction, expanded: Instruction): void {
    if (!this.active) return;
    const walk = (r: unknown, e: unknown): void => {
      if (typeof r === "string") {
        if (typeof e !== "string" || r === e) return;
        const ref = this.refs.find(([, , re]) => re.test(r));
        if (ref) for (const part of this.partsOf(e, r)) this.track("", ref[1], part);
        return;
      }
      if (Array.isArray(r) && Array.isArray(e)) r.forEach((x, i) => walk(x, e[i]));
      else if (r !== null && typeof r === "object" && e !== null && typeof e === "object") {
        // The line as written is not expanded (and not keyed); only the fields are.
        for (const [k, x] of Object.entries(r)) if (k !== "original") walk(x, (e as Record<string, unknown>)[k]);
      }
    };
    walk(raw, expanded);
  }

  /**
   * Notes an ENV or ARG instruction: `raw` as it was expanded (an ARG whose value the user gave has none),
   * `expanded` the result. The names it sets from a secret arg (or from a name set from one) are derived, and
   * the runs of the secret in their values tracked.
   */
  note(raw: Instruction, expanded: Instruction): void {
    if (!this.active) return;
    const set =
      raw.kind === "env" && expanded.kind === "env"
        ? raw.pairs.map((p, i) => ["env", p.key, p.value, expanded.pairs[i]?.value ?? ""] as const)
        : raw.kind === "arg" && expanded.kind === "arg"
          ? raw.args.map((a, i) => ["arg", a.key, a.value ?? "", expanded.args[i]?.value ?? ""] as const)
          : [];
    for (const [kind, key, value, result] of set) {
      const ref = this.refs.find(([, , re]) => re.test(value));
      if (!ref) continue;
      this.name(key, ref[1], kind === "arg");
      for (const part of this.partsOf(result, value)) this.track(key, ref[1], part, kind === "arg");
    }
  }

  /**
   * `inputs` with every secret value and tracked run replaced by `<secret>` where it occurs (all occurrences
   * are found first, so overlapping values leave nothing of either).
   */
  mask(inputs: readonly KeyInput[]): KeyInput[] {
    if (!this.active) return [...inputs];
    return inputs.map(([k, v]): KeyInput => {
      if (typeof v !== "string") return [k, v];
      let marks: Uint8Array | undefined;
      for (const [, secret] of this.values) {
        for (let i = v.indexOf(secret); i >= 0; i = v.indexOf(secret, i + 1)) {
          (marks ??= new Uint8Array(v.length)).fill(1, i, i + secret.length);
        }
      }
      const out = marks ? renderMarked(v, marks, "<secret>") : v;
      return [k, out];
    });
  }

  /** The runs of a secret in `expanded` that are not in `written` (the word before expansion) as literal text. */
  private partsOf(expanded: string, written: string): string[] {
    return this.material.parts(expanded).filter((p) => !written.includes(p));
  }

  /** Makes `name` a reference to the secret arg `from`. */
  private name(name: string, from: string, isArg: boolean): void {
    if (!this.refs.some(([n]) => n === name)) this.refs.push([name, from, refPattern(name)]);
    if (isArg) this.hidden.add(name);
    if (!this.derivedList.some((d) => d.name === name && d.arg === isArg && d.value === "")) {
      this.derivedList.push({ name, arg: isArg, from, value: "" });
    }
  }

  /** Records a run of a secret (masked and checked from now on; "" records nothing). */
  private track(name: string, from: string, value: string, isArg = false): void {
    if (value === "") return;
    if (!this.values.some(([, v]) => v === value)) this.values.push([from, value]);
    if (!this.derivedList.some((d) => d.name === name && d.arg === isArg && d.value === value)) {
      this.derivedList.push({ name, arg: isArg, from, value });
    }
  }
}

function refPattern(name: string): RegExp {
  return new RegExp(`\\$\\{?${name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}(?![A-Za-z0-9_])`);
}

function described(name: string, from: string): string {
  return name === from ? name : `${from} (through ${name})`;
}
