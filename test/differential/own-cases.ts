/**
 * The project's own differential cases: behaviours from buildkit-frontend-checklist.md that a file tree or
 * an image config can show. Each case is a Dockerfile plus a context written to a temp dir at run time (so
 * that hardlinks, special bits and xattrs, which git cannot store, exist in the context). `BUSYBOX` and
 * `DEBIAN` in a Dockerfile are rewritten to the local stand-ins like kaniko's FROMs.
 */
import { execFile } from "node:child_process";
import { chmod, link, mkdir, symlink, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { promisify } from "node:util";
import { removeDir, tempDir } from "../support/tmp.js";
import type { DiffCase } from "./corpus.js";

const execFileAsync = promisify(execFile);

interface OwnCase {
  name: string;
  dockerfile: string[];
  /** Context files: path → content (string) or [content, mode]. */
  files?: Record<string, string | [string, number]>;
  /** Extra context preparation (links, xattrs, modes). */
  setup?: (ctx: string) => Promise<void>;
  buildArgs?: string[];
  /** Flags for both builders. */
  flags?: string[];
  /** When set, the case is listed but not built, for this reason. */
  skip?: string;
}

/** `setxattr <path> <name> <value>` for RUN steps (busybox has no setfattr); a `0x…` value is hex. */
async function buildSetxattr(ctx: string): Promise<void> {
  const src = path.join(ctx, "setxattr.c");
  await writeFile(
    src,
    [
      "#include <stdio.h>",
      "#include <string.h>",
      "#include <sys/xattr.h>",
      "int main(int c, char **v) {",
      '  unsigned char b[256]; size_t n = 0; const char *s = c == 4 ? v[3] : "";',
      "  if (c != 4) return 2;",
      '  if (strncmp(s, "0x", 2) == 0) { for (s += 2; s[0] && s[1] && n < sizeof b; s += 2) { unsigned x; if (sscanf(s, "%2x", &x) != 1) return 2; b[n++] = (unsigned char)x; } }',
      "  else { n = strlen(s); if (n > sizeof b) return 2; memcpy(b, s, n); }",
      "  return lsetxattr(v[1], v[2], b, n, 0) == 0 ? 0 : 1;",
      "}",
      "",
    ].join("\n"),
  );
  await execFileAsync("cc", ["-static", "-O2", "-o", path.join(ctx, "setxattr"), src]);
}

/** A RUN command giving `file` `cap_net_raw+ep` (a VFS_CAP_REVISION_2 `security.capability` value). */
const setCap = (file: string): string =>
  `setxattr ${file} security.capability 0x0100000200200000000000000000000000000000`;

const CASES: OwnCase[] = [
  {
    name: "copy-matrix",
    dockerfile: [
      "FROM busybox",
      "COPY a.txt /dst/",
      "COPY a.txt /renamed.txt",
      "COPY dir /copied-dir",
      "COPY dir/ /copied-dir-slash/",
      "COPY *.txt /globbed/",
      "COPY dir/sub/*.md /md/",
      "COPY a.txt b.txt /multi/",
      "COPY . /all/",
      'COPY ["a.txt", "/json form/"]',
      "ADD a.txt /added.txt",
      "ADD archive.tar /extracted/",
      "ADD archive.tar.gz /extracted-gz/",
      "COPY archive.tar /not-extracted/",
      "WORKDIR /wd",
      "COPY a.txt rel.txt",
      "COPY a.txt ./reldir/",
    ],
    files: {
      "a.txt": "a\n",
      "b.txt": "b\n",
      "dir/x": "x\n",
      "dir/sub/y.md": "y\n",
      "dir/sub/z.md": ["z\n", 0o600],
      "dir/empty/.keep": "",
    },
    setup: async (ctx) => {
      await mkdir(path.join(ctx, "tarsrc", "t"), { recursive: true });
      await writeFile(path.join(ctx, "tarsrc", "t", "in-tar.txt"), "from tar\n");
      await execFileAsync("tar", ["-C", path.join(ctx, "tarsrc"), "-cf", path.join(ctx, "archive.tar"), "t"]);
      await execFileAsync("tar", ["-C", path.join(ctx, "tarsrc"), "-czf", path.join(ctx, "archive.tar.gz"), "t"]);
    },
  },
  {
    name: "chown-chmod",
    dockerfile: [
      "FROM busybox",
      "COPY --chown=1000:1000 a.txt /owned-num.txt",
      "COPY --chown=1000 a.txt /owned-uid-only.txt",
      "COPY --chown=nobody:nogroup a.txt /owned-names.txt",
      "COPY --chown=1234:5678 dir /owned-dir/",
      "ADD --chown=42:42 a.txt /added-owned.txt",
      "COPY --chmod=0640 a.txt /chmod-file.txt",
      "COPY --chmod=755 dir /chmod-dir/",
      "COPY --chown=7:8 --chmod=4755 a.txt /both.txt",
      "COPY --chown=1000:1000 a.txt /new/parent/dirs/file.txt",
    ],
    files: { "a.txt": "a\n", "dir/f": ["f\n", 0o600], "dir/sub/g": "g\n" },
  },
  {
    name: "heredocs",
    skip: "docker 20.10's built-in Dockerfile frontend has no heredocs, and `# syntax=docker/dockerfile:1.4` needs the Internet",
    dockerfile: [
      "FROM busybox",
      "RUN <<EOF",
      "echo one > /heredoc-run.txt",
      "echo two >> /heredoc-run.txt",
      "EOF",
      "RUN <<-EOT sh",
      "\techo tabbed > /tabbed.txt",
      "\tEOT",
      "COPY <<EOF /heredoc-copy.txt",
      "hello $HOME",
      "EOF",
      "COPY <<'EOF' /heredoc-quoted.txt",
      "hello $HOME",
      "EOF",
    ],
  },
  {
    name: "arg-scoping",
    buildArgs: ["FROM_CLI=cli", "OVERRIDDEN=from-cli"],
    dockerfile: [
      "ARG META=meta-default",
      "ARG FROM_CLI",
      "FROM busybox",
      "ARG META",
      "ARG FROM_CLI",
      "ARG OVERRIDDEN=default",
      "ARG UNSET",
      "ARG WITH_DEFAULT=dflt",
      "ENV FROM_ENV=env-${WITH_DEFAULT}",
      "ARG WITH_DEFAULT=ignored-because-env-not",
      'RUN echo "$META|$FROM_CLI|$OVERRIDDEN|$UNSET|$WITH_DEFAULT|$FROM_ENV" > /args.txt',
      "ENV WITH_DEFAULT=env-wins",
      "ARG WITH_DEFAULT=arg-loses",
      'RUN echo "$WITH_DEFAULT" > /env-wins.txt',
      "COPY ${FROM_CLI}.txt /copied-${META}.txt",
      "LABEL meta=${META} cli=${FROM_CLI}",
      "FROM busybox AS second",
      'RUN echo "[$META][$FROM_CLI]" > /not-inherited.txt',
    ],
    files: { "cli.txt": "cli\n" },
  },
  {
    name: "onbuild-config",
    dockerfile: [
      "FROM busybox",
      "ONBUILD RUN echo triggered > /triggered",
      "ONBUILD COPY . /app",
      "ONBUILD ENV X=1",
      "RUN echo base > /base.txt",
    ],
  },
  {
    name: "multi-stage",
    buildArgs: ["V=1.2"],
    dockerfile: [
      "FROM busybox AS build",
      "ARG V",
      "RUN mkdir -p /out/sub && echo built-$V > /out/artifact && echo s > /out/sub/s && chmod 750 /out/sub",
      "RUN echo builder:x:1500:1500::/home/builder:/bin/sh >> /etc/passwd && chown -R 1500:1500 /out/sub",
      "FROM build AS derived",
      "RUN echo derived > /out/derived",
      "FROM busybox AS unused",
      "RUN echo unused > /unused",
      "FROM DEBIAN",
      "COPY --from=build /out/artifact /artifact",
      "COPY --from=0 /out/sub /sub0",
      "COPY --from=derived /out /all-out",
      "COPY --from=build --chown=2:3 /out/sub/s /chowned-s",
      "COPY --from=BUSYBOX /bin/busybox /bb",
    ],
  },
  {
    name: "user-workdir",
    dockerfile: [
      "FROM busybox",
      "RUN echo app:x:1001:1001::/home/app:/bin/sh >> /etc/passwd && echo grp:x:2002: >> /etc/group",
      "WORKDIR /as-root/nested",
      "USER app",
      "WORKDIR /as-app",
      "RUN touch made-by-app && id > id.txt",
      "USER 1001:2002",
      "RUN touch /tmp/by-uid-gid",
      "WORKDIR relative/dir",
      "USER root",
      "WORKDIR /env-$HOME",
      "ENV BASE=/from-env",
      "WORKDIR $BASE/x",
      "USER app:grp",
    ],
  },
  {
    name: "workdir-layers",
    dockerfile: ["FROM busybox", "WORKDIR /tmp", "WORKDIR /", "WORKDIR /new", "WORKDIR /new", "WORKDIR sub"],
  },
  {
    name: "volume",
    dockerfile: [
      "FROM busybox",
      "RUN mkdir /data && echo before > /data/before",
      "VOLUME /data",
      "RUN echo after > /data/after",
      'VOLUME ["/vol-json", "/vol two"]',
      "VOLUME /a /b",
      "COPY a.txt /vol-json/",
    ],
    files: { "a.txt": "a\n" },
  },
  {
    name: "whiteouts",
    dockerfile: [
      "FROM DEBIAN",
      "RUN rm -f /etc/issue.net && rm -rf /usr/share/doc/bash",
      "RUN rm -rf /usr/share/common-licenses && mkdir /usr/share/common-licenses && echo new > /usr/share/common-licenses/only",
      "RUN rm -rf /usr/share/lintian && echo now-a-file > /usr/share/lintian",
      "RUN rm /bin/true && mkdir /bin/true",
      "RUN mkdir -p /tmp/created && echo x > /tmp/created/x && rm -rf /tmp/created",
      "RUN echo 'replaced' > /etc/debian_version",
    ],
  },
  {
    name: "hardlinks",
    dockerfile: [
      "FROM busybox",
      "COPY linked/ /ctx-links/",
      "RUN echo data > /h1 && ln /h1 /h2 && mkdir /d && ln /h1 /d/h3",
      "RUN ln /bin/busybox /bb-hardlink",
      "RUN echo changed >> /h2",
    ],
    setup: async (ctx) => {
      await mkdir(path.join(ctx, "linked"));
      await writeFile(path.join(ctx, "linked", "orig"), "linked content\n");
      await link(path.join(ctx, "linked", "orig"), path.join(ctx, "linked", "other"));
    },
  },
  {
    name: "symlinks",
    dockerfile: [
      "FROM busybox",
      "COPY links/ /links/",
      "RUN ln -s /links/target /abs-link && ln -s ../links/target /tmp/rel-link && ln -s /nowhere /dangling",
      "RUN mkdir /real-dir && ln -s /real-dir /link-dir",
      "COPY a.txt /link-dir/",
      "COPY links/to-file /copied-link",
    ],
    files: { "a.txt": "a\n", "links/target": "t\n" },
    setup: async (ctx) => {
      await symlink("target", path.join(ctx, "links", "to-file"));
      await symlink("/etc/passwd", path.join(ctx, "links", "abs"));
      await symlink("missing", path.join(ctx, "links", "dangling"));
    },
  },
  {
    name: "special-bits",
    dockerfile: [
      "FROM busybox",
      "COPY modes/ /modes/",
      "RUN touch /suid /sgid /plain && chmod 4755 /suid && chmod 2755 /sgid && chmod 0600 /plain",
      "RUN mkdir /sticky /sgid-dir && chmod 1777 /sticky && chmod 2775 /sgid-dir && touch /sgid-dir/inherit",
      "RUN mkfifo /fifo && mknod /chardev c 1 3",
    ],
    setup: async (ctx) => {
      await mkdir(path.join(ctx, "modes"));
      for (const [name, mode] of [
        ["suid", 0o4755],
        ["sgid", 0o2711],
        ["sticky-dir", 0o1777],
        ["ro", 0o444],
        ["noexec", 0o640],
      ] as const) {
        const p = path.join(ctx, "modes", name);
        if (name.endsWith("-dir")) await mkdir(p);
        else await writeFile(p, `${name}\n`);
        await chmod(p, mode);
      }
    },
  },
  {
    name: "xattrs",
    dockerfile: ["FROM busybox", "COPY caps/ /caps/", "ADD caps/ping /added-ping"],
    setup: async (ctx) => {
      await mkdir(path.join(ctx, "caps"));
      const p = path.join(ctx, "caps", "ping");
      await writeFile(p, "#!/bin/sh\n");
      await chmod(p, 0o755);
      await execFileAsync("setcap", ["cap_net_raw+ep", p]);
      await writeFile(path.join(ctx, "caps", "plain"), "no caps\n");
      // A user.* xattr in the context: docker build (BuildKit) records none in the layer, nor does kiln.
      await execFileAsync("setfattr", ["-n", "user.note", "-v", "context", path.join(ctx, "caps", "plain")]);
    },
  },
  {
    // xattrs a RUN sets (busybox has no setfattr: a static helper from the context sets them), a `user.*` one
    // on a file and on a directory: docker build's layer records neither, and neither does kiln's.
    name: "xattrs-run",
    dockerfile: [
      "FROM busybox",
      "COPY setxattr /usr/local/bin/setxattr",
      "RUN echo x > /ran && setxattr /ran user.run from-run && mkdir /made && setxattr /made user.dir from-run",
    ],
    setup: buildSetxattr,
  },
  {
    // A file capability a RUN sets is in the RUN's layer.
    name: "xattrs-run-capability",
    dockerfile: [
      "FROM busybox",
      "COPY setxattr /usr/local/bin/setxattr",
      `RUN echo x > /pinger && ${setCap("/pinger")}`,
    ],
    setup: buildSetxattr,
  },
  {
    // COPY --from of a file carrying a capability in its stage.
    name: "xattrs-copy-from",
    dockerfile: [
      "FROM busybox AS caps",
      "COPY setxattr /usr/local/bin/setxattr",
      `RUN echo x > /pinger && ${setCap("/pinger")}`,
      "FROM busybox",
      "COPY --from=caps /pinger /pinger",
    ],
    setup: buildSetxattr,
  },
  {
    // The way base images are made: FROM scratch + ADD of a rootfs tarball holding device nodes, a FIFO
    // and a file capability (GNU tar --xattrs writes it as a SCHILY.xattr PAX record).
    name: "add-rootfs-special",
    dockerfile: ["FROM scratch", "ADD rootfs.tar /", "ADD rootfs.tar /nested/"],
    setup: async (ctx) => {
      const src = `${ctx}-rootfs`;
      await mkdir(path.join(src, "dev"), { recursive: true });
      await mkdir(path.join(src, "bin"));
      await mkdir(path.join(src, "run"));
      await execFileAsync("mknod", ["-m", "666", path.join(src, "dev", "null"), "c", "1", "3"]);
      await execFileAsync("mknod", ["-m", "660", path.join(src, "dev", "loop0"), "b", "7", "0"]);
      await execFileAsync("mkfifo", ["-m", "600", path.join(src, "run", "initctl")]);
      await writeFile(path.join(src, "bin", "ping"), "#!/bin/sh\n");
      await chmod(path.join(src, "bin", "ping"), 0o755);
      await execFileAsync("setcap", ["cap_net_raw+ep", path.join(src, "bin", "ping")]);
      await writeFile(path.join(src, "bin", "plain"), "plain\n");
      await execFileAsync("tar", [
        "--xattrs",
        "--xattrs-include=security.capability",
        "-C",
        src,
        "-cf",
        path.join(ctx, "rootfs.tar"),
        ".",
      ]);
    },
  },
  {
    name: "metadata",
    dockerfile: [
      "FROM busybox",
      "ENV A=1 B='two words' C=${A}-x",
      "ENV D e f",
      'LABEL l1=v1 "l 2"="v 2"',
      "LABEL multi=a \\",
      "      other=b",
      "EXPOSE 80 443/tcp 53/udp",
      "EXPOSE ${A}000",
      "STOPSIGNAL SIGKILL",
      "HEALTHCHECK --interval=5s --timeout=2s --start-period=1s --retries=4 CMD wget -q localhost || exit 1",
      'SHELL ["/bin/sh", "-ec"]',
      "RUN echo shell > /shell.txt",
      "USER 1000:1000",
      "WORKDIR /srv",
      'ENTRYPOINT ["/bin/sh", "-c"]',
      "CMD echo shell-form",
    ],
  },
  {
    name: "cmd-entrypoint-reset",
    dockerfile: ["FROM busybox", 'CMD ["a"]', "ENTRYPOINT echo ep", "HEALTHCHECK NONE"],
  },
  {
    name: "dockerignore",
    dockerfile: ["FROM busybox", "COPY . /ctx/"],
    files: {
      ".dockerignore": "*.log\n!keep.log\nsecret/\n**/*.tmp\n",
      "a.txt": "a\n",
      "x.log": "x\n",
      "keep.log": "k\n",
      "secret/s": "s\n",
      "deep/er/f.tmp": "t\n",
      "deep/er/f.txt": "f\n",
    },
  },
  {
    // A source that is a symlink to an ignored file: the link is in the context, its target is not.
    name: "dockerignore-symlink-file",
    dockerfile: ["FROM busybox", "COPY link /x"],
    files: { ".dockerignore": ".env\n", ".env": "TOPSECRET\n", "a.txt": "a\n" },
    setup: async (ctx) => symlink(".env", path.join(ctx, "link")),
  },
  {
    // A symlink to an ignored directory, named as a source through it.
    name: "dockerignore-symlink-dir",
    dockerfile: ["FROM busybox", "COPY dirlink/s /y"],
    files: { ".dockerignore": "secret/\n", "secret/s": "TOPSECRET\n", "a.txt": "a\n" },
    setup: async (ctx) => symlink("secret", path.join(ctx, "dirlink")),
  },
  {
    name: "scratch",
    dockerfile: ["FROM scratch", "COPY a.txt /", "COPY dir /dir", 'CMD ["/a.txt"]'],
    files: { "a.txt": "a\n", "dir/b": "b\n" },
  },
];

/** Writes every own case's context into a temp dir; `cleanup` removes them. */
export async function ownCases(): Promise<{ cases: DiffCase[]; cleanup: () => Promise<void> }> {
  const root = await tempDir("diff-own");
  const cases: DiffCase[] = [];
  for (const c of CASES) {
    const ctx = path.join(root, c.name);
    await mkdir(ctx, { recursive: true });
    for (const [rel, spec] of Object.entries(c.files ?? {})) {
      const p = path.join(ctx, rel);
      await mkdir(path.dirname(p), { recursive: true });
      const [content, mode] = typeof spec === "string" ? [spec, 0o644] : spec;
      await writeFile(p, content);
      await chmod(p, mode);
    }
    await c.setup?.(ctx);
    const dockerfile = path.join(root, `${c.name}.Dockerfile`);
    const text = c.dockerfile
      .map((l) => l.replace(/\bBUSYBOX\b/g, "busybox").replace(/\bDEBIAN\b/g, "debian"))
      .join("\n");
    await writeFile(dockerfile, text + "\n");
    cases.push({
      name: `own/${c.name}`,
      dockerfile,
      context: ctx,
      buildArgs: c.buildArgs ?? [],
      dockerFlags: c.flags ?? [],
      kilnFlags: c.flags ?? [],
      ...(c.skip !== undefined ? { skip: c.skip } : {}),
    });
  }
  return { cases, cleanup: () => removeDir(root) };
}
