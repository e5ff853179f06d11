import type { BuildEvent, CacheOutcome, Phase, Reporter } from "../../build/index.js";
import type { Layer } from "../../image/types.js";
import { layerContents } from "./contents.js";
import type { BuildReport, LayerContents, ReportStage, ReportStep } from "./model.js";
import { REPORT_SCHEMA } from "./model.js";

/** Where layer contents can still be read after the build (e.g. the OCI layout it wrote). */
export type LayerSource = (digest: string) => Promise<Layer | undefined>;

/** How a build ended, as the CLI saw it. */
export interface BuildEnd {
  exitCode: number;
  digest?: string;
  error?: string;
}

/** Collects build events into a {@link BuildReport}. */
export interface ReportCollector {
  /** Feed every build event here (never throws). */
  readonly reporter: Reporter;
  /**
   * Completes the report: waits for layer analyses started during the build, then reads the
   * remaining layers through `source` (when given).
   */
  finish(end: BuildEnd, source?: LayerSource): Promise<BuildReport>;
}

const CACHE_OFF: CacheOutcome = Object.freeze({ status: "disabled", reason: "cache disabled" });

/**
 * Creates a collector. `clock` returns milliseconds (monotonic is fine); `startedAt` is the wall
 * time the build began; `cacheEnabled` says whether a step without a cache verdict was uncached.
 */
export function createReportCollector(opts: {
  kilnVersion: string;
  startedAt: Date;
  clock: () => number;
  cacheEnabled?: boolean;
  /**
   * Applied to every string the report holds (instructions, bases, warnings, cache reasons, the
   * error …), e.g. the log's secret redactor: a report is a file that outlives the build's log.
   */
  redact?: (s: string) => string;
}): ReportCollector {
  const t0 = opts.clock();
  const rel = (): number => Math.max(0, Math.round(opts.clock() - t0));
  const stages = new Map<number, ReportStage>();
  const steps = new Map<string, ReportStep>();
  const phases = new Map<Phase, { ms: number; count: number }>();
  const outputs: BuildReport["outputs"] = [];
  const warnings: BuildReport["warnings"] = [];
  const analyses = new Map<string, Promise<LayerContents | string>>();
  let isolation: BuildReport["isolation"];
  const defaultCache: CacheOutcome = opts.cacheEnabled
    ? { status: "uncacheable", reason: "no cache verdict reported" }
    : CACHE_OFF;

  const analyze = (layer: Layer): Promise<LayerContents | string> =>
    layer.openUncompressed().then(
      (s) => layerContents(s).catch((e: unknown) => `could not read layer: ${(e as Error).message}`),
      (e: unknown) => `could not open layer: ${(e as Error).message}`,
    );

  const stageOf = (index: number): ReportStage => {
    let s = stages.get(index);
    if (!s) {
      s = { index, base: "", startMs: rel(), steps: [] };
      stages.set(index, s);
    }
    return s;
  };

  const handle = (e: BuildEvent): void => {
    switch (e.kind) {
      case "stage-start": {
        const s = stageOf(e.stage);
        s.base = e.base;
        if (e.name !== undefined) s.name = e.name;
        s.startMs = rel();
        break;
      }
      case "base-resolved":
        stageOf(e.stage).baseDigest = e.digest;
        break;
      case "step-start": {
        const step: ReportStep = {
          step: e.step,
          total: e.total,
          instruction: e.instruction,
          location: e.location,
          startMs: rel(),
          status: "not finished",
          cache: defaultCache,
          outputBytes: 0,
        };
        steps.set(`${e.stage}/${e.step}`, step);
        stageOf(e.stage).steps.push(step);
        break;
      }
      case "step-output": {
        const s = steps.get(`${e.stage}/${e.step}`);
        if (s) s.outputBytes += e.data.length;
        break;
      }
      case "layer-created":
        if (!analyses.has(e.layer.digest)) analyses.set(e.layer.digest, analyze(e.layer));
        break;
      case "step-done": {
        const s = steps.get(`${e.stage}/${e.step}`);
        if (!s) break;
        s.ms = e.ms;
        s.status = "done";
        if (e.cache) s.cache = { ...e.cache };
        if (e.layer) s.layer = { digest: e.layer.digest, diffId: e.layer.diffId, size: e.layer.size };
        const st = stages.get(e.stage);
        if (st) st.endMs = rel();
        break;
      }
      case "phase": {
        const p = phases.get(e.phase) ?? { ms: 0, count: 0 };
        p.ms += e.ms;
        p.count++;
        phases.set(e.phase, p);
        break;
      }
      case "image-written":
        outputs.push({ sink: e.sink, target: e.target, digest: e.digest });
        break;
      case "warning":
        warnings.push({ code: e.code, message: e.message });
        break;
      case "isolation":
        isolation = { backend: e.isolation, reason: e.reason };
        break;
      default:
        break;
    }
  };

  return {
    reporter: (e) => {
      try {
        handle(e);
      } catch {
        // A report must never break the build.
      }
    },
    async finish(end, source) {
      const durationMs = rel();
      const allSteps = [...stages.values()].flatMap((s) => s.steps);
      for (const s of allSteps) {
        if (s.status === "not finished" && end.exitCode !== 0) s.status = "failed";
        if (!s.layer) continue;
        let got = await analyses.get(s.layer.digest);
        if (got === undefined && source) {
          try {
            const layer = await source(s.layer.digest);
            if (layer) got = await analyze(layer);
          } catch (e) {
            got = `could not read layer: ${(e as Error).message}`;
          }
        }
        if (got === undefined) s.layer.contentsNote = "layer contents not available after the build";
        else if (typeof got === "string") s.layer.contentsNote = got;
        else s.layer.contents = got;
      }
      for (const st of stages.values()) {
        if (st.endMs === undefined && st.steps.length === 0) st.endMs = st.startMs;
      }
      const order: Phase[] = ["resolve", "pull", "extract", "run", "copy", "snapshot", "compress", "push", "write"];
      const report: BuildReport = {
        schema: REPORT_SCHEMA,
        kilnVersion: opts.kilnVersion,
        startedAt: opts.startedAt.toISOString(),
        durationMs,
        status: end.exitCode === 0 ? "succeeded" : "failed",
        exitCode: end.exitCode,
        ...(end.error !== undefined ? { error: end.error } : {}),
        ...(end.digest !== undefined ? { digest: end.digest } : {}),
        ...(isolation ? { isolation } : {}),
        stages: [...stages.values()].sort((a, b) => a.startMs - b.startMs || a.index - b.index),
        phases: order.flatMap((phase) => {
          const p = phases.get(phase);
          return p ? [{ phase, ms: p.ms, count: p.count }] : [];
        }),
        outputs,
        warnings,
      };
      return opts.redact ? redactStrings(report, opts.redact) : report;
    },
  };
}

/** A copy of `value` with `redact` applied to every string in it (object keys are the schema's own). */
export function redactStrings<T>(value: T, redact: (s: string) => string): T {
  const walk = (v: unknown): unknown => {
    if (typeof v === "string") return redact(v);
    if (Array.isArray(v)) return v.map(walk);
    if (v !== null && typeof v === "object") {
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    }
    return v;
  };
  return walk(value) as T;
}
