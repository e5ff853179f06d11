import type { KeyInput } from "../cache/index.js";
import type { Instruction } from "../dockerfile/index.js";
import { instructionText } from "./cache-inputs.js";
import { MIN_SECRET_BUILD_ARG_LENGTH } from "./secret-build-args.js";

/**
 * Keeps the values of secret build args (`--secret-build-arg`) out of the layer cache, whose keys hash a
 * step's inputs and whose entries record fingerprints of them (a short, unsalted hash of a token can be
 * guessed offline). One per stage:
 * - a step other than RUN whose text refers to a secret arg (`$TOKEN`, `${TOKEN#ghp_}`, …) or holds its
 *   value is not cached at all: its entry's history text would hold (part of) the value;
 * - a RUN whose `--mount` fields refer to a secret arg (`id=c-${TOKEN}`), or whose key text holds a secret
 *   value, is not cached either: kiln expands those fields, so its key text would hold (part of) the value.
 *   Its command is not expanded by kiln (the shell sees the arg), so `$TOKEN` there is fine;
 * - ENV and ARG names set from a secret arg are tainted: a later step's key sees `<secret>` for them;
 * - any other input holding a secret value sees `<secret>` in its place.
 * Rotating a secret therefore does not invalidate cached RUN steps, as for the args themselves.
 */
export class SecretKeyGuard {
  private readonly values: [string, string][];
  private readonly refs: [string, RegExp][];
  /** Inputs (`env:NAME`, `arg:NAME`) set from a secret arg in this stage. */
  private readonly tainted = new Set<string>();

  constructor(names: readonly string[], values: ReadonlyMap<string, string>) {
    this.values = [...values].filter(([, v]) => v.length >= MIN_SECRET_BUILD_ARG_LENGTH);
    this.refs = names.map((n) => [n, new RegExp(`\\$\\{?${n}(?![A-Za-z0-9_])`)]);
  }

  /** Whether any secret arg is configured (nothing to do otherwise). */
  get active(): boolean {
    return this.refs.length > 0;
  }

  /**
   * The secret arg that keeps a step out of the cache, if any: `raw` is the step before expansion, `text` its
   * key text after expansion ({@link instructionText}).
   */
  uncacheableBecause(raw: Instruction, text: string): string | undefined {
    if (!this.active) return undefined;
    // A RUN's command reaches its key unexpanded; only the fields kiln expands count as references.
    const rawText = raw.kind === "run" ? JSON.stringify(raw.mounts) : instructionText(raw);
    const byRef = this.refs.find(([, re]) => re.test(rawText));
    if (byRef) return byRef[0];
    return this.values.find(([, v]) => text.includes(v) || text.includes(JSON.stringify(v).slice(1, -1)))?.[0];
  }

  /** Notes an ENV or ARG instruction (before expansion): the names it sets from a secret arg are tainted. */
  note(raw: Instruction): void {
    if (!this.active) return;
    const set =
      raw.kind === "env"
        ? raw.pairs.map((p) => ["env", p.key, p.value] as const)
        : raw.kind === "arg"
          ? raw.args.map((a) => ["arg", a.key, a.value ?? ""] as const)
          : [];
    for (const [kind, key, value] of set) {
      if (this.refs.some(([, re]) => re.test(value))) {
        this.tainted.add(`env:${key}`);
        if (kind === "arg") this.tainted.add(`arg:${key}`);
      }
    }
  }

  /** `inputs` with tainted names' values and every secret value replaced by `<secret>`. */
  mask(inputs: readonly KeyInput[]): KeyInput[] {
    if (!this.active) return [...inputs];
    return inputs.map(([k, v]): KeyInput => {
      if (this.tainted.has(k)) return [k, "<secret>"];
      if (typeof v !== "string") return [k, v];
      let out = v;
      for (const [, secret] of this.values) out = out.split(secret).join("<secret>");
      return [k, out];
    });
  }
}
