/**
 * Preloaded into kiln child processes (`NODE_OPTIONS=--import …/rss-probe.js`) by the reliability tests:
 * when the process exits, appends its peak resident set size (kB, from `process.resourceUsage()`) to the
 * file named by `KILN_RSS_FILE`. Test-only; kiln itself knows nothing of it.
 */
import { appendFileSync } from "node:fs";

const target = process.env["KILN_RSS_FILE"];
if (target !== undefined && target !== "") {
  process.on("exit", () => {
    try {
      appendFileSync(target, `${process.resourceUsage().maxRSS}\n`);
    } catch {
      // The figure is best effort: a missing directory must not change kiln's exit.
    }
  });
}
