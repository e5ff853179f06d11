import type { Readable } from "node:stream";
import type { TarPiece } from "./entry-body.js";

export type { TarPiece } from "./entry-body.js";

/** Kind of a tar entry, independent of the on-disk type flag that encoded it. */
export type TarEntryType = "file" | "hardlink" | "symlink" | "char" | "block" | "dir" | "fifo";

/** Metadata of one tar entry, after PAX / GNU extensions have been applied. */
export interface TarHeader {
  /** Path as stored (reader: PAX `path` / GNU long name applied; not otherwise normalised). */
  name: string;
  type: TarEntryType;
  /** Permission bits plus setuid/setgid/sticky (`& 0o7777`). */
  mode: number;
  uid: number;
  gid: number;
  /** Body length in bytes (0 for non-files; for sparse files the expanded size). */
  size: number;
  /** Seconds since the epoch; fractional values keep sub-second precision through PAX. */
  mtime: number;
  atime?: number;
  ctime?: number;
  /** Symlink target or hardlink target; "" otherwise. */
  linkname: string;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
  /** Extended attributes (`SCHILY.xattr.<name>`), values binary-exact. */
  xattrs: Map<string, Buffer>;
  /**
   * Every other PAX record not mapped to a field (reader: the entry's own records; unknown keys of global
   * headers are not copied into every entry); extra records to write (writer).
   */
  pax: Map<string, Buffer>;
}

/** One entry streamed by {@link readTar}; `body` yields exactly `header.size` bytes. */
export interface TarEntry {
  header: TarHeader;
  /** The body as a stream (made when first read; not together with {@link content}). */
  readonly body: Readable;
  /** The whole body (sparse holes filled) in one buffer, without a stream: for small bodies. */
  content(): Promise<Buffer>;
  /**
   * The stored data with each piece's offset in the file, for writers that leave holes: the bytes between
   * pieces and after the last one (up to `header.size`) are the zeros of a sparse file's holes, never
   * produced. Not together with {@link body} or {@link content}.
   */
  pieces(): AsyncIterable<TarPiece>;
}

/** A header with defaults: mode 0o644 (0o755 for directories), ids 0, mtime 0, no links or extensions. */
export function emptyHeader(name: string, type: TarEntryType): TarHeader {
  return {
    name,
    type,
    mode: type === "dir" ? 0o755 : 0o644,
    uid: 0,
    gid: 0,
    size: 0,
    mtime: 0,
    linkname: "",
    uname: "",
    gname: "",
    devmajor: 0,
    devminor: 0,
    xattrs: new Map(),
    pax: new Map(),
  };
}
