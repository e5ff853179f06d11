import { formatBytes, formatMs } from "./format.js";
import type { BuildReport, ReportStep } from "./model.js";

const esc = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] ?? c);

const pct = (n: number, of: number): string => `${of > 0 ? Math.min(100, (100 * n) / of).toFixed(3) : "0"}%`;

const firstLine = (s: string): string => {
  const l = s.split("\n")[0] ?? "";
  return l.length > 120 ? `${l.slice(0, 117)}…` : l;
};

const STYLE = `
:root{--fg:#1d232a;--muted:#5b6570;--bg:#fff;--panel:#f5f7f9;--line:#dde2e7;--ok:#1f883d;--bad:#cf222e;--bar:#3b82f6;--hit:#1f883d;--miss:#d97706;--off:#8c959f}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);background:var(--bg)}
main{max-width:1180px;margin:0 auto;padding:24px}h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 10px;border-bottom:1px solid var(--line);padding-bottom:4px}
code,.mono{font:12.5px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.status{display:inline-block;padding:2px 10px;border-radius:12px;color:#fff;font-weight:600;font-size:13px}.succeeded{background:var(--ok)}.failed{background:var(--bad)}
.summary{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;background:var(--panel);padding:12px 16px;border-radius:8px;margin-top:12px}
.summary dt{color:var(--muted)}.summary dd{margin:0;word-break:break-all}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:5px 8px;border-bottom:1px solid var(--line);vertical-align:top}th{color:var(--muted);font-weight:600;font-size:12.5px}
td.num,th.num{text-align:right;white-space:nowrap}
.tl-row{display:grid;grid-template-columns:330px 1fr 80px;align-items:center;gap:8px;padding:2px 0}
.tl-label{white-space:nowrap;overflow:hidden;text-overflow:ellipsis}.tl-track{position:relative;height:16px;background:var(--panel);border-radius:3px}
.tl-bar{position:absolute;top:2px;height:12px;border-radius:2px;background:var(--bar);min-width:2px}.tl-bar.failed{background:var(--bad)}
.tl-stage{font-weight:600;margin-top:8px}
.cache{font-size:12px;padding:1px 7px;border-radius:10px;color:#fff;white-space:nowrap}.cache.hit{background:var(--hit)}.cache.miss{background:var(--miss)}.cache.disabled,.cache.uncacheable{background:var(--off)}
.pbar{height:12px;background:var(--bar);border-radius:2px;min-width:1px}
.layer{background:var(--panel);border-radius:8px;padding:10px 14px;margin:10px 0}.layer h3{font-size:14px;margin:0 0 6px}
.contrib{display:grid;grid-template-columns:minmax(200px,380px) 1fr 90px;gap:6px;align-items:center;font-size:13px}
.muted{color:var(--muted)}.err{color:var(--bad);font-weight:600}tr.sel td{background:#fff8c5}
`;

const SCRIPT = `
document.querySelectorAll("[data-step]").forEach(function(el){el.addEventListener("click",function(){
  var id=el.getAttribute("data-step");document.querySelectorAll("tr.sel").forEach(function(r){r.classList.remove("sel")});
  var row=document.getElementById("step-"+id);if(row){row.classList.add("sel");row.scrollIntoView({block:"center"});}
});});
`;

function stepId(stage: number, s: ReportStep): string {
  return `${stage}-${s.step}`;
}

function cacheBadge(s: ReportStep): string {
  const badge = `<span class="cache ${esc(s.cache.status)}" title="${esc(s.cache.reason)}">${esc(s.cache.status)}</span>`;
  return s.cache.reason === `cache ${s.cache.status}`
    ? badge
    : `${badge} <span class="muted">${esc(s.cache.reason)}</span>`;
}

function summary(r: BuildReport): string {
  const rows: [string, string][] = [
    ["Status", `<span class="status ${r.status}">${r.status}</span> exit code ${r.exitCode}`],
    ["Started", esc(r.startedAt)],
    ["Duration", esc(formatMs(r.durationMs))],
  ];
  if (r.error !== undefined) rows.push(["Error", `<span class="err">${esc(r.error)}</span>`]);
  if (r.digest !== undefined) rows.push(["Image digest", `<code>${esc(r.digest)}</code>`]);
  for (const st of r.stages) {
    if (st.baseDigest !== undefined)
      rows.push([
        `Base of stage ${esc(st.name ?? String(st.index))}`,
        `<code>${esc(st.base)}@${esc(st.baseDigest)}</code>`,
      ]);
  }
  for (const o of r.outputs) rows.push([`Output (${esc(o.sink)})`, `<code>${esc(o.target)}@${esc(o.digest)}</code>`]);
  if (r.isolation)
    rows.push(["RUN isolation", `${esc(r.isolation.backend)} <span class="muted">(${esc(r.isolation.reason)})</span>`]);
  else rows.push(["RUN isolation", `<span class="muted">not needed (no RUN step executed)</span>`]);
  rows.push(["kiln", esc(r.kilnVersion)]);
  return `<dl class="summary">${rows.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join("")}</dl>`;
}

function timeline(r: BuildReport): string {
  const total = Math.max(1, r.durationMs);
  const out: string[] = [];
  for (const st of r.stages) {
    out.push(
      `<div class="tl-stage">Stage ${esc(st.name ?? String(st.index))} <span class="muted">FROM ${esc(st.base)}</span></div>`,
    );
    for (const s of st.steps) {
      const ms = s.ms ?? Math.max(0, r.durationMs - s.startMs);
      out.push(
        `<div class="tl-row" data-step="${stepId(st.index, s)}"><div class="tl-label mono" title="${esc(s.instruction)}">${esc(firstLine(s.instruction))}</div>` +
          `<div class="tl-track"><div class="tl-bar${s.status === "failed" ? " failed" : ""}" style="left:${pct(s.startMs, total)};width:${pct(ms, total)}"></div></div>` +
          `<div class="num">${esc(formatMs(ms))}</div></div>`,
      );
    }
  }
  return out.join("\n");
}

function stepsTable(r: BuildReport): string {
  const rows = r.stages.flatMap((st) =>
    st.steps.map(
      (s) =>
        `<tr id="step-${stepId(st.index, s)}"><td>${esc(st.name ?? String(st.index))}</td><td class="num">${s.step}/${s.total}</td>` +
        `<td class="mono">${esc(firstLine(s.instruction))}<div class="muted">${esc(s.location)}</div></td>` +
        `<td>${s.status === "failed" ? '<span class="err">failed</span>' : esc(s.status)}</td>` +
        `<td class="num">${s.ms === undefined ? "" : esc(formatMs(s.ms))}</td><td>${cacheBadge(s)}</td>` +
        `<td class="num">${s.layer ? esc(formatBytes(s.layer.size)) : '<span class="muted">no layer</span>'}</td></tr>`,
    ),
  );
  return `<table><thead><tr><th>Stage</th><th class="num">Step</th><th>Instruction</th><th>Status</th><th class="num">Time</th><th>Cache</th><th class="num">Layer</th></tr></thead><tbody>${rows.join("\n")}</tbody></table>`;
}

function phaseProfile(r: BuildReport): string {
  if (r.phases.length === 0) return '<p class="muted">No phase timings were reported.</p>';
  const max = Math.max(1, ...r.phases.map((p) => p.ms));
  const rows = r.phases.map(
    (p) =>
      `<tr><td>${esc(p.phase)}</td><td class="num">${esc(formatMs(p.ms))}</td><td class="num">${p.count}×</td><td style="width:60%"><div class="pbar" style="width:${pct(p.ms, max)}"></div></td></tr>`,
  );
  return `<table class="phases"><thead><tr><th>Phase</th><th class="num">Total</th><th class="num">Count</th><th></th></tr></thead><tbody>${rows.join("")}</tbody></table>`;
}

function layers(r: BuildReport): string {
  const out: string[] = [];
  for (const st of r.stages) {
    for (const s of st.steps) {
      const l = s.layer;
      if (!l) continue;
      let body: string;
      if (l.contents) {
        const max = Math.max(1, ...l.contents.top.map((c) => c.bytes));
        body =
          `<p class="muted">${l.contents.entries} entries, ${esc(formatBytes(l.contents.fileBytes))} of files uncompressed</p>` +
          (l.contents.top.length === 0
            ? '<p class="muted">No regular files.</p>'
            : l.contents.top
                .map(
                  (c) =>
                    `<div class="contrib"><div class="mono">${esc(c.path)}</div><div class="pbar" style="width:${pct(c.bytes, max)}"></div><div class="num">${esc(formatBytes(c.bytes))}</div></div>`,
                )
                .join(""));
      } else body = `<p class="muted">${esc(l.contentsNote ?? "contents not analysed")}</p>`;
      out.push(
        `<section class="layer"><h3><span class="mono">${esc(firstLine(s.instruction))}</span> — ${esc(formatBytes(l.size))} compressed</h3>` +
          `<div class="muted mono">${esc(l.digest)}</div>${body}</section>`,
      );
    }
  }
  return out.length > 0 ? out.join("\n") : '<p class="muted">The build created no layers.</p>';
}

/**
 * Renders a build report as one self-contained HTML page (inline CSS and a few lines of inline
 * JS; no network access). The report's JSON is embedded in `<script id="kiln-report">`.
 */
export function renderReportHtml(r: BuildReport): string {
  const json = JSON.stringify(r).replace(/</g, "\\u003c");
  const warnings =
    r.warnings.length === 0
      ? ""
      : `<h2>Warnings</h2><ul>${r.warnings.map((w) => `<li><code>${esc(w.code)}</code> ${esc(w.message)}</li>`).join("")}</ul>`;
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>kiln build report — ${r.status}</title><style>${STYLE}</style></head>
<body><main>
<h1>kiln build report</h1>
${summary(r)}
<h2>Timeline</h2>
<div id="timeline">${timeline(r)}</div>
<h2>Steps</h2>
<div id="steps">${stepsTable(r)}</div>
<h2>Phase profile</h2>
<div id="phases">${phaseProfile(r)}</div>
<h2>Layers</h2>
<div id="layers">${layers(r)}</div>
${warnings}
</main>
<script type="application/json" id="kiln-report">${json}</script>
<script>${SCRIPT}</script>
</body></html>
`;
}
