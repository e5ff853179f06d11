import { test } from "node:test";
import * as assert from "node:assert/strict";
import { MaterialIndex, printedRunLength, secretRunLength } from "../../common/secret-material.js";
import { redactor, type Redactor } from "./redact.js";

const TOKEN = "ghp_SUPERSECRETVALUE123";

/** Feeds `pieces` through `split` as a stream would, then redacts what is left: the text printed. */
function streamed(r: Redactor, pieces: string[]): string {
  let out = "";
  let held = "";
  for (const p of pieces) {
    const { head, tail } = r.split(held + p);
    out += head;
    held = tail;
  }
  return out + r(held);
}

test("a part of a secret build arg (${TOKEN#ghp_}) is masked in an error line", () => {
  const r = redactor([], { partial: [TOKEN] });
  const line = `Dockerfile:5: COPY \${T2}.txt /x: "/SUPERSECRETVALUE123.txt": not found in the build context`;
  assert.equal(r(line), 'Dockerfile:5: COPY ${T2}.txt /x: "/***.txt": not found in the build context');
  assert.equal(r(`a ${TOKEN} b`), "a *** b");
  // Runs of 12+ characters (and half the value) anywhere in it; shorter ones are ordinary text.
  assert.equal(r("x SECRETVALUE1 y"), "x *** y");
  assert.equal(r("x CRETVALU y SUPERSECRET z ghp_ z"), "x CRETVALU y SUPERSECRET z ghp_ z");
  // Two adjacent parts print one mask.
  assert.equal(r("ghp_SUPERSECRETghp_SUPERSECRET"), "***");
});

test("the printed rule: 12 characters and half the secret (at most 64); the build's rule is 8", () => {
  assert.equal(printedRunLength(23), 12);
  assert.equal(printedRunLength(40), 20);
  assert.equal(printedRunLength(1000), 64);
  assert.equal(secretRunLength(23), 8);
  assert.equal(secretRunLength(6), 5);
  assert.equal(secretRunLength(4), 4);
  // Ordinary words a secret happens to hold stay readable; a long enough run of it does not.
  const r = redactor([], { partial: ["hunter2password", "https://ci:tok3n@pypi.example.com/simple"] });
  assert.equal(r("the password is wrong at https://example.com/x"), "the password is wrong at https://example.com/x");
  assert.equal(r("x hunter2passwo y"), "x *** y");
  assert.equal(r("index ci:tok3n@pypi.example.com"), "index ***");
  // A secret shorter than 12 characters is masked whole only.
  const short = redactor([], { partial: ["ab1cd2ef3"] });
  assert.equal(short("ab1cd2ef3 and ab1cd2ef"), "*** and ab1cd2ef");
  // The build's rule, through the same index: runs of 8 (all but one of a shorter secret's).
  const build = new MaterialIndex(["hunter2x9"], secretRunLength);
  assert.deepEqual(build.parts("xhunter2x9y hunter2x unter2x9 hunter2"), ["hunter2x9", "hunter2x", "unter2x9"]);
});

test("secrets given whole only are not masked in part", () => {
  const r = redactor(["filesecret-value"]);
  assert.equal(r("filesecret-value and filesecret"), "*** and filesecret");
});

test("a very long secret is indexed at a stride and its long runs are still masked whole", () => {
  let v = "";
  for (let i = 0; v.length < 200_000; i++) v += ((i * 2654435761) >>> 0).toString(36);
  const r = redactor([], { partial: [v] });
  const run = v.slice(5_003, 5_103);
  assert.equal(r(`<${run}>`), "<***>");
  assert.equal(r(`<${v}>`), "<***>");
});

test("a URL's user info is masked in any line, up to the last @ before the path", () => {
  const r = redactor([]);
  assert.equal(
    r("ADD http://alice:S3CRETPW@127.0.0.1:8081/f.txt?X-Amz-Signature=SIG /f"),
    "ADD http://***@127.0.0.1:8081/f.txt?X-Amz-Signature=*** /f",
  );
  assert.equal(r("fetch https://ci:p@ssw0rd-SECRET@example.com/x failed"), "fetch https://***@example.com/x failed");
  assert.equal(r('{"url":"https://tok@h"}'), '{"url":"https://***@h"}');
  assert.equal(r("no url here: a@b, https://example.com/x@y"), "no url here: a@b, https://example.com/x@y");
});

test("a secret split across two pieces of output is masked; a line ending in a newline is not held back", () => {
  const r = redactor(["exact-secret-9"], { partial: [TOKEN] });
  const text = `${"x".repeat(65_530)}${TOKEN}\n`;
  for (const at of [65_531, 65_536, 65_540, 65_552]) {
    const out = streamed(r, [text.slice(0, at), text.slice(at)]);
    assert.equal(out, `${"x".repeat(65_530)}***\n`, `split at ${at}`);
  }
  const exact = "aaa exact-secret-9 bbb\n";
  for (let at = 1; at < exact.length; at++) {
    assert.equal(streamed(r, [exact.slice(0, at), exact.slice(at)]), "aaa *** bbb\n", `split at ${at}`);
  }
  const url = "GET https://ci:p@ss-word@h/x\n";
  for (let at = 1; at < url.length; at++) {
    assert.equal(streamed(r, [url.slice(0, at), url.slice(at)]), "GET https://***@h/x\n", `split at ${at}`);
  }
  // Ordinary lines go out at once; only a tail that could begin a secret waits.
  assert.deepEqual(r.split("building...\nstep 2 done\n"), { head: "building...\nstep 2 done\n", tail: "" });
  assert.deepEqual(r.split("token: ghp_SUP"), { head: "token: ", tail: "ghp_SUP" });
  assert.deepEqual(r.split(`token: ${TOKEN}`), { head: "token: ", tail: TOKEN });
});

test("signatures and tokens of pre-signed URLs are masked; other query parameters are not", () => {
  const r = redactor([]);
  assert.equal(
    r("GET https://b.s3.amazonaws.com/f?X-Amz-Credential=AKIA1/x&X-Amz-Signature=abc123&part=2 failed"),
    "GET https://b.s3.amazonaws.com/f?X-Amz-Credential=***&X-Amz-Signature=***&part=2 failed",
  );
  assert.equal(
    r("https://a.blob.core.windows.net/c/f?sv=2022&sig=Zm9v%3D&se=1"),
    "https://a.blob.core.windows.net/c/f?sv=2022&sig=***&se=1",
  );
});

test("a pre-signed URL's signature split across two pieces of output is masked", () => {
  const r = redactor([]);
  for (const pieces of [
    ["GET https://b/f?X-Amz-Sig", "nature=deadbeef01 done\n"],
    ["GET https://b/f?X-Amz-Signature=", "deadbeef01 done\n"],
    ["GET https://b/f?a=1&X-Amz-Signature=dead", "beef01 done\n"],
  ]) {
    assert.equal(
      streamed(r, pieces),
      "GET https://b/f?X-Amz-Signature=*** done\n".replace("f?", pieces[0]?.includes("a=1") ? "f?a=1&" : "f?"),
      pieces.join("|"),
    );
  }
  assert.equal(r("sig=abc0123"), "sig=abc0123", "not in a query string");
  assert.equal(r("x?sig=abc0123"), "x?sig=***");
});
