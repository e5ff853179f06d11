/**
 * Helpers for the BuildKit-checklist build tests (docs/buildkit-checklist.md): read the config and history
 * of an OCI layout kiln wrote, straight from its JSON blobs (no kiln code involved).
 */
import { readFile } from "node:fs/promises";
import path from "node:path";

/** The parts of an image config the checklist tests look at. */
export interface LayoutConfig {
  created?: string;
  author?: string;
  os?: string;
  architecture?: string;
  config: {
    Env?: string[];
    Cmd?: string[] | null;
    Entrypoint?: string[] | null;
    WorkingDir?: string;
    User?: string;
    Labels?: Record<string, string>;
    ExposedPorts?: Record<string, unknown>;
    OnBuild?: string[] | null;
    Healthcheck?: Record<string, unknown>;
  };
  rootfs: { type: string; diff_ids: string[] };
  history: { created?: string; created_by?: string; empty_layer?: boolean; author?: string }[];
}

/** The manifest digest and config of the single image in an OCI layout. */
export async function layoutConfig(layout: string): Promise<{ digest: string; cfg: LayoutConfig; layers: number }> {
  const blob = (d: string) => path.join(layout, "blobs", "sha256", d.slice("sha256:".length));
  const index = JSON.parse(await readFile(path.join(layout, "index.json"), "utf8")) as {
    manifests: { digest: string }[];
  };
  const digest = index.manifests[0]?.digest ?? "";
  const manifest = JSON.parse(await readFile(blob(digest), "utf8")) as {
    config: { digest: string };
    layers: unknown[];
  };
  const cfg = JSON.parse(await readFile(blob(manifest.config.digest), "utf8")) as LayoutConfig;
  return { digest, cfg, layers: manifest.layers.length };
}

/** `created_by` of every history entry after the first `skip` (the base image's own entries). */
export function createdBy(cfg: LayoutConfig, skip = 0): string[] {
  return cfg.history.slice(skip).map((h) => h.created_by ?? "");
}
