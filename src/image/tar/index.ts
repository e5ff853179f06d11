export { emptyHeader } from "./types.js";
export type { TarEntry, TarEntryType, TarHeader, TarPiece } from "./types.js";
export { readTar } from "./reader.js";
export type { ReadTarOptions } from "./reader.js";
export { TarWriter } from "./writer.js";
