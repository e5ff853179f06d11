import { test } from "node:test";
import assert from "node:assert/strict";
import { parseDockerfile, type Instruction } from "../dockerfile/index.js";
import { instructionText } from "./cache-inputs.js";
import { SecretKeyGuard } from "./secret-key-guard.js";

const TOKEN = "ghp_0123456789abcdef";
const instr = (line: string): Instruction => {
  const i = parseDockerfile(`FROM scratch\n${line}\n`).stages[0]?.instructions[0];
  assert.ok(i);
  return i;
};

test("a step other than RUN that refers to a secret arg, expanded whole or in part, is not cached", () => {
  const g = new SecretKeyGuard(["TOKEN"], new Map([["TOKEN", TOKEN]]));
  const add = instr("ADD https://h/f?t=${TOKEN#ghp_} /f");
  const expanded = instr(`ADD https://h/f?t=${TOKEN.slice(4)} /f`);
  assert.equal(
    g.uncacheableBecause(add, instructionText(expanded)),
    "TOKEN",
    "a partial expansion is caught by the reference",
  );
  // The value itself in a step's text (e.g. through a variable the guard did not see) is caught too.
  assert.equal(
    g.uncacheableBecause(instr("WORKDIR /w/$OTHER"), instructionText(instr(`WORKDIR /w/${TOKEN}`))),
    "TOKEN",
  );
  assert.equal(
    g.uncacheableBecause(instr("RUN curl -H $TOKEN h"), instructionText(instr("RUN curl -H $TOKEN h"))),
    undefined,
  );
  assert.equal(
    g.uncacheableBecause(instr("COPY $TOKENS /x"), instructionText(instr("COPY a /x"))),
    undefined,
    "another name",
  );
  const none = new SecretKeyGuard([], new Map());
  assert.equal(none.uncacheableBecause(add, instructionText(expanded)), undefined);
});

test("names set from a secret arg and secret values are masked in key inputs", () => {
  const g = new SecretKeyGuard(["TOKEN"], new Map([["TOKEN", TOKEN]]));
  g.note(instr("ENV AUTH=${TOKEN#ghp_} PLAIN=1"), instr(`ENV AUTH=${TOKEN.slice(4)} PLAIN=1`));
  g.note(instr("ARG DERIVED=x$TOKEN"), instr(`ARG DERIVED=x${TOKEN}`));
  const masked = g.mask([
    ["env:AUTH", TOKEN.slice(4)],
    ["env:PLAIN", "1"],
    ["arg:DERIVED", `x${TOKEN}`],
    ["env:URL", `https://h/?t=${TOKEN}&x=1`],
    ["file:/a", new Uint8Array([1, 2])],
  ]);
  assert.deepEqual(masked.slice(0, 4), [
    ["env:AUTH", "<secret>"],
    ["env:PLAIN", "1"],
    ["arg:DERIVED", "x<secret>"],
    ["env:URL", "https://h/?t=<secret>&x=1"],
  ]);
  assert.ok(!JSON.stringify(masked.slice(0, 4)).includes(TOKEN.slice(4)));
});

test("a RUN whose --mount fields refer to a secret arg or hold its value is not cached; its command may", () => {
  const g = new SecretKeyGuard(["TOKEN"], new Map([["TOKEN", TOKEN]]));
  const raw = instr("RUN --mount=type=cache,id=c-${TOKEN#ghp_},target=/c make");
  const expanded = instr(`RUN --mount=type=cache,id=c-${TOKEN.slice(4)},target=/c make`);
  assert.equal(g.uncacheableBecause(raw, instructionText(expanded)), "TOKEN", "a partial expansion, by the reference");
  const viaOther = instr("RUN --mount=type=cache,id=c-$OTHER,target=/c make");
  const withValue = instr(`RUN --mount=type=cache,id=c-${TOKEN},target=/c make`);
  assert.equal(g.uncacheableBecause(viaOther, instructionText(withValue)), "TOKEN", "the value in the key text");
  const inCommand = instr("RUN --mount=type=cache,target=/c curl -H $TOKEN h");
  assert.equal(g.uncacheableBecause(inCommand, instructionText(inCommand)), undefined, "the shell expands it");
});

test("a name set from a secret arg stands for it: referring to it, or to a name set from it, is not cached", () => {
  const g = new SecretKeyGuard(["TOKEN"], new Map([["TOKEN", TOKEN]]));
  g.note(instr("ARG T2=${TOKEN#ghp_}"), instr(`ARG T2=${TOKEN.slice(4)}`));
  g.note(instr("ENV T3=$T2"), instr(`ENV T3=${TOKEN.slice(4)}`));
  const part = TOKEN.slice(4, 14);
  assert.equal(
    g.uncacheableBecause(instr("COPY ${T2%cdef} /x"), instructionText(instr(`COPY ${part} /x`))),
    "TOKEN (through T2)",
  );
  assert.equal(
    g.uncacheableBecause(instr("WORKDIR /w/${T3:0}"), instructionText(instr(`WORKDIR /w/${part}`))),
    "TOKEN (through T3)",
  );
  // The derived value is masked in other inputs like the secret's own; a name that was not derived is not.
  assert.deepEqual(
    g.mask([
      ["env:URL", `https://h/?t=${TOKEN.slice(4)}`],
      ["arg:T2", TOKEN.slice(4)],
      ["env:T3", TOKEN.slice(4)],
      ["env:T4", "1"],
    ]),
    [
      ["env:URL", "https://h/?t=<secret>"],
      ["arg:T2", "<secret>"],
      ["env:T3", "<secret>"],
      ["env:T4", "1"],
    ],
  );
  assert.deepEqual(g.hiddenArgs(), ["TOKEN", "T2"], "ENV T3 is not a build arg");
  assert.deepEqual(
    g.derived().map((d) => [d.name, d.arg, d.from, d.value]),
    [
      ["T2", true, "TOKEN", ""],
      ["T2", true, "TOKEN", TOKEN.slice(4)],
      ["T3", false, "TOKEN", ""],
      ["T3", false, "TOKEN", TOKEN.slice(4)],
    ],
  );
});

test("a stage built FROM another inherits its derived names; a value holding no part of the secret is not masked", () => {
  const first = new SecretKeyGuard(["TOKEN"], new Map([["TOKEN", TOKEN]]));
  first.note(instr("ARG T2=${TOKEN#ghp_}"), instr(`ARG T2=${TOKEN.slice(4)}`));
  first.note(instr("ARG HAS=${TOKEN:+true}"), instr("ARG HAS=true"));
  const next = new SecretKeyGuard(["TOKEN"], new Map([["TOKEN", TOKEN]]), first.derived());
  assert.equal(
    next.uncacheableBecause(instr("COPY ${T2} /x"), instructionText(instr(`COPY ${TOKEN.slice(4)} /x`))),
    "TOKEN (through T2)",
  );
  assert.deepEqual(next.mask([["env:A", "true"]]), [["env:A", "true"]], "'true' shares nothing with the secret");
  assert.deepEqual(next.mask([["arg:HAS", "true"]]), [["arg:HAS", "true"]], "only parts of the secret are masked");
  // An ARG whose value the user gave (the stage loop drops the default before noting it) is not derived.
  const given = new SecretKeyGuard(["TOKEN"], new Map([["TOKEN", TOKEN]]));
  given.note(instr("ARG T2"), instr("ARG T2=plain-value"));
  assert.deepEqual(given.derived(), []);
});

test("words expanded from a secret are tracked; text merely sharing characters with it is not; adopt", () => {
  const url = "https://ci:tok3n@pypi.example.com/simple";
  const g = new SecretKeyGuard(["URL"], new Map([["URL", url]]));
  // Another URL shares `https://` with the secret: neither keyed as <secret> nor refused from the cache.
  assert.deepEqual(g.mask([["env:DL", "https://example.com/v1.tgz"]]), [["env:DL", "https://example.com/v1.tgz"]]);
  assert.equal(g.uncacheableBecause(instr("WORKDIR /w/$X"), "WORKDIR /w/https://example.com"), undefined);
  // A word that refers to the secret and expands to a part of it is masked in later inputs, exactly.
  g.noteWords(instr("WORKDIR /w/${URL#https://}"), instr("WORKDIR /w/ci:tok3n@pypi.example.com/simple"));
  g.noteWords(instr("LABEL yes=${URL:+yes}"), instr("LABEL yes=yes"));
  assert.deepEqual(
    g.mask([
      ["workdir", "/w/ci:tok3n@pypi.example.com/simple"],
      ["label", "yes"],
    ]),
    [
      ["workdir", "/w<secret>"],
      ["label", "yes"],
    ],
  );
  assert.deepEqual(
    g.derived().map((d) => [d.name, d.from, d.value]),
    [["", "URL", "/ci:tok3n@pypi.example.com/simple"]],
  );
  // Tracked names differing elsewhere keep different keys (a whole-input mask would make them collide).
  const t = new SecretKeyGuard(["TOKEN"], new Map([["TOKEN", TOKEN]]));
  t.note(instr("ENV U=https://v1/?t=$TOKEN"), instr(`ENV U=https://v1/?t=${TOKEN}`));
  assert.deepEqual(t.mask([["env:U", `https://v2/?t=${TOKEN}`]]), [["env:U", "https://v2/?t=<secret>"]]);
  t.adopt({ name: "T2", arg: true, from: "TOKEN", value: TOKEN.slice(4) });
  assert.deepEqual(t.hiddenArgs(), ["TOKEN", "T2"]);
  assert.equal(t.uncacheableBecause(instr("COPY $T2 /x"), "COPY x /x"), "TOKEN (through T2)");
});

test("tracked runs are masked where they occur: inputs differing elsewhere keep different keys", () => {
  const g = new SecretKeyGuard(["TOKEN"], new Map([["TOKEN", TOKEN]]));
  // The whole value of IDX is not the secret: only its run of the secret is masked (host1 and host2 differ).
  g.note(instr("ENV IDX=https://u:${TOKEN}@host1/simple"), instr(`ENV IDX=https://u:${TOKEN}@host1/simple`));
  assert.deepEqual(
    g.mask([
      ["env:IDX", `https://u:${TOKEN}@host1/simple`],
      ["env:IDX", `https://u:${TOKEN}@host2/simple`],
    ]),
    [
      ["env:IDX", "https://u:<secret>@host1/simple"],
      ["env:IDX", "https://u:<secret>@host2/simple"],
    ],
  );
  // Literal text of the word is not the secret's, even where it shares 8 characters with a secret URL.
  const url = "https://ci:tok3n@pypi.example.com/simple";
  const u = new SecretKeyGuard(["URL"], new Map([["URL", url]]));
  u.note(instr("ENV IDX=${URL:+https://pypi.org/simple}"), instr("ENV IDX=https://pypi.org/simple"));
  u.noteWords(instr("LABEL src=https://github.com/o/r${URL:+}"), instr("LABEL src=https://github.com/o/r"));
  assert.deepEqual(
    u.derived().map((d) => d.value),
    [""],
  );
  assert.deepEqual(u.mask([["env:IDX", "https://pypi.org/simple"]]), [["env:IDX", "https://pypi.org/simple"]]);
  // Overlapping values are masked together: nothing of either is left.
  const o = new SecretKeyGuard(["TOKEN"], new Map([["TOKEN", TOKEN]]));
  o.noteWords(instr("LABEL p=P-${TOKEN:0}"), instr(`LABEL p=P-${TOKEN.slice(0, 12)}`));
  assert.deepEqual(o.mask([["x", `P-${TOKEN}`]]), [["x", "P-<secret>"]]);
});
