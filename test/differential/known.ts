/**
 * Known differences between kiln and `docker build` (docker.io 20.10.24, BuildKit v0.8 built in): one line
 * per case with its reason. A case listed here whose images differ is reported as "known" and does not
 * fail the run; any difference in a case NOT listed fails it. When kiln is fixed the case turns
 * "identical" and the run fails on the stale entry, so remove it then. docs/fidelity.md gives each
 * difference (D1…) with a minimal repro.
 */
const D1 =
  "D1: COPY/ADD of a directory to a new dest: docker creates the dest dir 0755 root:root, kiln gives it the source dir's mode (and owner)";
const D2 = 'D2: FROM scratch: docker\'s config has WorkingDir "/", kiln leaves it unset';
const D3 =
  "D3: ADD/COPY --chmod of a directory: docker applies the mode to the contents only, kiln to the dest dir too";
const D4 = "D4: COPY --chmod=4755: docker 20.10 (BuildKit 0.8) drops setuid/setgid/sticky bits, kiln keeps them";
const D5 =
  "D5: appending to a hardlinked file in a later RUN: overlayfs copy-up breaks the link in docker, kiln keeps it";
const D6 =
  'D6: ENTRYPOINT ["x"] # comment: docker\'s JSON decoder ignores trailing text (exec form), kiln falls back to shell form';
const D7 =
  "D7: uppercase stage name (AS BUG_stage): docker 20.10 rejects it, kiln accepts it like kaniko and newer BuildKit";
const D8 =
  "D8: FROM <stage>: BuildKit lets ARG defaults see the parent stage's ARG values, kiln starts the stage's ARGs empty";
const D9 = "D9: USER root in an image without /etc/passwd: docker uses uid 0, kiln fails the WORKDIR";
const D11 = "D11: WORKDIR of an existing directory: docker commits a layer for it, kiln commits none";

export const KNOWN_DIFFERENCES: Readonly<Record<string, string>> = {
  "own/chown-chmod": D4,
  "own/hardlinks": D5,
  "own/multi-stage": D1,
  "own/workdir-layers": D11,
  "own/scratch": D2,
  "kaniko/Dockerfile_dockerignore_relative": D2,
  "kaniko/Dockerfile_test_copy": D1,
  "kaniko/Dockerfile_test_copy_reproducible": D1,
  "kaniko/Dockerfile_test_copy_root_multistage": D1,
  "kaniko/Dockerfile_test_mv_add": D1,
  "kaniko/Dockerfile_test_copy_symlink": D2,
  "kaniko/Dockerfile_test_dockerignore": D2,
  "kaniko/Dockerfile_test_ignore": D2,
  "kaniko/Dockerfile_test_copyadd_chmod": D3,
  "kaniko/Dockerfile_test_cmd": D6,
  "kaniko/Dockerfile_test_from_multistage_capital": D7,
  "kaniko/Dockerfile_test_issue_519": D7,
  "kaniko/Dockerfile_test_multistage_args_issue_1911": D8,
  "kaniko/Dockerfile_test_workdir_with_user": D9,
  "kaniko/Dockerfile_test_workdir": D11,
};
