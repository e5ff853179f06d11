import { Readable } from "node:stream";

/** Produces the next piece of an entry body, or null at its end. */
export type ChunkProducer = () => Promise<Buffer | null>;

/** A body stream plus the hook the tar reader uses to stop it before moving to the next entry. */
export interface EntryBody {
  stream: Readable;
  /** Waits for an in-flight read, then destroys the stream if the consumer did not read it to the end. */
  abandon(): Promise<void>;
}

/** Wraps a chunk producer into a pull-driven Readable that never reads ahead of the consumer by more than one chunk. */
export function makeEntryBody(next: ChunkProducer): EntryBody {
  let inflight: Promise<void> | undefined;
  let finished = false;
  let abandoned = false;
  const stream = new Readable({
    read() {
      if (inflight !== undefined || abandoned) return;
      inflight = (async () => {
        try {
          const chunk = await next();
          inflight = undefined;
          if (abandoned) return;
          if (chunk === null) {
            finished = true;
            stream.push(null);
          } else {
            stream.push(chunk);
          }
        } catch (e) {
          inflight = undefined;
          stream.destroy(e instanceof Error ? e : new Error(String(e)));
        }
      })();
    },
  });
  return {
    stream,
    async abandon() {
      abandoned = true;
      if (inflight !== undefined) await inflight;
      if (!finished && !stream.destroyed) stream.destroy();
    },
  };
}
