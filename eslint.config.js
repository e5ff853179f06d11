// Lint configuration. The "layers" rule below enforces design.md §2: each layer may import only
// the layers listed for it. A violation fails `npm run lint` and so CI.
import js from "@eslint/js";
import tseslint from "typescript-eslint";
import globals from "globals";

/** Which src/<layer> directories each layer may import from (besides itself and src/common). */
const allowed = {
  common: [],
  dockerfile: [],
  image: [],
  registry: ["image"],
  context: ["dockerfile", "image", "fs"],
  fs: ["image"],
  run: [],
  cache: ["image", "registry"],
  build: ["dockerfile", "image", "registry", "context", "fs", "run", "cache"],
  cli: ["build", "dockerfile", "image", "registry", "context", "fs", "run", "cache"],
};

const layerConfigs = Object.entries(allowed).map(([layer, deps]) => {
  const forbidden = Object.keys(allowed).filter((l) => l !== layer && l !== "common" && !deps.includes(l));
  return {
    files: [`src/${layer}/**/*.ts`],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: forbidden.map((l) => ({
            group: [`**/${l}/*`, `../${l}`, `../../${l}`],
            message: `src/${layer} must not depend on src/${l} (design.md §2 dependency direction)`,
          })),
        },
      ],
    },
  };
});

export default tseslint.config(
  { ignores: ["dist/**", "node_modules/**", "**/*.d.ts", "native/**", ".tmp/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "no-console": "error",
    },
  },
  {
    files: ["src/cli/**/*.ts", "test/**/*.ts", "bench/**/*.ts", "scripts/**", "**/*.test.ts", "bin/**"],
    rules: { "no-console": "off" },
  },
  ...layerConfigs,
);
