import * as assert from "node:assert/strict";
import { test } from "node:test";
import { parseDockerfile } from "../dockerfile/index.js";
import { layersUnreadStages, stageUses } from "./stage-uses.js";

const unread = (lines: string[], output: number[]): number[] => {
  const df = parseDockerfile(lines.join("\n") + "\n");
  const uses = stageUses(df.stages, df.stages, (s) => s);
  return [...layersUnreadStages(df.stages, df.stages, uses, new Set(output))].sort();
};

test("a stage read only through COPY --from or RUN --mount from= has unread layers", () => {
  const lines = [
    "FROM busybox AS gen",
    "FROM busybox AS parent",
    "FROM parent AS child",
    "FROM busybox AS mounted",
    "FROM busybox",
    "COPY --from=gen /a /a",
    "COPY --from=child /b /b",
    "RUN --mount=type=bind,from=mounted,target=/m true",
  ];
  // parent is a FROM base (its layers are child's); the final stage (4) is the output.
  assert.deepEqual(unread(lines, [4]), [0, 2, 3]);
  // --target=child: child and its FROM ancestor parent are the output.
  assert.deepEqual(unread(lines, [2, 1]), [0, 3, 4]);
});

test("no stage has unread layers when the Dockerfile has an ONBUILD instruction", () => {
  assert.deepEqual(
    unread(["FROM busybox AS gen", "ONBUILD RUN true", "FROM busybox", "COPY --from=gen /a /a"], [1]),
    [],
  );
});
