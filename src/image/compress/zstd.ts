import { spawn } from "node:child_process";
import { Transform, type TransformCallback } from "node:stream";
import * as zlib from "node:zlib";
import { KilnError } from "../../common/errors.js";

type ZstdFactory = (opts?: { params?: Record<number, number> }) => Transform;

/** Node's built-in zstd (Node ≥ 22.15 / 23.8), or undefined on older runtimes. */
function nativeZstd(kind: "compress" | "decompress"): ZstdFactory | undefined {
  const z = zlib as unknown as Record<string, unknown>;
  const f = z[kind === "compress" ? "createZstdCompress" : "createZstdDecompress"];
  return typeof f === "function" ? (f.bind(zlib) as ZstdFactory) : undefined;
}

/**
 * Runs a filter process (stdin → stdout) as a Transform with backpressure. A missing binary becomes
 * KilnError ZSTD_UNAVAILABLE; a non-zero exit becomes ZSTD_FAILED with the tool's stderr.
 */
class ProcessFilter extends Transform {
  private readonly child;
  private stderr = "";
  private readonly exited: Promise<number | null>;
  private failure: Error | undefined;

  constructor(cmd: string, args: string[]) {
    super();
    this.child = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"] });
    this.exited = new Promise((resolve) => {
      this.child.on("close", (code) => resolve(code));
      this.child.on("error", (e: NodeJS.ErrnoException) => {
        this.failure =
          e.code === "ENOENT"
            ? new KilnError(
                "ZSTD_UNAVAILABLE",
                "zstd compression needs Node.js ≥ 22.15 or the `zstd` program on PATH; install zstd or use --compression=gzip",
                { cause: e },
              )
            : e;
        this.destroy(this.failure);
        resolve(null);
      });
    });
    this.child.stdout.on("data", (c: Buffer) => {
      if (!this.push(c)) this.child.stdout.pause();
    });
    this.child.stderr.on("data", (c: Buffer) => {
      if (this.stderr.length < 4096) this.stderr += c.toString();
    });
    this.child.stdin.on("error", () => undefined); // EPIPE surfaces through the exit code
  }

  override _read(size: number): void {
    this.child.stdout.resume();
    super._read(size);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.failure) return cb(this.failure);
    if (this.child.stdin.write(chunk)) cb();
    else this.child.stdin.once("drain", () => cb());
  }

  override _flush(cb: TransformCallback): void {
    this.child.stdin.end();
    const ended = new Promise<void>((resolve) => {
      if (this.child.stdout.readableEnded) resolve();
      else this.child.stdout.once("end", () => resolve());
    });
    Promise.all([ended, this.exited]).then(([, code]) => {
      if (this.failure) return cb(this.failure);
      if (code !== 0) {
        return cb(new KilnError("ZSTD_FAILED", `zstd exited with code ${code}: ${this.stderr.trim()}`));
      }
      cb();
    }, cb);
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    if (this.child.exitCode === null) this.child.kill();
    cb(err);
  }
}

/** A zstd compressor: Node's built-in one when available, else the `zstd` program. */
export function zstdCompress(level = 3): Transform {
  const native = nativeZstd("compress");
  if (native) return native({ params: { [100]: level } }); // ZSTD_c_compressionLevel
  return new ProcessFilter("zstd", ["-q", "-c", `-${level}`, "--no-progress"]);
}

/** A zstd decompressor: Node's built-in one when available, else the `zstd` program. */
export function zstdDecompress(): Transform {
  const native = nativeZstd("decompress");
  if (native) return native();
  return new ProcessFilter("zstd", ["-q", "-d", "-c", "--no-progress"]);
}
