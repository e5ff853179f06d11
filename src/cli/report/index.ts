/** The build report behind `--report=FILE.json|FILE.html`. */
export type { BuildReport, LayerContents, LayerContributor, ReportPhase, ReportStage, ReportStep } from "./model.js";
export { REPORT_SCHEMA } from "./model.js";
export type { BuildEnd, LayerSource, ReportCollector } from "./collector.js";
export { createReportCollector } from "./collector.js";
export { layerContents, type LayerContentsOptions } from "./contents.js";
export { renderReportHtml } from "./html.js";
export { reportFormat, writeReport } from "./write.js";
export { formatBytes, formatMs } from "./format.js";
