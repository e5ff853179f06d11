import { createWriteStream } from "node:fs";
import { BULK_WRITE } from "../../common/bulk-write.js";
import { KilnError } from "../../common/errors.js";
import { digestHex } from "../digest.js";
import { openVerifiedCompressed } from "../layer/verifying-stream.js";
import { MediaTypes } from "../media-types.js";
import type { Image, Layer } from "../types.js";
import { emptyHeader, TarWriter } from "../tar/index.js";
import { outputFile } from "./output-file.js";

/** File name of a layer inside the archive: digest hex plus an extension telling its compression. */
function layerFileName(layer: Layer): string {
  const mt = layer.mediaType;
  const ext = mt.endsWith("+zstd") ? ".tar.zst" : mt.endsWith(".tar") ? ".tar" : ".tar.gz";
  return `${digestHex(layer.digest)}${ext}`;
}

/** Splits `name:tag` (tag defaults to "latest"); digests are not allowed in RepoTags. */
function splitTag(ref: string): [repo: string, tag: string] {
  if (ref.includes("@")) {
    throw new KilnError("INVALID_TAG", `docker-archive tag ${JSON.stringify(ref)} must be name:tag, not a digest`);
  }
  const slash = ref.lastIndexOf("/");
  const colon = ref.lastIndexOf(":");
  if (colon > slash) return [ref.slice(0, colon), ref.slice(colon + 1)];
  return [ref, "latest"];
}

/**
 * Writes a docker-archive tarball (what `docker save` writes and `docker load` / skopeo
 * `docker-archive:` read): `manifest.json` (Config, RepoTags, Layers), the config as `<hex>.json`,
 * each layer's blob as `<hex>.tar.gz` (compressed bytes, which docker load accepts), and a legacy
 * `repositories` file for tagged images. Streams layers (verified against their digests) into a temp
 * file next to `file`, then renames it into place; through a symlink, and straight into a FIFO, a device
 * or a bind-mounted file, as kaniko's `os.Create` does ({@link outputFile}).
 */
export async function writeDockerArchive(
  file: string,
  image: Image,
  tags: string[],
  opts?: {
    signal?: AbortSignal;
    /** `file` is the user's own path (`--tar-path`): follow its links, write into a FIFO (see outputFile). */
    followLinks?: boolean;
  },
): Promise<void> {
  const repoTags = tags.map((t) => splitTag(t)).map(([r, t]) => `${r}:${t}`);
  const configName = `${digestHex(image.manifest.config.digest)}.json`;
  const layerNames = image.layers.map(layerFileName);
  const manifestJson = Buffer.from(JSON.stringify([{ Config: configName, RepoTags: repoTags, Layers: layerNames }]));
  const target = await outputFile(file, { followLinks: opts?.followLinks === true });
  const out = createWriteStream(target.write, BULK_WRITE);
  const writer = new TarWriter(out);
  const addBytes = async (name: string, data: Uint8Array): Promise<void> => {
    const h = emptyHeader(name, "file");
    h.size = data.length;
    await writer.add(h, data);
  };
  try {
    await addBytes(configName, image.rawConfig);
    const seen = new Set<string>();
    for (let i = 0; i < image.layers.length; i++) {
      const layer = image.layers[i] as Layer;
      const name = layerNames[i] as string;
      if (seen.has(name)) continue; // the same blob twice in one image is stored once
      seen.add(name);
      if (layer.mediaType === MediaTypes.dockerLayerForeignGzip) {
        throw new KilnError(
          "FOREIGN_LAYER",
          `layer ${layer.digest} is a foreign layer; it cannot be saved to a docker-archive`,
        );
      }
      // A blob file kiln wrote itself is copied as it is (the tar entry's size is still checked); any other
      // blob is verified while it is copied.
      const src =
        layer.localFile?.() !== undefined
          ? await layer.openCompressed(opts?.signal)
          : await openVerifiedCompressed(layer, opts?.signal);
      const h = emptyHeader(name, "file");
      h.size = layer.size;
      await writer.add(h, src);
    }
    await addBytes("manifest.json", manifestJson);
    if (repoTags.length > 0) {
      const top = image.layers[image.layers.length - 1];
      const id = top ? digestHex(top.diffId) : digestHex(image.manifest.config.digest);
      const repos: Record<string, Record<string, string>> = {};
      for (const t of tags) {
        const [repo, tag] = splitTag(t);
        (repos[repo] ??= {})[tag] = id;
      }
      await addBytes("repositories", Buffer.from(JSON.stringify(repos)));
    }
    await writer.finish();
    await target.commit();
  } catch (e) {
    out.destroy();
    await target.discard();
    throw e;
  }
}
