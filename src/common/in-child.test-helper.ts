import { spawnSync } from "node:child_process";

/**
 * Evaluates `expression` in a child Node process with the module at `module` imported as `m`, and
 * returns its JSON value. A hang guard for synchronous code, which a node:test timeout cannot
 * interrupt: the child is killed after `timeoutMs`, and that is an error naming what hung.
 */
export function evalInChild(module: URL, expression: string, timeoutMs = 20_000): unknown {
  const script = `const m = await import(${JSON.stringify(module.href)}); process.stdout.write(JSON.stringify(${expression}));`;
  const r = spawnSync(process.execPath, [...process.execArgv, "--input-type=module", "-e", script], {
    encoding: "utf8",
    timeout: timeoutMs,
  });
  if (r.error !== undefined || r.status !== 0) {
    throw new Error(
      `${expression.slice(0, 80)}: ${r.signal !== null ? `still running after ${timeoutMs} ms (killed)` : `exit ${r.status}`}\n${r.stderr}`,
    );
  }
  return JSON.parse(r.stdout) as unknown;
}
