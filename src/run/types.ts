/** How a RUN command is isolated from the machine kiln runs on (design.md §3). */
export type Isolation = "in-place" | "chroot" | "userns";

/** A mount made for the duration of one RUN; `target` is a path inside the build root. */
export type RunMount =
  | { kind: "bind"; source: string; target: string; readonly: boolean }
  | { kind: "tmpfs"; target: string; sizeBytes?: number };

/** Everything needed to execute one RUN command. Container paths (`cwd`, mount targets) are inside `root`. */
export interface RunSpec {
  /** Host directory holding the build root ("/" for the in-place back-end). */
  root: string;
  /** The command; argv[0] without a slash is looked up in the image's PATH inside the root. */
  argv: string[];
  /** The command's complete environment as "K=V" strings. */
  env: string[];
  /** Working directory inside the root; it must exist. */
  cwd: string;
  uid: number;
  gid: number;
  /** Supplementary groups. */
  groups: number[];
  /** "none" runs the command in an empty network namespace (only `lo`). */
  network: "host" | "none";
  mounts: RunMount[];
  /** Bind (copies of) the host's /etc/resolv.conf and /etc/hosts into the root. */
  hostNetworkFiles: boolean;
  /**
   * Run on an overlay mounted over `root` in the command's private mount namespace (the overlay
   * snapshot back-end): lower dirs topmost first, a fresh upper dir and a work dir on the upper's
   * filesystem. Absolute paths without ':' or ','. Needs the chroot back-end with mount namespaces.
   * `listing`: a new file kiln-exec writes a listing of `upper` to after the command's processes are gone
   * (kiln-exec `--list-upper`; removed again when the listing fails).
   */
  overlay?: { lower: string[]; upper: string; work: string; listing?: string | undefined } | undefined;
}

/** How a RUN command ended: `exitCode` is 128+n when it was killed by signal n (named in `signal`). */
export interface RunResult {
  exitCode: number;
  signal?: string;
}

/** Receives the command's output as it arrives. */
export interface RunIo {
  stdout: (chunk: Buffer) => void;
  stderr: (chunk: Buffer) => void;
}

/** What isolation mechanisms actually work on this machine, found by trying them. */
export interface IsolationProbe {
  /** chroot(2) into a directory works (root or CAP_SYS_CHROOT). */
  chroot: boolean;
  /** A private mount namespace with bind mounts works without a user namespace. */
  mountns: boolean;
  /** A new pid namespace with a fresh /proc works (directly, or inside a user namespace). */
  pidns: boolean;
  /** A user namespace with a mount namespace and chroot inside it works. */
  userns: boolean;
  /** An empty network namespace can be created (directly, or inside a user namespace). */
  netns: boolean;
  /**
   * An overlay can be mounted over a root in a private mount namespace (chroot with mount namespaces,
   * as root), with an upper dir that takes `trusted.*` xattrs: the overlay snapshot back-end works.
   */
  overlay: boolean;
  /** Where the overlay check ran: `overlay` holds for roots on this directory's filesystem. */
  overlayDir?: string;
  /**
   * The helper writes a listing of an overlay's upper (kiln-exec `--list-upper`, named in its probe
   * output); absent or false (an older helper): the runner does not ask for one and the snapshot walks
   * the upper.
   */
  listUpper?: boolean;
  /** kiln itself runs inside a container (kaniko's detection). */
  inContainer: boolean;
}

/** Executes RUN commands with one isolation back-end. */
export interface Runner {
  readonly isolation: Isolation;
  readonly capabilities: IsolationProbe;
  /**
   * Runs `spec` to completion and resolves with its exit status; rejects with KilnError
   * RUN_SETUP_FAILED when the command could not be started. Aborting `signal` kills the command
   * (SIGTERM, SIGKILL 2 s later) and resolves with the signal that ended it.
   */
  run(spec: RunSpec, io: RunIo, signal?: AbortSignal): Promise<RunResult>;
}
