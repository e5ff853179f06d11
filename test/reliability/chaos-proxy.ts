/**
 * A streaming HTTP proxy for whole-build fault tests, for the faults test/support/fault-proxy.ts cannot
 * make because it buffers request bodies: a connection reset in the middle of an upload body, a slow link
 * (responses paced to a byte rate), and a hook that runs before a request is forwarded (used to restart the
 * registry in the middle of a push). Everything else is piped through unchanged, Host header included.
 */
import { createServer, request, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

/** What to do with one request. */
export type ChaosAction = "forward" | "reset-mid-upload";

/** Options of {@link startChaosProxy}. */
export interface ChaosProxyOptions {
  /** Upstream `host:port` (plain HTTP). */
  target: string;
  /** Decides per request; may be async (e.g. restart the upstream first). Default: forward. */
  decide?: (method: string, path: string) => ChaosAction | Promise<ChaosAction>;
  /** Pace response bodies to this many bytes per second (default: unpaced). */
  bytesPerSecond?: number;
}

/** A running chaos proxy. */
export interface ChaosProxy {
  host: string;
  /** Requests reset mid-upload. */
  resets: number;
  stop(): Promise<void>;
}

function pacedPipe(from: IncomingMessage, to: ServerResponse, rate: number | undefined): void {
  // An answer cut off upstream (the registry restarted mid-body) is cut off for the client too, as a real
  // proxy's would be: the client then sees the failure instead of waiting for the rest for ever.
  from.on("close", () => {
    if (!from.complete) to.destroy();
  });
  if (rate === undefined) {
    from.pipe(to);
    return;
  }
  const slice = Math.max(1024, Math.floor(rate / 20)); // 20 writes per second
  from.on("data", (chunk: Buffer) => {
    from.pause();
    let off = 0;
    const next = (): void => {
      if (off >= chunk.length) {
        from.resume();
        return;
      }
      const part = chunk.subarray(off, off + slice);
      off += part.length;
      to.write(part);
      setTimeout(next, (part.length / rate) * 1000);
    };
    next();
  });
  from.on("end", () => to.end());
  from.on("error", () => to.destroy());
}

/** Starts the proxy on a free loopback port. */
export async function startChaosProxy(opts: ChaosProxyOptions): Promise<ChaosProxy> {
  const [host = "127.0.0.1", port = "80"] = opts.target.split(":");
  const sockets = new Set<Socket>();
  const state: ChaosProxy = { host: "", resets: 0, stop: () => Promise.resolve() };

  const server = createServer((req, res) => {
    const method = req.method ?? "GET";
    const p = req.url ?? "/";
    Promise.resolve(opts.decide ? opts.decide(method, p) : "forward")
      .then((action) => {
        if (action === "reset-mid-upload") {
          // Take part of the body, then drop the connection without answering.
          let seen = 0;
          const want = Math.max(1, Number(req.headers["content-length"] ?? "2") >> 1);
          req.on("data", (b: Buffer) => {
            seen += b.length;
            if (seen >= want) req.socket.destroy();
          });
          req.on("end", () => req.socket.destroy());
          state.resets++;
          return;
        }
        const up = request({ host, port: Number(port), method, path: p, headers: req.headers }, (ur) => {
          res.writeHead(ur.statusCode ?? 502, ur.headers);
          pacedPipe(ur, res, opts.bytesPerSecond);
        });
        up.on("error", () => res.socket?.destroy());
        req.pipe(up);
      })
      .catch(() => res.socket?.destroy());
  });
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  state.host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  state.stop = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  return state;
}
