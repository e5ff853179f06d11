import type { KeyInput } from "../cache/index.js";
import type { Instruction } from "../dockerfile/index.js";
import { instructionText } from "./cache-inputs.js";
import { MIN_SECRET_LENGTH, sharesMaterial } from "../common/secret-material.js";

/** A build arg or env var set from a secret build arg (`ARG T2=${TOKEN#ghp_}`), and the value it took. */
export interface DerivedSecret {
  /** The ARG or ENV name; "" for the expanded text of another instruction's word (`LABEL x=${TOKEN#ghp_}`). */
  name: string;
  /** Set by an ARG (else an ENV). */
  arg: boolean;
  /** The secret build arg it was set from (through any number of other derived names). */
  from: string;
  /** Its expanded value; empty when it holds no part of the secret (`${TOKEN:+yes}`: not tracked as a value). */
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
 * - ENV and ARG names set from a secret arg are derived secrets: a later step's key sees `<secret>` for
 *   them, a reference to them counts as a reference to the secret arg, and their values (a part of the
 *   secret, `${TOKEN#ghp_}`) are masked like the secret's own. A stage built FROM this one inherits them;
 * - any other input holding a secret value sees `<secret>` in its place.
 * Rotating a secret therefore does not invalidate cached RUN steps, as for the args themselves.
 */
export class SecretKeyGuard {
  /** The secret args' own values (at least 4 characters), by name. */
  private readonly secretValues: readonly [string, string][];
  /** Values to mask, each with the name it is reported under. */
  private readonly values: [string, string][];
  /** References that make a step uncacheable: a name, the secret arg it stands for, its pattern. */
  private readonly refs: [string, string, RegExp][];
  private readonly derivedList: DerivedSecret[] = [];

  constructor(
    private readonly secretNames: readonly string[],
    values: ReadonlyMap<string, string>,
    inherited: readonly DerivedSecret[] = [],
  ) {
    this.values = [...values].filter(([, v]) => v.length >= MIN_SECRET_LENGTH);
    this.secretValues = [...this.values];
    this.refs = secretNames.map((n) => [n, n, refPattern(n)]);
    for (const d of inherited) this.derive(d.name, d.from, d.value, d.arg);
  }

  /** Whether any secret arg is configured (nothing to do otherwise). */
  get active(): boolean {
    return this.refs.length > 0;
  }

  /** The ARG and ENV names set from a secret arg so far (a stage built FROM this one starts with them). */
  derived(): readonly DerivedSecret[] {
    return this.derivedList;
  }

  /** Takes over a name set from a secret arg elsewhere (a global ARG the stage declares). */
  adopt(d: DerivedSecret): void {
    if (this.active) this.derive(d.name, d.from, d.value, d.arg);
  }

  /** The build args whose values stay out of the history: the secret args and those set from them. */
  hiddenArgs(): string[] {
    return [...this.secretNames, ...this.derivedList.filter((d) => d.arg && d.name !== "").map((d) => d.name)];
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
    const hit = this.values.find(([, v]) => text.includes(v) || text.includes(JSON.stringify(v).slice(1, -1)));
    return hit && described(hit[0], this.refs.find(([n]) => n === hit[0])?.[1] ?? hit[0]);
  }

  /**
   * Notes the words of any instruction that refer to a secret arg (or a name set from one) and expanded to
   * text holding part of it (`LABEL x=${TOKEN#ghp_}`, `WORKDIR /w/$T2`): that text is masked and checked
   * like a derived value from then on. Words whose expansion shares no run of the secret (`${TOKEN:+yes}`) are
   * not, nor is other text that happens to share a run with it (a secret URL's `https://`).
   */
  noteWords(raw: Instruction, expanded: Instruction): void {
    if (!this.active) return;
    const walk = (r: unknown, e: unknown): void => {
      if (typeof r === "string") {
        if (typeof e !== "string" || r === e) return;
        const ref = this.refs.find(([, , re]) => re.test(r));
        if (ref && this.secretMaterial(e)) this.track("", ref[1], e);
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
   * `expanded` the result. The names it sets from a secret arg (or from a name set from one) are derived secrets.
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
      this.derive(key, ref[1], result, kind === "arg");
    }
  }

  /**
   * `inputs` with every secret value and every tracked part of one (derived values, noted words) replaced by
   * `<secret>`, longest first. Only those parts: the rest of an input stays keyed, so that two inputs that
   * differ elsewhere (`https://v1/?t=$TOKEN`, `https://v2/?t=$TOKEN`) keep different keys.
   */
  mask(inputs: readonly KeyInput[]): KeyInput[] {
    if (!this.active) return [...inputs];
    return inputs.map(([k, v]): KeyInput => {
      if (typeof v !== "string") return [k, v];
      let out = v;
      for (const [, secret] of this.values) out = out.split(secret).join("<secret>");
      return [k, out];
    });
  }

  /** Whether a derived value holds part of a secret arg's value (and is then masked like it). */
  private secretMaterial(value: string): boolean {
    return this.secretValues.some(([, v]) => sharesMaterial(value, v));
  }

  /** A name set from the secret arg `from`: references to it count as references to `from`. */
  private derive(name: string, from: string, value: string, isArg: boolean): void {
    if (name === "") {
      this.track("", from, value); // a noted word, inherited
      return;
    }
    if (!this.refs.some(([n]) => n === name)) this.refs.push([name, from, refPattern(name)]);
    this.track(name, from, this.secretMaterial(value) ? value : "", isArg);
  }

  /** Records a derived value (masked and checked from now on; "" for none) under `name` ("" for a word). */
  private track(name: string, from: string, value: string, isArg = false): void {
    if (value !== "" && !this.values.some(([, v]) => v === value)) {
      this.values.push([name === "" ? from : name, value]);
      // Longest first: a derived part of a value is masked only where the whole value is not.
      this.values.sort((a, b) => b[1].length - a[1].length);
    }
    if (!this.derivedList.some((d) => d.name === name && d.arg === isArg && d.value === value))
      this.derivedList.push({ name, arg: isArg, from, value });
  }
}

function refPattern(name: string): RegExp {
  return new RegExp(`\\$\\{?${name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}(?![A-Za-z0-9_])`);
}

function described(name: string, from: string): string {
  return name === from ? name : `${from} (through ${name})`;
}
