import { test } from "node:test";
import * as assert from "node:assert/strict";
import { hasCode } from "../../common/errors.js";
import { parseExecutorArgs } from "./executor-options.js";
import { EXECUTOR_FLAGS } from "./executor-flags.js";
import { UsageError } from "./usage-error.js";

const D = ["--destination", "reg.example/app:1"];
const parse = (argv: string[], env: Record<string, string | undefined> = {}) => parseExecutorArgs(argv, env);

function usage(fn: () => unknown, re: RegExp, code = "USAGE"): void {
  assert.throws(fn, (e: unknown): boolean => {
    assert.ok(e instanceof UsageError, `expected UsageError, got ${String(e)}`);
    assert.equal(e.code, code);
    assert.equal(e.exitCode, 2);
    assert.match(e.message, re);
    return true;
  });
}

test("defaults match kaniko", () => {
  const o = parse(D).options;
  assert.equal(o.dockerfile, "Dockerfile");
  assert.equal(o.context, "/workspace/");
  assert.equal(o.kanikoDir, "/kaniko");
  assert.equal(o.cacheDir, "/cache");
  assert.equal(o.cacheTtlMs, 336 * 3_600_000);
  assert.equal(o.ignoreVarRun, true);
  assert.equal(o.cacheRunLayers, true);
  assert.equal(o.compressedCaching, true);
  assert.equal(o.compressionLevel, -1);
  assert.equal(o.compression, undefined);
  assert.equal(o.snapshotMode, "full");
  assert.equal(o.verbosity, "info");
  assert.equal(o.logFormat, "color");
  assert.equal(o.isolation, "auto");
  assert.deepEqual(o.git, { branch: "", singleBranch: false, recurseSubmodules: false, insecureSkipTLS: false });
});

test("long, short and = forms", () => {
  const r = parse([
    "-f",
    "a/Dockerfile",
    "-c=dir:///ctx",
    "-dreg/x:1",
    "--destination=reg/x:2",
    "-v",
    "debug",
    "--target",
    "build",
  ]);
  assert.equal(r.options.dockerfile, "a/Dockerfile");
  assert.equal(r.options.context, "dir:///ctx");
  assert.deepEqual(r.options.destinations, ["reg/x:1", "reg/x:2"]);
  assert.equal(r.options.verbosity, "debug");
  assert.equal(r.options.target, "build");
  assert.deepEqual([...r.set].sort(), ["context", "destination", "dockerfile", "target", "verbosity"]);
});

test("a valued flag takes the next argument even if it looks like a flag (pflag)", () => {
  assert.equal(parse([...D, "--target", "--weird"]).options.target, "--weird");
  usage(() => parse(["--no-push", "--target"]), /flag needs an argument: --target/);
  usage(() => parse(["--no-push", "-f"]), /flag needs an argument: 'f' in -f/);
});

test("bools: bare, =true/false in every Go spelling, but not a separate word", () => {
  assert.equal(parse(["--no-push"]).options.noPush, true);
  for (const f of ["false", "0", "f", "F", "FALSE", "False"]) {
    assert.equal(parse([...D, `--ignore-var-run=${f}`]).options.ignoreVarRun, false, f);
  }
  for (const t of ["true", "1", "t", "T", "TRUE", "True"])
    assert.equal(parse([`--no-push=${t}`]).options.noPush, true, t);
  usage(() => parse([...D, "--reproducible=yes"]), /invalid argument "yes" for "--reproducible"/);
  usage(() => parse(["--no-push", "false", ...D]), /unexpected argument "false".*--flag=false/);
});

test("--no-push=false still requires a destination", () => {
  usage(() => parse(["--no-push=false"]), /you must provide --destination, or use --no-push/);
});

test("-- ends flags; positionals are rejected unless allowed", () => {
  usage(() => parse([...D, "--", "--no-push"]), /unexpected argument "--no-push"/);
  const r = parseExecutorArgs([...D, "extra", "--", "-x"], {}, { allowPositionals: true });
  assert.deepEqual(r.positionals, ["extra", "-x"]);
});

test("unknown flags fail with a suggestion", () => {
  usage(() => parse(["--destinaton=x"]), /^unknown flag: --destinaton \(did you mean --destination\?\)/);
  usage(() => parse(["--snapshot_mode=redo"]), /did you mean --snapshot-mode\?/);
  usage(() => parse(["--frobnicate"]), /^unknown flag: --frobnicate; see/);
  usage(() => parse(["-x"]), /unknown shorthand flag: 'x' in -x/);
  usage(() => parse(["---destination=x"]), /bad flag syntax/);
});

test("multi flags append raw values without comma splitting", () => {
  const o = parse([...D, "--label", "a=1,b=2", "--label=c=3", "--ignore-path=/x", "--ignore-path", "/y"]).options;
  assert.deepEqual(o.labels, ["a=1,b=2", "c=3"]);
  assert.deepEqual(o.ignorePaths, ["/x", "/y"]);
  usage(() => parse([...D, "--label", "novalue"]), /labels must be of the form key=value/);
});

test("kv flags take one pair per use and need '='", () => {
  const o = parse([...D, "--registry-certificate", "r1=/a.pem", "--registry-certificate=r2=/b=c.pem"]).options;
  assert.deepEqual(o.registryCertificates, { r1: "/a.pem", r2: "/b=c.pem" });
  usage(() => parse([...D, "--registry-certificate", "r1"]), /expected key=value/);
});

test("kmv --registry-map splits on ';' and accumulates", () => {
  assert.deepEqual(
    parse([...D, "--registry-map", "index.docker.io=m1;quay.io=m2", "--registry-map=index.docker.io=m3"]).options
      .registryMaps,
    { "index.docker.io": ["m1", "m3"], "quay.io": ["m2"] },
  );
  usage(() => parse([...D, "--registry-map", "nokey"]), /invalid argument "nokey" for "--registry-map"/);
});

test("--build-arg KEY takes the value from env, or stays declared without value", () => {
  const o = parse([...D, "--build-arg", "A", "--build-arg=B=2", "--build-arg", "UNSET", "--build-arg", "E="], {
    A: "from env",
  }).options;
  assert.deepEqual(o.buildArgs, ["A=from env", "B=2", "UNSET", "E="]);
});

test("deprecated spellings map to the same option with the right warnings", () => {
  const r = parse([...D, "--customPlatform=linux/arm64", "--tarPath", "/o.tar", "--whitelist-var-run=false"]);
  assert.equal(r.options.customPlatform, "linux/arm64");
  assert.equal(r.options.tarPath, "/o.tar");
  assert.equal(r.options.ignoreVarRun, false);
  assert.ok(r.set.has("custom-platform") && r.set.has("tar-path") && r.set.has("ignore-var-run"));
  assert.equal(r.warnings.length, 2);
  assert.match(r.warnings[0] ?? "", /--customPlatform is deprecated/);
  assert.match(r.warnings[1] ?? "", /--whitelist-var-run has been deprecated/);
  const s = parse([...D, "--snapshotMode=full"]);
  assert.equal(s.options.snapshotMode, "full");
  assert.match(s.warnings.join("\n"), /--snapshotMode is deprecated/);
});

test("enums reject bad values; verbosity is case-insensitive and accepts 'warning'", () => {
  assert.equal(parse([...D, "--verbosity=WARNING"]).options.verbosity, "warn");
  assert.equal(parse([...D, "-v", "Error"]).options.verbosity, "error");
  assert.equal(parse([...D, "--log-format", "json"]).options.logFormat, "json");
  usage(() => parse([...D, "--log-format=JSON"]), /must be one of color, text, json/);
  usage(() => parse([...D, "--snapshot-mode=fast"]), /must be one of full, redo, time/);
  usage(() => parse([...D, "--compression=lz4"]), /must be one of gzip, zstd/);
  assert.equal(parse([...D, "--isolation=chroot"]).options.isolation, "chroot");
});

test("ints and durations", () => {
  assert.equal(parse([...D, "--push-retry", "3"]).options.pushRetry, 3);
  usage(() => parse([...D, "--push-retry=three"]), /expected an integer/);
  usage(() => parse([...D, "--cache-ttl=2d"]), /expected a duration/);
  // a default value of an unimplemented flag is accepted
  assert.equal(parse([...D, "--cache-ttl=336h"]).options.cacheTtlMs, 336 * 3_600_000);
});

test("--git takes one key=value per use", () => {
  // kaniko splits on the first "=" only: a comma is part of the value, not a second key.
  assert.equal(parse([...D, "--git", "branch=main,single-branch=true"]).options.git.branch, "main,single-branch=true");
  assert.equal(parse([...D, "--git", "branch=main", "--git", "single-branch=true"]).options.git.branch, "main");
  usage(() => parse([...D, "--git", "depth=1"]), /unknown key "depth"/);
  usage(() => parse([...D, "--git", "single-branch=maybe"]), /single-branch must be true or false/);
  usage(() => parse([...D, "--git", "branch"]), /one key=value per use/);
  assert.equal(parse([...D, "--git", "single-branch=false"]).options.git.singleBranch, false);
});

test("--secret syntax", () => {
  assert.deepEqual(parse([...D, "--secret", "id=a,src=/s"]).options.secrets, [{ id: "a", type: "file", src: "/s" }]);
  usage(() => parse([...D, "--secret", "src=/s"]), /id=<name> is required/);
  usage(() => parse([...D, "--secret", "id=a,src=/s,env=X"]), /either src= or env=/);
  usage(() => parse([...D, "--secret", "id=a,colour=red"]), /unknown key "colour"/);
});

test("env fallbacks: flags win, KANIKO_NO_PUSH invalid is ignored with a warning", () => {
  assert.equal(parse([], { KANIKO_NO_PUSH: "true" }).options.noPush, true);
  assert.equal(parse([...D, "--no-push=false"], { KANIKO_NO_PUSH: "true" }).options.noPush, false);
  const r = parse(D, { KANIKO_NO_PUSH: "yes" });
  assert.equal(r.options.noPush, false);
  assert.match(r.warnings.join("\n"), /ignoring KANIKO_NO_PUSH="yes"/);
  assert.equal(parse(D, { KANIKO_DIR: "/k2" }).options.kanikoDir, "/k2");
  // KANIKO_DIR wins over --kaniko-dir, as in kaniko (it sets kaniko's internal paths whatever the flag says).
  assert.equal(parse([...D, "--kaniko-dir=/k3"], { KANIKO_DIR: "/k2" }).options.kanikoDir, "/k2");
  assert.equal(parse([...D, "--kaniko-dir=/k3"], { KANIKO_DIR: "" }).options.kanikoDir, "/k3");
  assert.equal(parse(D, { KANIKO_DIR: "" }).options.kanikoDir, "/kaniko");
  assert.equal(parse(D, { KANIKO_DIR: "/k2" }).set.has("kaniko-dir"), false);
  assert.deepEqual(parse(D, { KANIKO_REGISTRY_MIRROR: "mirror.gcr.io" }).options.registryMirrors, ["mirror.gcr.io"]);
  usage(() => parse(D, { KANIKO_REGISTRY_MAP: "bad" }), /invalid environment variable KANIKO_REGISTRY_MAP/);
  // kaniko appends these two to the flags' values (a runner-wide mirror stays with a job's own).
  assert.deepEqual(parse([...D, "--registry-mirror", "m1"], { KANIKO_REGISTRY_MIRROR: "m2" }).options.registryMirrors, [
    "m1",
    "m2",
  ]);
  assert.deepEqual(parse([...D, "--registry-map", "x=y"], { KANIKO_REGISTRY_MAP: "p=q;x=z" }).options.registryMaps, {
    x: ["y", "z"],
    p: ["q"],
  });
});

test("kaniko's cross-flag validation", () => {
  usage(() => parse([]), /^you must provide --destination, or use --no-push$/);
  usage(() => parse(["--no-push", "--cache"]), /specify cache repo with --cache-repo/);
  usage(
    () => parse(["--no-push", "--image-name-with-digest-file=/f"]),
    /--image-name-with-digest-file needs at least one --destination/,
  );
  usage(() => parse(["--no-push", "--image-name-tag-with-digest-file=/f"]), /--image-name-tag-with-digest-file needs/);
  assert.equal(parse([...D, "--image-name-with-digest-file=/f"]).options.imageNameWithDigestFile, "/f");
});

test("not-implemented flags fail only with non-default values", () => {
  // Whichever flags are still unimplemented: each fails when set to a non-default value, and is
  // accepted at its default (kaniko pipelines often pass defaults explicitly).
  const pending = EXECUTOR_FLAGS.filter((f) => !f.implemented && !f.hidden && f.type === "bool");
  for (const f of pending) {
    usage(
      () => parse([...D, `--${f.name}=${String(!f.default)}`]),
      new RegExp(`--${f.name} is not implemented yet`),
      "NOT_IMPLEMENTED",
    );
    assert.doesNotThrow(() => parse([...D, `--${f.name}=${String(f.default)}`]));
  }
  assert.equal(parse([...D, "--cache"]).options.cache, true); // implemented (layer cache)
});

test("--help short-circuits validation", () => {
  const r = parse(["--help"]);
  assert.equal(r.help, true);
  assert.equal(parse(["-h", "--cache"]).help, true);
  usage(() => parse(["--help", "--nope"]), /unknown flag: --nope/);
});

// Every executor flag name in kaniko-reference §1.1 (and §1.3 fork flags we accept), each with a
// value, must be recognised: it either parses or is reported as not implemented — never unknown.
const KANIKO_EXECUTOR_FLAGS: [string, string | undefined][] = [
  ["verbosity", "debug"],
  ["v", "debug"],
  ["log-format", "text"],
  ["log-timestamp", undefined],
  ["force", undefined],
  ["dockerfile", "Dockerfile2"],
  ["f", "Dockerfile2"],
  ["context", "dir:///w"],
  ["c", "/w"],
  ["context-sub-path", "sub"],
  ["bucket", "b"],
  ["b", "b"],
  ["destination", "r/x"],
  ["d", "r/x"],
  ["snapshot-mode", "redo"],
  ["custom-platform", "linux/amd64"],
  ["build-arg", "A=1"],
  ["insecure", undefined],
  ["skip-tls-verify", undefined],
  ["insecure-pull", undefined],
  ["skip-tls-verify-pull", undefined],
  ["push-retry", "2"],
  ["push-ignore-immutable-tag-errors", undefined],
  ["image-fs-extract-retry", "1"],
  ["image-download-retry", "1"],
  ["kaniko-dir", "/k"],
  ["tar-path", "/t.tar"],
  ["single-snapshot", undefined],
  ["reproducible", undefined],
  ["target", "s"],
  ["no-push", undefined],
  ["no-push-cache", undefined],
  ["cache-repo", "r/c"],
  ["cache-dir", "/c"],
  ["digest-file", "/d"],
  ["image-name-with-digest-file", "/n"],
  ["image-name-tag-with-digest-file", "/n"],
  ["oci-layout-path", "/o"],
  ["compression", "zstd"],
  ["compression-level", "3"],
  ["cache", undefined],
  ["compressed-caching=false", undefined],
  ["cleanup", undefined],
  ["cache-ttl", "1h"],
  ["insecure-registry", "r"],
  ["skip-tls-verify-registry", "r"],
  ["registry-certificate", "r=/ca.pem"],
  ["registry-client-cert", "r=/c,/k"],
  ["registry-map", "a=b;c=d"],
  ["registry-mirror", "m"],
  ["skip-default-registry-fallback", undefined],
  ["ignore-var-run=false", undefined],
  ["label", "a=b"],
  ["skip-unused-stages", undefined],
  ["use-new-run", undefined],
  ["git", "branch=main"],
  ["cache-copy-layers", undefined],
  ["cache-run-layers=false", undefined],
  ["ignore-path", "/p"],
  ["force-build-metadata", undefined],
  ["skip-push-permission-check", undefined],
  ["whitelist-var-run=false", undefined],
  ["snapshotMode", "redo"],
  ["customPlatform", "linux/amd64"],
  ["tarPath", "/t.tar"],
  ["azure-container-registry-config", "/a"],
  ["annotation", "a=b"],
  ["secret", "id=a,src=/s"],
  ["credential-helpers", "ecr"],
  ["image-format", "oci"],
  ["pre-cleanup", undefined],
  ["preserve-context", undefined],
  ["materialize", undefined],
  ["dryrun", undefined],
  ["isolation", "userns"],
  ["report", "/r.json"],
  ["explain-cache", undefined],
  ["strict", undefined],
];

test("every kaniko executor flag name is recognised", () => {
  for (const [flag, value] of KANIKO_EXECUTOR_FLAGS) {
    const spelled = flag.length === 1 ? `-${flag}` : `--${flag}`;
    const argv = value === undefined ? [spelled] : [spelled, value];
    const base = flag === "cache" ? ["--cache-repo=r/c"] : [];
    try {
      const r = parse([...argv, ...base, "--destination=r/x"]);
      assert.ok(r.set.size >= 1, flag);
    } catch (e) {
      assert.ok(hasCode(e, "NOT_IMPLEMENTED"), `${flag}: ${String(e)}`);
    }
  }
});

test("the table covers every name in the list above and nothing is unmapped", () => {
  const known = new Set(
    EXECUTOR_FLAGS.flatMap((s) => [s.name, ...(s.short ? [s.short] : []), ...(s.aliases ?? []).map((a) => a.name)]),
  );
  for (const [flag] of KANIKO_EXECUTOR_FLAGS) assert.ok(known.has(flag.split("=")[0] ?? ""), flag);
});

test("the flag table is immutable", () => {
  const spec = EXECUTOR_FLAGS[0];
  assert.ok(spec && Object.isFrozen(spec) && Object.isFrozen(EXECUTOR_FLAGS));
  const dests = EXECUTOR_FLAGS.find((s) => s.name === "destination")?.default;
  assert.ok(Array.isArray(dests) && Object.isFrozen(dests));
  parse([...D, "-d", "r/y"]);
  assert.deepEqual(dests, []);
});

test("suggestions prefer the most specific related flag", () => {
  usage(() => parse(["--insecure-skip-tls-verify"]), /did you mean --skip-tls-verify\?/);
  usage(() => parse(["--cache-ttl-hours=3"]), /did you mean --cache-ttl\?/);
});
