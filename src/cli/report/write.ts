import path from "node:path";
import { KilnError } from "../../common/errors.js";
import { writeFileAtomic } from "../../image/index.js";
import { renderReportHtml } from "./html.js";
import type { BuildReport } from "./model.js";

/** The format `--report` picks from the file name: `.html`/`.htm` → HTML, anything else → JSON. */
export function reportFormat(file: string): "html" | "json" {
  return /\.html?$/i.test(file) ? "html" : "json";
}

/** Writes the report atomically (temp file + rename) in the format its name asks for. */
export async function writeReport(file: string, report: BuildReport): Promise<void> {
  const text = reportFormat(file) === "html" ? renderReportHtml(report) : `${JSON.stringify(report, null, 2)}\n`;
  try {
    await writeFileAtomic(path.resolve(file), text); // creates the directory, as the digest files do
  } catch (e) {
    throw new KilnError("REPORT_WRITE", `cannot write the build report to ${file}: ${(e as Error).message}`, {
      cause: e,
    });
  }
}
