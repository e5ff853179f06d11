import { PassThrough } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import {
  digestHex,
  HashingTap,
  TarWriter,
  type Digest,
  type Image,
  type Layer,
  type Platform,
  type TarHeader,
} from "../image/index.js";
import { artifactDiffId, artifactImage, memoryLayer } from "./artifact.js";
import type { ManifestView } from "./store.js";

/**
 * Header copies: a layer's tar with every file body left out (each file entry keeps its header with size
 * 0), stored in the cache next to the cached layers. Skeleton mode (see applyLayer's `skeletonOf`) reads
 * nothing of a layer but its headers, so a skeleton laid out from the copy is the one the layer gives,
 * while the copy of a base layer is ~0.2% of its size (Debian: 100 KiB against 48 MiB): a CI pod that
 * throws its state away fetches that instead of downloading and decompressing the base for a COPY.
 *
 * Written by hand because no tar library round-trips kiln's parsed headers (PAX times, xattrs, GNU names
 * already applied) into a header-only archive; the serialisation is kiln's own deterministic TarWriter.
 */

/** Manifest annotation (and config field) of a header copy: `{"v":1,"of":<source diffID>,"diffId":<copy's>}`. */
export const HEADER_COPY_ANNOTATION = "dev.kiln.cache.headers";
/** Format version, part of the tag: a changed format never reads an older copy. */
const HEADER_COPY_VERSION = 1;
/** Layers smaller than this (compressed) are read whole: a copy would save less than its lookup costs. */
export const HEADER_COPY_MIN_SOURCE = 1024 * 1024;
/** A copy is kept only when at most this fraction of its source's compressed size. */
const HEADER_COPY_MAX_FRACTION = 0.25;
/**
 * Capture stops once the uncompressed headers pass this multiple of the source's compressed size: tar
 * headers compress ~30:1, so such a copy would not meet {@link HEADER_COPY_MAX_FRACTION} (a layer of tiny
 * files is mostly headers).
 */
const HEADER_BYTES_LIMIT = 2;
/** And at this many bytes of uncompressed headers whatever the source's size (they are held in memory). */
const HEADER_BYTES_MAX = 64 * 1024 * 1024;

/** Receives the headers of one layer read whole, in order; `end(ok)` after the last one (or a failure). */
export interface HeaderCapture {
  add(h: TarHeader): void;
  end(ok: boolean): void;
}

/** Cache tag of the header copy of the layer with diffID `diffId`. */
export function headerCopyTag(diffId: Digest): string {
  return `hdr${HEADER_COPY_VERSION}-${digestHex(diffId)}`;
}

/** Whether a layer of `size` compressed bytes may have a header copy worth looking up or writing. */
export function headerCopyWorthIt(size: number): boolean {
  return size >= HEADER_COPY_MIN_SOURCE;
}

/** The diffID of the copy a manifest describes as the header copy of `of`; undefined otherwise. */
export function headerCopyDiffId(view: ManifestView | undefined, of: Digest): Digest | undefined {
  return artifactDiffId(view, HEADER_COPY_ANNOTATION, { v: HEADER_COPY_VERSION, of });
}

/** The one-layer image stored under {@link headerCopyTag} for the layer with diffID `of`. */
export function headerCopyImage(of: Digest, copy: Layer, platform: Platform): Image {
  const record = { v: HEADER_COPY_VERSION, of, diffId: copy.diffId };
  return artifactImage(HEADER_COPY_ANNOTATION, record, copy, platform, `kiln header copy of ${of}`);
}

/**
 * Builds the header copy of one layer from the headers an extraction reads ({@link HeaderCopyWriter.add},
 * in tar order), gzip-compressed in memory. Gives up (and {@link HeaderCopyWriter.finish} answers
 * undefined) once the copy cannot be worth keeping.
 */
export class HeaderCopyWriter {
  private readonly source: Layer;
  private readonly tar = new PassThrough();
  private readonly writer = new TarWriter(this.tar);
  private readonly plain = new HashingTap();
  private readonly packed = new HashingTap();
  private readonly chunks: Buffer[] = [];
  private readonly done: Promise<void>;
  private bytes = 0;
  private stopped = false;

  constructor(source: Layer) {
    this.source = source;
    this.packed.on("data", (c: Buffer) => this.chunks.push(c));
    this.done = pipeline(this.tar, this.plain, createGzip({ level: 6 }), this.packed);
    // A stopped copy's pipeline fails when the tar stream is destroyed; that is expected.
    this.done.catch(() => undefined);
  }

  /** Adds one entry's header (copied now: the caller may reuse the object). */
  add(h: TarHeader): void {
    if (this.stopped) return;
    // A header block, plus a PAX block and record for a long name or target.
    const long = h.name.length > 100 || h.linkname.length > 100;
    this.bytes += long ? 1024 + Buffer.byteLength(h.name) + Buffer.byteLength(h.linkname) : 512;
    if (this.bytes > Math.min(HEADER_BYTES_LIMIT * this.source.size, HEADER_BYTES_MAX)) {
      this.abort();
      return;
    }
    const copy: TarHeader = {
      ...h,
      size: h.type === "file" ? 0 : h.size,
      xattrs: new Map(h.xattrs),
      pax: new Map(h.pax),
    };
    this.writer.add(copy).catch(() => this.abort());
  }

  /** Drops the copy (the extraction failed, or the copy grew too large). */
  abort(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.tar.destroy();
  }

  /** The finished copy as a layer, or undefined when it was dropped or is too large to be worth keeping. */
  async finish(): Promise<Layer | undefined> {
    if (this.stopped) return undefined;
    try {
      await this.writer.finish();
      await this.done;
    } catch {
      return undefined;
    }
    if (this.stopped) return undefined;
    const data = Buffer.concat(this.chunks);
    if (data.length > HEADER_COPY_MAX_FRACTION * this.source.size) return undefined;
    return memoryLayer(data, this.packed.digest(), this.plain.digest());
  }
}
