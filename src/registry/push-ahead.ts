import type { Layer } from "../image/types.js";
import type { ClientContext } from "./events.js";
import type { RegistryHost } from "./host.js";
import { checkBeforeUpload, layerFrom, layerPushBlob, pushBlob, pushScopes, type PushSettings } from "./push.js";
import type { PushState } from "./push-state.js";

/**
 * Pushes one layer of an image that is still being built to `repository`, so that the image's push at
 * the end finds it there: the push shares this one's promise through `state` (or, if this one failed,
 * pushes the blob itself). Only layers that cost no transfer from another registry are pushed ahead:
 * layers a step made (on local disk), base layers the build kept a local copy of, and layers that may be
 * mounted from a repository of the same registry (a base image, a cache entry); a layer only another
 * registry holds is left to the final push, which a failing build never reaches. Skips what the repository
 * is known or assumed to hold. Never rejects (a failure leaves the blob to the final push, which reports it).
 */
export async function pushLayerAhead(
  ctx: ClientContext,
  host: RegistryHost,
  repository: string,
  layer: Layer,
  state: PushState,
  settings: PushSettings,
): Promise<void> {
  try {
    const blob = layerPushBlob(layer, host.registry, repository);
    if (!blob.local && blob.mountFrom.length === 0 && layer.localFile?.() === undefined) return;
    const assumed = await state.assumedIn(host.registry, repository);
    if (assumed.has(layer.digest) || layerFrom(layer, host.registry, repository)) return;
    if (settings.signal?.aborted) return;
    const check = checkBeforeUpload(blob, assumed.size > 0);
    await state.once(host.registry, repository, blob.digest, () =>
      pushBlob(ctx, host, repository, pushScopes(repository, blob.mountFrom), blob, settings, check),
    );
  } catch {
    // The final push pushes the blob itself and reports what fails then.
  }
}
