/**
 * The FROM rewrite (normalization "from-rewrite"): external images in `FROM` and `COPY --from=` become the
 * local stand-ins, identically for docker and kiln. Stage names, `scratch` and numeric stage indexes stay;
 * a FROM built from ARGs is replaced by the stand-in of its resolved value (from analysis.json) unless that
 * resolves to scratch or a stage, in which case the ARG expression is kept. With a `urlBase`, public
 * `http(s)://HOST/PATH` URLs in ADD, ENV and ARG lines become `URLBASE/HOST/PATH` (normalization "url-rewrite").
 */
import { standInFor, type StandIn } from "./corpus.js";

/** The rewritten Dockerfile text and whether anything changed. */
export interface Rewritten {
  text: string;
  changed: boolean;
}

/**
 * Rewrites `text`. `resolved` lists each FROM's resolved reference in order (for FROMs using ARGs);
 * `refFor` gives the registry reference of a stand-in; `urlBase` the local URL server, if any.
 */
export function rewriteDockerfile(
  text: string,
  resolved: string[] | undefined,
  refFor: (s: StandIn) => string,
  urlBase?: string,
): Rewritten {
  const stages = new Set<string>();
  let fromIndex = 0;
  let changed = false;
  const mapRef = (ref: string): string | undefined => {
    const s = standInFor(ref);
    return s === undefined ? undefined : refFor(s);
  };
  const lines = text.split("\n").map((line) => {
    const from = /^(\s*FROM\s+)((?:--\S+\s+)*)(\S+)(.*)$/i.exec(line);
    if (from !== null) {
      const [, head = "", flags = "", image = "", rest = ""] = from;
      const as = /^\s+AS\s+(\S+)/i.exec(rest);
      const i = fromIndex++;
      let out = line;
      if (image.toLowerCase() !== "scratch" && !stages.has(image.toLowerCase())) {
        const source = image.includes("$") ? resolved?.[i] : image;
        if (source !== undefined && source !== "scratch" && !stages.has(source.toLowerCase())) {
          const mapped = mapRef(source);
          if (mapped !== undefined) out = `${head}${flags}${mapped}${rest}`;
        }
      }
      if (as?.[1] !== undefined) stages.add(as[1].toLowerCase());
      if (out !== line) changed = true;
      return out;
    }
    if (/^\s*COPY\s/i.test(line)) {
      return line.replace(/--from=(\S+)/i, (whole, src: string) => {
        if (stages.has(src.toLowerCase()) || /^\d+$/.test(src) || src.includes("$")) return whole;
        const mapped = mapRef(src);
        if (mapped === undefined) return whole;
        changed = true;
        return `--from=${mapped}`;
      });
    }
    if (urlBase !== undefined && /^\s*(ADD|ENV|ARG)\s/i.test(line)) {
      const out = line.replace(/https?:\/\/(?!127\.0\.0\.1)([^\s"'\]]+)/g, (_m, rest: string) => `${urlBase}/${rest}`);
      if (out !== line) changed = true;
      return out;
    }
    return line;
  });
  return { text: lines.join("\n"), changed };
}
