/**
 * The setup most whole-build suites share: a real docker-registry on loopback (optionally holding the
 * offline busybox base as `busybox:latest`) and a work directory under the test temp root, both created
 * before the suite's first test and removed after its last one.
 */
import { after, before } from "node:test";
import { startBusyboxRegistry } from "./busybox-registry.js";
import { startFaultProxy, type FaultProxy } from "./fault-proxy.js";
import { startRegistry, type TestRegistry } from "./registry.js";
import { removeDir, tempDir } from "./tmp.js";

/** What a suite gets from {@link useSuiteFixture}; read the fields inside tests and hooks only. */
export interface SuiteFixture {
  /** The registry (throws with `registry: "none"`). */
  readonly reg: TestRegistry;
  /** `<host>/busybox:latest` (throws unless `registry: "busybox"`). */
  readonly base: string;
  /** The suite's work directory (absolute, empty at the start). */
  readonly work: string;
  /** A fault proxy in front of the registry, recording requests (throws unless `proxy: true`). */
  readonly proxy: FaultProxy;
}

/** Options of {@link useSuiteFixture}. */
export interface SuiteFixtureOptions {
  /** `busybox` (default): a registry holding busybox:latest; `empty`: a bare registry; `none`: no registry. */
  registry?: "busybox" | "empty" | "none";
  /** Also start a fault proxy in front of the registry ({@link SuiteFixture.proxy}); needs a registry. */
  proxy?: boolean;
  /** Runs once the registry and the work directory exist (e.g. to write canary files into `work`). */
  setup?: (f: SuiteFixture) => Promise<void>;
  /** Runs first when the suite ends, before the registry stops and the work directory is removed. */
  teardown?: () => Promise<void>;
}

/**
 * Registers `before`/`after` hooks on the enclosing `describe` (call it synchronously in the suite's
 * body) that start the registry and create `<test tmp>/<prefix>-XXXXXX`, and that stop and remove them.
 */
export function useSuiteFixture(prefix: string, opts: SuiteFixtureOptions = {}): SuiteFixture {
  const kind = opts.registry ?? "busybox";
  let reg: TestRegistry | undefined;
  let base: string | undefined;
  let work: string | undefined;
  let proxy: FaultProxy | undefined;
  const need = <T>(v: T | undefined, what: string): T => {
    if (v === undefined) throw new Error(`suite fixture "${prefix}": ${what} is not available here`);
    return v;
  };
  const fixture: SuiteFixture = {
    get reg() {
      return need(reg, kind === "none" ? "the registry (registry: none)" : "the registry (before setup)");
    },
    get base() {
      return need(base, kind === "busybox" ? "the base image (before setup)" : `the base image (registry: ${kind})`);
    },
    get work() {
      return need(work, "the work directory (before setup)");
    },
    get proxy() {
      return need(proxy, opts.proxy === true ? "the proxy (before setup)" : "the proxy (proxy: true not set)");
    },
  };
  before(async () => {
    if (kind === "busybox") ({ reg, base } = await startBusyboxRegistry());
    else if (kind === "empty") reg = await startRegistry();
    if (opts.proxy === true) proxy = await startFaultProxy({ target: need(reg, "a registry for the proxy").host });
    work = await tempDir(prefix);
    await opts.setup?.(fixture);
  });
  after(async () => {
    await opts.teardown?.();
    await proxy?.stop();
    await reg?.stop();
    if (work) await removeDir(work);
  });
  return fixture;
}
