/**
 * Known differences between kiln and `docker build` (docker.io 20.10.24, BuildKit v0.8 built in): one line
 * per case with its reason. A case listed here whose images differ is reported as "known" and does not
 * fail the run; any difference in a case NOT listed fails it. When kiln is fixed the case turns
 * "identical" and the run fails on the stale entry, so remove it then. docs/fidelity.md gives each
 * difference (D1…) with a minimal repro.
 */
const D4 = "D4: COPY --chmod=4755: docker 20.10 (BuildKit 0.8) drops setuid/setgid/sticky bits, kiln keeps them";
const D7 =
  "D7: uppercase stage name (AS BUG_stage): docker 20.10 rejects it, kiln accepts it like kaniko and newer BuildKit";

const D12 =
  "D12: --single-snapshot (a kaniko flag docker does not have) makes one layer per stage: same files, fewer layers";

export const KNOWN_DIFFERENCES: Readonly<Record<string, string>> = {
  "own/chown-chmod": D4,
  "kaniko/Dockerfile_test_from_multistage_capital": D7,
  "kaniko/Dockerfile_test_issue_519": D7,
  "kaniko/Dockerfile_test_add": D12,
  "kaniko/Dockerfile_test_scratch": D12,
};
