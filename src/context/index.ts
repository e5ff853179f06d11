export { DirContext, cleanRel, type ContextSource } from "./dir-context.js";
export { loadIgnorePatterns } from "./dockerignore-file.js";
