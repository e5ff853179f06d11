import { Readable } from "node:stream";

/** Produces the next piece of an entry body, or null at its end. */
export type ChunkProducer = () => Promise<Buffer | null>;

/** Stored data of an entry at its offset in the file (the holes of a sparse file are not pieces). */
export interface TarPiece {
  offset: number;
  data: Buffer;
}

/** Produces the next stored piece of an entry body (holes skipped), or null at its end. */
export type PieceProducer = () => Promise<TarPiece | null>;

/** A body stream plus the hook the tar reader uses to stop it before moving to the next entry. */
export interface EntryBody {
  /** The body as a stream, created on first access (most entries of a layer are never read as one). */
  readonly stream: Readable;
  /** The whole body in one buffer, read without a stream; only when {@link stream} was not used. */
  readAll(): Promise<Buffer>;
  /** The stored pieces with their offsets, holes left out; only when the body was not read otherwise. */
  pieces(): AsyncGenerator<TarPiece>;
  /** Waits for an in-flight read, then destroys the stream if the consumer did not read it to the end. */
  abandon(): Promise<void>;
}

/**
 * Wraps a chunk producer into a pull-driven Readable that never reads ahead of the consumer by more than
 * one chunk. The Readable is made only when asked for: a layer of 100,000 small files then costs no
 * stream (and no async iterator) per directory, link or file read with {@link EntryBody.readAll}.
 */
export function makeEntryBody(next: ChunkProducer, nextPiece: PieceProducer): EntryBody {
  let inflight: Promise<void> | undefined;
  let finished = false;
  let abandoned = false;
  let reading = false;
  let stream: Readable | undefined;
  const create = (): Readable => {
    const s = new Readable({
      read() {
        if (inflight !== undefined || abandoned) return;
        inflight = (async () => {
          try {
            const chunk = await next();
            inflight = undefined;
            if (abandoned) return;
            if (chunk === null) {
              finished = true;
              s.push(null);
            } else {
              s.push(chunk);
            }
          } catch (e) {
            inflight = undefined;
            s.destroy(e instanceof Error ? e : new Error(String(e)));
          }
        })();
      },
    });
    return s;
  };
  return {
    get stream(): Readable {
      if (reading) throw new Error("tar entry body: stream() after readAll()");
      stream ??= create();
      return stream;
    },
    async readAll() {
      if (stream !== undefined || reading) throw new Error("tar entry body: readAll() after the body was read");
      reading = true;
      const parts: Buffer[] = [];
      const read = (async () => {
        for (let c = await next(); c !== null; c = await next()) parts.push(c);
      })();
      // What abandon() waits for; the failure itself goes to this call's caller only.
      inflight = read.then(
        () => undefined,
        () => undefined,
      );
      try {
        await read;
      } finally {
        inflight = undefined;
      }
      return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
    },
    async *pieces() {
      if (stream !== undefined || reading) throw new Error("tar entry body: pieces() after the body was read");
      reading = true;
      for (;;) {
        const read = nextPiece();
        inflight = read.then(
          () => undefined,
          () => undefined,
        );
        let piece: TarPiece | null;
        try {
          piece = await read;
        } finally {
          inflight = undefined;
        }
        if (piece === null) return;
        yield piece;
      }
    },
    async abandon() {
      abandoned = true;
      if (inflight !== undefined) await inflight;
      if (!finished && stream !== undefined && !stream.destroyed) stream.destroy();
    },
  };
}
