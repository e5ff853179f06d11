/**
 * Known differences between kiln and `docker build`: one line per case with its reason. A case listed here
 * whose images differ is reported as "known" and does not fail the run; any difference in a case NOT listed
 * fails it. When kiln is fixed, the case turns "identical" and the run reports the stale entry, so remove it.
 * docs/fidelity.md describes each entry with a minimal repro.
 */
export const KNOWN_DIFFERENCES: Readonly<Record<string, string>> = {};
