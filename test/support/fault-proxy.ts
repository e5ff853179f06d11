/**
 * An HTTP proxy for tests that sits in front of a real (plain-HTTP) registry and injects faults:
 * connection resets mid-body, truncated bodies, flipped bytes, and 500/502/503/429 answers. Faults
 * come from explicit rules (each firing a number of times) and/or a seeded pseudo-random schedule,
 * so a failing run can be replayed. The Host header is forwarded unchanged, so the registry's upload
 * `Location`s point back at the proxy.
 */
import { createServer, request, type IncomingMessage, type ServerResponse } from "node:http";
import { connect, type AddressInfo, type Socket } from "node:net";

/**
 * Kinds of fault. Body faults (reset, truncate, flip) only fire on 2xx responses with a body;
 * `as201` forwards the request and rewrites a 202 answer to 201 (ECR's PATCH behaviour).
 */
export type Fault =
  "reset" | "truncate" | "flip" | "status500" | "status502" | "status503" | "status429" | "as201" | "hold";

/** Inject `fault` into requests matching `method`/`path`, `times` times (default 1). */
export interface FaultRule {
  method?: string;
  path?: RegExp;
  fault: Fault;
  times?: number;
  /** Retry-After seconds sent with status429/status503 (default 1 for 429, none for 503). */
  retryAfter?: number;
  /**
   * `hold`: the request is forwarded only once a request matching `until` arrives, or after `maxMs` (default
   * 10 s); its {@link InjectedFault.released} says which. Shows whether a client sends `until` without
   * waiting for the held request's answer, without timing anything. A held request whose client goes away
   * is never forwarded (`abandoned`), as if it had not reached the registry yet.
   */
  until?: { method?: string; path?: RegExp };
  /**
   * `hold`: a request matching `until` that arrived before the held one (since the rules were set) releases
   * it at once (`released: "seen"`): holds "not before X", where X may come first.
   */
  untilSeen?: boolean;
  maxMs?: number;
}

/** Seeded random faults: each matching request gets a fault with probability `rate`. */
export interface RandomFaults {
  seed: number;
  rate: number;
  faults: Fault[];
  method?: string;
  path?: RegExp;
}

/** Options of {@link startFaultProxy}. */
export interface FaultProxyOptions {
  /** Upstream `host:port` (plain HTTP). */
  target: string;
  rules?: FaultRule[];
  random?: RandomFaults;
  /** Demand these Basic credentials from clients (stripped before forwarding). */
  basicAuth?: { username: string; password: string };
  /**
   * Answer blob GETs with a 307 to a separate "storage" listener (another port, so another host
   * for the client) with a signed-looking query; the storage listener serves the blob from upstream
   * and records the Authorization header it received.
   */
  redirectBlobs?: boolean;
  /** With `redirectBlobs`: the storage listener answers 401 with this `WWW-Authenticate` (its own realm). */
  storageChallenge?: string;
  /** A slow link: 2xx GET response bodies are sent at about this many bytes per second (in 50 ms slices). */
  bytesPerSecond?: number;
}

/** One injected fault, for assertions. */
export interface InjectedFault {
  fault: Fault;
  method: string;
  path: string;
  /** `hold`: what released the request (`stopped`: the rules were replaced or the proxy stopped). */
  released?: "until" | "seen" | "timeout" | "stopped" | "abandoned";
}

/** A running fault proxy. */
export interface FaultProxy {
  /** `127.0.0.1:PORT` — use as the registry host. */
  host: string;
  injected: InjectedFault[];
  /** Every request seen (method, path and Range header). */
  requests: { method: string; path: string; range?: string }[];
  /** Targets of CONNECT tunnels opened through the proxy (it also works as an HTTPS_PROXY/HTTP_PROXY). */
  tunnels: string[];
  /** The Proxy-Authorization header of each CONNECT, in the order of {@link tunnels} (undefined: none). */
  tunnelAuthorizations: (string | undefined)[];
  /** Requests the storage listener received (when `redirectBlobs`). */
  storageRequests: { path: string; authorization?: string }[];
  /** Replaces the rules (counters start afresh; held requests go on). */
  setRules(rules: FaultRule[]): void;
  stop(): Promise<void>;
}

/** mulberry32: a tiny seeded PRNG returning floats in [0, 1). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Phase = "pre" | "body" | "rewrite";

function phaseOf(f: Fault): Phase | "hold" {
  if (f === "hold") return "hold";
  if (f === "reset" || f === "truncate" || f === "flip") return "body";
  if (f === "as201") return "rewrite";
  return "pre";
}

function matches(r: { method?: string; path?: RegExp }, method: string, p: string): boolean {
  return (r.method === undefined || r.method === method) && (r.path === undefined || r.path.test(p));
}

function readAll(s: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    s.on("data", (b: Buffer) => parts.push(b));
    s.on("end", () => resolve(Buffer.concat(parts)));
    s.on("error", reject);
  });
}

/** Starts the proxy on a free loopback port. */
export async function startFaultProxy(opts: FaultProxyOptions): Promise<FaultProxy> {
  const state = {
    rules: (opts.rules ?? []).map((r) => ({ ...r, left: r.times ?? 1 })),
    /** Requests since the rules were set (for `untilSeen`); kept apart from `requests`, which tests empty. */
    seen: [] as { method: string; path: string }[],
  };
  const rand = opts.random ? prng(opts.random.seed) : undefined;
  const injected: InjectedFault[] = [];
  const requests: { method: string; path: string; range?: string }[] = [];
  const sockets = new Set<Socket>();
  const [host = "127.0.0.1", port = "80"] = opts.target.split(":");

  /** Picks the fault of the given phase for a request. */
  const pick = (method: string, p: string, phase: Phase | "hold"): FaultRule | undefined => {
    for (const r of state.rules) {
      if (r.left <= 0 || !matches(r, method, p)) continue;
      if (phaseOf(r.fault) !== phase) continue;
      r.left--;
      return r;
    }
    if (rand && opts.random && matches(opts.random, method, p) && rand() < opts.random.rate) {
      const f = opts.random.faults[Math.floor(rand() * opts.random.faults.length)];
      if (f !== undefined && phaseOf(f) === phase) return { fault: f };
    }
    return undefined;
  };

  const storageRequests: { path: string; authorization?: string }[] = [];
  const storage = createServer((req, res) => {
    storageRequests.push({
      path: req.url ?? "/",
      ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
    });
    if (opts.storageChallenge !== undefined) {
      res.writeHead(401, { "www-authenticate": opts.storageChallenge, "content-type": "application/json" });
      res.end(JSON.stringify({ errors: [{ code: "UNAUTHORIZED", message: "storage wants its own credentials" }] }));
      return;
    }
    const u = new URL(req.url ?? "/", "http://storage");
    const up = request(
      { host, port: Number(port), method: req.method, path: u.pathname, headers: { host: opts.target } },
      (ur) => {
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        ur.pipe(res);
      },
    );
    up.on("error", () => res.destroy());
    up.end();
  });
  await new Promise<void>((resolve) => storage.listen(0, "127.0.0.1", resolve));
  const storagePort = (storage.address() as AddressInfo).port;
  const expectedAuth = opts.basicAuth
    ? `Basic ${Buffer.from(`${opts.basicAuth.username}:${opts.basicAuth.password}`).toString("base64")}`
    : undefined;

  /** Held requests, each released by the first later request matching its rule's `until`. */
  const held = new Set<{ until: FaultRule["until"]; release: (why: NonNullable<InjectedFault["released"]>) => void }>();
  /** Resolves when the request is released; false when its client went away meanwhile. */
  const hold = async (rule: FaultRule, method: string, p: string, res: ServerResponse): Promise<boolean> => {
    const fault: InjectedFault = { fault: "hold", method, path: p };
    injected.push(fault);
    if (rule.untilSeen === true && state.seen.some((q) => matches(rule.until ?? {}, q.method, q.path))) {
      fault.released = "seen";
      return true;
    }
    return new Promise<boolean>((resolve) => {
      const w = {
        until: rule.until,
        release: (why: NonNullable<InjectedFault["released"]>) => {
          clearTimeout(timer);
          held.delete(w);
          res.off("close", gone);
          fault.released ??= why;
          resolve(why !== "abandoned");
        },
      };
      const gone = (): void => w.release("abandoned");
      const timer = setTimeout(() => w.release("timeout"), rule.maxMs ?? 10_000);
      res.once("close", gone);
      held.add(w);
    });
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const method = req.method ?? "GET";
    const p = req.url ?? "/";
    requests.push({ method, path: p, ...(req.headers.range ? { range: req.headers.range } : {}) });
    state.seen.push({ method, path: p });
    for (const w of held) if (matches(w.until ?? {}, method, p)) w.release("until");
    const reqBody = await readAll(req);
    if (expectedAuth !== undefined) {
      if (req.headers.authorization !== expectedAuth) {
        res.writeHead(401, { "www-authenticate": 'Basic realm="fault-proxy"', "content-type": "application/json" });
        res.end(JSON.stringify({ errors: [{ code: "UNAUTHORIZED", message: "authentication required" }] }));
        return;
      }
      delete req.headers.authorization;
    }
    if (opts.redirectBlobs === true && (method === "GET" || method === "HEAD") && /\/blobs\/sha256:/.test(p)) {
      res.writeHead(307, { location: `http://127.0.0.1:${storagePort}${p}?X-Amz-Signature=storage-secret-sig` });
      res.end();
      return;
    }
    const pre = pick(method, p, "pre");
    if (pre !== undefined) {
      injected.push({ fault: pre.fault, method, path: p });
      const status = Number(pre.fault.slice("status".length));
      const headers: Record<string, string> = { "content-type": "application/json" };
      const ra = pre.retryAfter ?? (status === 429 ? 1 : undefined);
      if (ra !== undefined) headers["retry-after"] = String(ra);
      res.writeHead(status, headers);
      res.end(JSON.stringify({ errors: [{ code: "UNAVAILABLE", message: `injected ${status}` }] }));
      return;
    }
    const toHold = pick(method, p, "hold");
    if (toHold !== undefined && !(await hold(toHold, method, p, res))) return;
    const upstream = await new Promise<IncomingMessage>((resolve, reject) => {
      const headers = { ...req.headers };
      delete headers["transfer-encoding"];
      headers["content-length"] = String(reqBody.length);
      const up = request({ host, port: Number(port), method, path: p, headers }, resolve);
      up.on("error", reject);
      up.end(reqBody);
    });
    const body = await readAll(upstream);
    const headers = { ...upstream.headers };
    delete headers["transfer-encoding"];
    delete headers.connection;
    delete headers["keep-alive"];
    let status = upstream.statusCode ?? 502;
    if (status === 202) {
      const rw = pick(method, p, "rewrite");
      if (rw !== undefined) {
        injected.push({ fault: rw.fault, method, path: p });
        status = 201;
      }
    }
    const hasBody = method !== "HEAD" && body.length >= 2 && status >= 200 && status < 300;
    const post = hasBody ? pick(method, p, "body") : undefined;
    if (post === undefined) {
      if (method !== "HEAD") headers["content-length"] = String(body.length);
      res.writeHead(status, headers);
      const bps = opts.bytesPerSecond;
      if (bps !== undefined && method === "GET" && status >= 200 && status < 300) {
        const slice = Math.max(1, Math.floor(bps / 20));
        for (let i = 0; i < body.length; i += slice) {
          res.write(body.subarray(i, i + slice));
          await new Promise((r) => setTimeout(r, 50));
        }
        res.end();
        return;
      }
      res.end(method === "HEAD" ? undefined : body);
      return;
    }
    injected.push({ fault: post.fault, method, path: p });
    const half = Math.floor(body.length / 2);
    if (post.fault === "flip") {
      const copy = Buffer.from(body);
      copy[half] = (copy[half] ?? 0) ^ 0xff;
      headers["content-length"] = String(copy.length);
      res.writeHead(status, headers);
      res.end(copy);
    } else if (post.fault === "truncate") {
      headers["content-length"] = String(half);
      res.writeHead(status, headers);
      res.end(body.subarray(0, half));
    } else {
      headers["content-length"] = String(body.length);
      res.writeHead(status, headers);
      res.write(body.subarray(0, half), () => {
        res.socket?.destroy();
      });
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(502).end();
      else res.socket?.destroy();
    });
  });
  const tunnels: string[] = [];
  const tunnelAuthorizations: (string | undefined)[] = [];
  server.on("connect", (req: IncomingMessage, client: Socket, head: Buffer) => {
    const target = req.url ?? "";
    tunnels.push(target);
    tunnelAuthorizations.push(req.headers["proxy-authorization"]);
    const [th = "", tp = "0"] = target.split(":");
    const up = connect(Number(tp), th, () => {
      client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      up.write(head);
      up.pipe(client);
      client.pipe(up);
    });
    sockets.add(up);
    up.on("close", () => sockets.delete(up));
    up.on("error", () => client.destroy());
    client.on("error", () => up.destroy());
  });
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const addr = server.address() as AddressInfo;
  return {
    host: `127.0.0.1:${addr.port}`,
    injected,
    requests,
    tunnels,
    tunnelAuthorizations,
    storageRequests,
    setRules: (rules) => {
      state.rules = rules.map((r) => ({ ...r, left: r.times ?? 1 }));
      state.seen = [];
      for (const w of held) w.release("stopped");
    },
    stop: () =>
      new Promise<void>((resolve) => {
        for (const w of held) w.release("stopped");
        for (const s of sockets) s.destroy();
        storage.closeAllConnections();
        storage.close();
        server.close(() => resolve());
      }),
  };
}
