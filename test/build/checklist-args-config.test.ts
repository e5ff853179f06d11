import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { lstat, mkdir, readFile, readdir, symlink, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import path from "node:path";
import { writeTree } from "../integration/helpers.js";
import { useSuiteFixture } from "../support/suite-fixture.js";
import { runKiln } from "../support/kiln-cli.js";
import { busyboxOciLayout, pushLayoutToRegistry } from "../support/base-images.js";
import { buildToLayout, unpackLayout } from "./copy-support.js";
import { createdBy, layoutConfig } from "../conformance/checklist-support.js";

// Items of the BuildKit frontend checklist (docs/buildkit-checklist.md) about ARG/ENV scoping, the image
// config and the history, built for real on busybox from a real registry; the result is read from the
// OCI layout's JSON and unpacked with skopeo + umoci.
describe("BuildKit checklist: ARG, ENV, config and history", () => {
  const fx = useSuiteFixture("checklist-args");
  let n = 0;

  /** Writes a context with `dockerfile` (+ files), builds it to a layout; returns the result and paths. */
  const build = async (dockerfile: string[], extra: string[] = [], files: Record<string, string> = {}) => {
    const ctx = path.join(fx.work, `ctx-${++n}`);
    await writeTree(ctx, { Dockerfile: dockerfile.join("\n") + "\n", ...files });
    const out = path.join(fx.work, `out-${n}`);
    const { r, layout } = await buildToLayout(ctx, out, extra);
    return { r, layout, ctx, out };
  };
  const rootfsOf = (layout: string) => unpackLayout(layout, path.join(fx.work, `unpack-${++n}`));

  test("global ARGs in FROM and re-imported in stages, quotes, prefix/suffix removal, empty and unset ARGs, ENV over ARG", async () => {
    const { r, layout } = await build(
      [
        'ARG a1="foo bar" a2=box',
        'ARG a3="$a2-foo"',
        `ARG host=${fx.reg.host}`,
        `ARG image=idle${fx.reg.host}/busybox`,
        'ARG q1="box"',
        'ARG q2="$q1-foo"',
        "ARG tag=nosuchtag",
        "FROM ${host}/busy$a2:${tag} AS concat",
        "FROM ${image#idle}:${tag}",
        'ARG a3 a4="123 456" a1',
        "ARG q2",
        'ARG q3="bar-$q2"',
        "ARG FOO",
        "ARG BAR=",
        "ARG my_arg",
        'ENV my_arg "my_arg=${my_arg:-def_val}"',
        "ENV myenv foo%sbar",
        'ENV EMPTYENV=""',
        "ARG EMPTYENV=from-arg",
        "ARG foo=bar",
        "ARG bar=123",
        "ARG foo=bar2",
        'RUN echo "$a1:$a3:$a4" > /multi.txt && echo "$q3" > /quoted.txt && echo "$my_arg ${my_arg%%e*}" > /myarg.txt' +
          ' && env > /env.txt && echo "[$EMPTYENV]" > /emptyenv.txt',
      ],
      ["--build-arg", "tag=latest", "--build-arg", "http_proxy=http://proxy.invalid:3128", "--build-arg", "NO_PROXY=x"],
    );
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const root = await rootfsOf(layout);
    const read = (p: string) => readFile(path.join(root, p), "utf8");
    assert.equal(await read("multi.txt"), "foo bar:box-foo:123 456\n");
    assert.equal(await read("quoted.txt"), "bar-box-foo\n");
    assert.equal(await read("myarg.txt"), "my_arg=def_val my_arg=d\n");
    assert.equal(await read("emptyenv.txt"), "[]\n");
    const env = (await read("env.txt")).split("\n");
    assert.ok(!env.some((l) => l.startsWith("FOO=")), "ARG FOO without a value is not in RUN's environment");
    assert.ok(env.includes("BAR="), "ARG BAR= is in RUN's environment, empty");
    assert.ok(env.includes("http_proxy=http://proxy.invalid:3128"), "proxy args reach RUN without ARG");
    assert.ok(env.includes("NO_PROXY=x"));
    const { cfg } = await layoutConfig(layout);
    assert.ok(cfg.config.Env?.includes("myenv=foo%sbar"), "legacy ENV form keeps the rest of the line");
    assert.ok(cfg.config.Env?.includes("my_arg=my_arg=def_val"));
    assert.ok(!JSON.stringify(cfg).includes("proxy.invalid"), "proxy args are in neither the config nor the history");
    // History flattening: |count, then the final values in first-declaration order.
    const run = createdBy(cfg).find((c) => c.startsWith("RUN "));
    assert.ok(run?.startsWith("RUN |9 a3=box-foo a4=123 456 a1=foo bar q2=box-foo q3=bar-box-foo BAR= "), run);
    assert.ok(run?.includes(" foo=bar2 bar=123 /bin/sh -c echo "), run);
    assert.ok(!run?.includes("foo=bar "), run);
  });

  test("build-arg set to an empty string counts as unset for :- ; an override wins", async () => {
    const df = ["FROM " + fx.base, "ARG my_arg", 'ENV my_arg "my_arg=${my_arg:-def_val}"'];
    const empty = await build(df, ["--build-arg", "my_arg="]);
    assert.equal(empty.r.code, 0, empty.r.stderr);
    assert.ok((await layoutConfig(empty.layout)).cfg.config.Env?.includes("my_arg=my_arg=def_val"));
    const set = await build(df, ["--build-arg", "my_arg=override"]);
    assert.equal(set.r.code, 0, set.r.stderr);
    assert.ok((await layoutConfig(set.layout)).cfg.config.Env?.includes("my_arg=my_arg=override"));
  });

  test("${VAR:?msg} in global and stage ARG defaults fails unless the build-arg is given", async () => {
    const global = ["ARG IMG=${NOPE:?required}", "FROM " + fx.base];
    const g1 = await build(global);
    assert.notEqual(g1.r.code, 0);
    assert.match(g1.r.stderr, /NOPE: required/);
    const g2 = await build(global, ["--build-arg", "IMG=x"]);
    assert.equal(g2.r.code, 0, g2.r.stderr);
    const stage = ["FROM " + fx.base, "ARG FOO", 'ARG BAR=${FOO:?"foo missing"}', "RUN true"];
    const s1 = await build(stage);
    assert.notEqual(s1.r.code, 0);
    assert.match(s1.r.stderr, /FOO: foo missing/);
    // One location, the line's own, however the error travelled.
    const erro = s1.r.stderr.split("\n").find((l) => l.startsWith("ERRO")) ?? "";
    assert.equal(erro.match(/Dockerfile:\d+/g)?.join(), "Dockerfile:3", erro);
    assert.equal((await build(stage, ["--build-arg", "FOO=1"])).r.code, 0);
    assert.equal((await build(stage, ["--build-arg", "BAR=1"])).r.code, 0, "giving BAR skips its default");
  });

  test("TARGETSTAGE and the platform args: implicit in FROM, declared in a stage, overridden by a build-arg", async () => {
    const df = [
      "FROM ${BASE_FOR_OS} AS foo",
      'RUN echo "[$TARGETSTAGE]" > /before.txt',
      "ARG TARGETSTAGE",
      "ARG TARGETOS",
      'RUN echo "[$TARGETSTAGE][$TARGETOS][$TARGETARCH]" > /after.txt',
      "FROM foo",
      "ARG TARGETSTAGE",
      'RUN echo "[$TARGETSTAGE]" > /last.txt',
    ];
    // `${TARGETOS}` is usable in FROM without any ARG declaration: the tag resolves to `latlinux`.
    await pushLayoutToRegistry(await busyboxOciLayout(), fx.reg.host, "busybox:latlinux");
    const withOs = df.map((l) => l.replace("${BASE_FOR_OS}", `${fx.reg.host}/busybox:lat\${TARGETOS}`));
    const all = await build(withOs);
    assert.equal(all.r.code, 0, all.r.stderr + all.r.stdout);
    const root = await rootfsOf(all.layout);
    const read = (p: string) => readFile(path.join(root, p), "utf8");
    assert.equal(await read("before.txt"), "[]\n");
    assert.equal(await read("after.txt"), "[default][linux][]\n");
    assert.equal(await read("last.txt"), "[default]\n");
    const target = await build(
      df.map((l) => l.replace("${BASE_FOR_OS}", fx.base)),
      ["--target", "FOO", "--build-arg", "TARGETOS=freebsd"],
    );
    assert.equal(target.r.code, 0, target.r.stderr);
    const troot = await rootfsOf(target.layout);
    assert.equal(await readFile(path.join(troot, "after.txt"), "utf8"), "[foo][freebsd][]\n");
  });

  test("ENV-only scratch image: Env with default PATH, platform, WorkingDir, no layers, one history entry", async () => {
    const { r, layout } = await build(["FROM scratch", "ENV foo=bar"]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const { cfg, layers } = await layoutConfig(layout);
    assert.deepEqual(cfg.config.Env, ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "foo=bar"]);
    assert.ok(cfg.os && cfg.architecture);
    assert.equal(cfg.config.WorkingDir, "/");
    assert.equal(layers, 0);
    assert.equal(cfg.rootfs.type, "layers");
    assert.deepEqual(cfg.history, [
      {
        created: cfg.history[0]?.created,
        created_by: "ENV foo=bar",
        empty_layer: true,
        comment: "buildkit.dockerfile.v0",
      },
    ]);
  });

  test("scratch metadata: WORKDIR creates the dir, SHELL + shell-form ENTRYPOINT, LABEL + --label, EXPOSE, HEALTHCHECK, MAINTAINER history", async () => {
    const { r, layout } = await build(
      [
        "FROM scratch",
        "WORKDIR /foo",
        'SHELL ["ls"]',
        "ENTRYPOINT my entrypoint",
        "LABEL foo=bar",
        'ARG PORTS="3000 4000/udp"',
        "EXPOSE $PORTS",
        "EXPOSE 5000 2375/tcp 1234/udp",
        "HEALTHCHECK --interval=1s --timeout=10s --start-period=3s --start-interval=100ms --retries=5 CMD hello world",
        "MAINTAINER someone",
      ],
      ["--label", "bar=baz"],
    );
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const { cfg, layers } = await layoutConfig(layout);
    assert.deepEqual(cfg.config.Entrypoint, ["ls", "my entrypoint"]);
    assert.deepEqual(cfg.config.Labels, { foo: "bar", bar: "baz" });
    assert.deepEqual(Object.keys(cfg.config.ExposedPorts ?? {}).sort(), [
      "1234/udp",
      "2375/tcp",
      "3000/tcp",
      "4000/udp",
      "5000/tcp",
    ]);
    assert.deepEqual(cfg.config.Healthcheck?.Test, ["CMD-SHELL", "hello world"]);
    assert.equal(cfg.author, "someone");
    assert.equal(cfg.config.WorkingDir, "/foo");
    assert.equal(layers, 1, "WORKDIR /foo is the only layer");
    assert.equal(cfg.rootfs.type, "layers");
    const h = createdBy(cfg);
    assert.ok(h.includes("EXPOSE [1234/udp 2375/tcp 5000/tcp]"), h.join("\n"));
    assert.ok(h.includes("EXPOSE [3000/tcp 4000/udp]"), h.join("\n"));
    assert.ok(
      h.includes(
        "HEALTHCHECK {Test:[CMD-SHELL hello world] Interval:1s Timeout:10s StartPeriod:3s StartInterval:100ms Retries:5}",
      ),
      h.join("\n"),
    );
    for (const e of cfg.history) {
      assert.ok(e.created, `created set on ${e.created_by}`);
      const meta = /^(LABEL|EXPOSE|ENTRYPOINT|SHELL|HEALTHCHECK|MAINTAINER|ARG) /.test(e.created_by ?? "");
      if (meta) assert.equal(e.empty_layer, true, e.created_by);
    }
    const root = await rootfsOf(layout);
    assert.ok((await lstat(path.join(root, "foo"))).isDirectory());
  });

  test("USER ids and groups, ENTRYPOINT does not affect RUN, WORKDIR ownership, labels inherited, host hostname", async () => {
    const { r, layout } = await build([
      `FROM ${fx.base} AS parent`,
      "LABEL parent=1",
      "FROM parent",
      'ENTRYPOINT ["/nosuchcmd"]',
      'RUN ["ls"]',
      "RUN echo wheel:x:10:root >> /etc/group && mkdir -m 777 /out && mkdir /owned && chown 33:33 /owned",
      'RUN echo "$(id -u):$(id -g):$(id -G)" > /out/root.txt',
      "USER kiln",
      'RUN echo "$(id -u):$(id -g):$(id -G)" > /out/kiln.txt',
      "WORKDIR /made-by-kiln",
      "WORKDIR /owned",
      "USER 1042:1043",
      'RUN echo "$(id -u):$(id -g):$(id -G)" > /out/numeric.txt',
      "USER 1234",
      'RUN echo "$(id -u):$(id -g):$(id -G)" > /out/unknown.txt',
      "USER kiln:root",
      'RUN echo "$(id -u):$(id -g):$(id -G)" > /out/name-group.txt',
      "USER root",
      "RUN hostname > /out/hostname.txt",
      "USER nobody",
      "LABEL child=2",
    ]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const root = await rootfsOf(layout);
    const read = (p: string) => readFile(path.join(root, "out", p), "utf8");
    assert.equal(await read("root.txt"), "0:0:0 10\n");
    assert.equal(await read("kiln.txt"), "1000:1000:1000 2000\n");
    assert.equal(await read("numeric.txt"), "1042:1043:1043\n");
    assert.equal(await read("unknown.txt"), "1234:0:0\n");
    assert.equal(await read("name-group.txt"), "1000:0:0\n");
    // Like kaniko, RUN shares the build host's UTS namespace (docs/buildkit-checklist.md 9.9).
    assert.equal(await read("hostname.txt"), `${hostname()}\n`);
    const made = await lstat(path.join(root, "made-by-kiln"));
    assert.equal(`${made.uid}:${made.gid}`, "1000:1000", "WORKDIR created under USER kiln is owned by kiln");
    const owned = await lstat(path.join(root, "owned"));
    assert.equal(`${owned.uid}:${owned.gid}`, "33:33", "an existing WORKDIR keeps its owner");
    const { cfg } = await layoutConfig(layout);
    assert.equal(cfg.config.User, "nobody");
    assert.deepEqual(cfg.config.Labels, { parent: "1", child: "2" });
  });

  test("SOURCE_DATE_EPOCH as a build arg or a global ARG default sets every new created time; same inputs give the same digest", async () => {
    const df = [`FROM ${fx.base}`, "RUN echo x > /x", "WORKDIR /w", "COPY f.txt /f.txt", "LABEL a=b"];
    const files = { "f.txt": "f\n" };
    const epoch = ["--build-arg", "SOURCE_DATE_EPOCH=1700000000"];
    const a = await build(df, epoch, files);
    assert.equal(a.r.code, 0, a.r.stderr + a.r.stdout);
    const { cfg, digest } = await layoutConfig(a.layout);
    const stamp = new Date(1700000000 * 1000).toISOString();
    assert.equal(new Date(cfg.created ?? "").toISOString(), stamp);
    const baseEntries = cfg.history.length - df.length + 1;
    for (const h of cfg.history.slice(baseEntries)) assert.equal(new Date(h.created ?? "").toISOString(), stamp);
    const b = await build(df, epoch, files);
    assert.equal(b.r.code, 0, b.r.stderr);
    assert.equal((await layoutConfig(b.layout)).digest, digest, "two builds of the same inputs");
    // The default of a global ARG SOURCE_DATE_EPOCH counts too; a build-arg overrides it.
    const withDefault = ["ARG SOURCE_DATE_EPOCH=1600000000", ...df];
    const d = await build(withDefault, [], files);
    assert.equal(d.r.code, 0, d.r.stderr);
    assert.equal((await layoutConfig(d.layout)).cfg.created, new Date(1600000000 * 1000).toISOString());
    const o = await build(withDefault, epoch, files);
    assert.equal(o.r.code, 0, o.r.stderr);
    assert.equal((await layoutConfig(o.layout)).cfg.created, stamp);
    // Files a step writes get mtimes clamped to the epoch.
    const root = await rootfsOf(a.layout);
    assert.ok((await lstat(path.join(root, "x"))).mtimeMs <= 1700000000 * 1000);
    const bad = await build(df, ["--build-arg", "SOURCE_DATE_EPOCH=not-a-timestamp"], files);
    assert.notEqual(bad.r.code, 0);
    assert.match(bad.r.stderr, /invalid SOURCE_DATE_EPOCH/);
  });

  test("a lowercase dockerfile and a symlinked Dockerfile are found; a failing RUN names its command; Dockerfile.dockerignore wins; a lone ! fails", async () => {
    const lower = path.join(fx.work, "lower");
    await writeTree(lower, { dockerfile: `FROM ${fx.base}\nRUN echo lower > /lower.txt\n` });
    const out = path.join(fx.work, "lower-out");
    const r = await runKiln(["build", "--context", lower, "--no-push", "--insecure-pull", "--oci-layout-path", out], {
      cwd: lower,
    });
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const root = await rootfsOf(out);
    assert.equal(await readFile(path.join(root, "lower.txt"), "utf8"), "lower\n");

    // A lowercase `dockerfile` that links out of its directory is not followed there (in a fetched context it
    // could name a host file, whose first line a parse error would print).
    const hostFile = path.join(fx.work, "host-file.txt");
    await writeFile(hostFile, "root:SECRETHASH:19000:0:99999:7:::\n");
    const lowerOut = path.join(fx.work, "lower-out-link");
    await mkdir(lowerOut, { recursive: true });
    await symlink(hostFile, path.join(lowerOut, "dockerfile"));
    const rl = await runKiln(["build", "--context", lowerOut, "--no-push"], { cwd: lowerOut });
    assert.notEqual(rl.code, 0);
    assert.match(rl.stderr, /no such file/);
    assert.doesNotMatch(rl.stderr + rl.stdout, /SECRETHASH/);

    const linked = path.join(fx.work, "linked");
    await writeTree(linked, { "sub/real.Dockerfile": `FROM ${fx.base}\nRUN invalidcmd\n` });
    await symlink("sub/real.Dockerfile", path.join(linked, "Dockerfile"));
    const r2 = await runKiln(["build", "--context", linked, "--no-push", "--insecure-pull"], { cwd: linked });
    assert.equal(r2.code, 127, r2.stderr);
    assert.match(r2.stderr, /\/bin\/sh -c invalidcmd/);
    assert.deepEqual((await readdir(linked)).sort(), ["Dockerfile", "sub"]);

    // <Dockerfile>.dockerignore next to the Dockerfile wins over the context's .dockerignore.
    const ign = path.join(fx.work, "ignore-override");
    await writeTree(ign, {
      Dockerfile: `FROM ${fx.base}\nCOPY . /ctx/\n`,
      "Dockerfile.dockerignore": "b.txt\n",
      ".dockerignore": "a.txt\n",
      "a.txt": "a\n",
      "b.txt": "b\n",
    });
    const io = path.join(fx.work, "ignore-out");
    const r3 = await runKiln(["build", "--context", ign, "--no-push", "--insecure-pull", "--oci-layout-path", io], {
      cwd: ign,
    });
    assert.equal(r3.code, 0, r3.stderr);
    assert.deepEqual((await readdir(path.join(await rootfsOf(io), "ctx"))).sort(), [
      ".dockerignore",
      "Dockerfile",
      "Dockerfile.dockerignore",
      "a.txt",
    ]);

    // A lone "!" in .dockerignore fails the build (it does not hang).
    const bang = path.join(fx.work, "ignore-bang");
    await writeTree(bang, { Dockerfile: `FROM ${fx.base}\nCOPY . /ctx/\n`, ".dockerignore": "!\n" });
    const r4 = await runKiln(["build", "--context", bang, "--no-push", "--insecure-pull"], {
      cwd: bang,
      timeoutMs: 60_000,
    });
    assert.notEqual(r4.code, 0);
    assert.notEqual(r4.code, 137, "killed by the timeout: the build hung");
  });
});
