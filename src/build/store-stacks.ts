import type { LayerStore, StoredLayer } from "../fs/index.js";
import type { Layer } from "../image/types.js";
import type { Reporter } from "./events.js";

/**
 * Stack indexes of the layer store prepared in the background while a build publishes the layers it
 * produced ({@link LayerStore.stackIndex}): a later build that mounts a root of those layers then
 * loads the stack's index instead of building it on its critical path.
 */
export interface StackPreparer {
  /** Remembers an entry this build leased (a stack of it then needs no second lookup). */
  stored(entry: StoredLayer): void;
  /**
   * Queues the stack index of `layers` (base first) to be prepared once `ready` resolves true (after
   * the publish of the stack's layers that this build produced; false: skip it). One stack is prepared
   * at a time, in queue order. Skipped when `layers` is a single layer (its own index is its stack),
   * when a layer is not in the store (nothing is extracted for this), when a layer's stored index is
   * damaged, and once `signal` is aborted. Failures are debug events.
   */
  prepare(layers: readonly Layer[], ready: Promise<boolean>, signal?: AbortSignal): void;
  /** Resolves when every queued stack is prepared or skipped (never rejects). */
  settled(): Promise<void>;
}

/** A {@link StackPreparer} of one build over `store` (whose leases end with the build). */
export function stackPreparer(store: LayerStore, report: Reporter): StackPreparer {
  const entries = new Map<string, StoredLayer>();
  let queue: Promise<void> = Promise.resolve();

  /** The leased entry of `layer`, or undefined when it is not stored (then nothing is extracted). */
  const storedEntry = async (layer: Layer, signal?: AbortSignal): Promise<StoredLayer | undefined> => {
    const known = entries.get(layer.diffId);
    if (known !== undefined) return known;
    if (signal?.aborted) return undefined;
    const e = await store.lookup(layer.diffId);
    if (e !== undefined) entries.set(layer.diffId, e);
    return e;
  };

  const prepareNow = async (layers: readonly Layer[], signal?: AbortSignal): Promise<void> => {
    const t0 = Date.now();
    const stack: StoredLayer[] = [];
    for (const layer of layers) {
      if (signal?.aborted) return;
      const e = await storedEntry(layer, signal);
      if (e === undefined) {
        report({
          kind: "debug",
          message: `layer store: no stack index prepared for ${layers.length} layers: ${layer.diffId} is not stored`,
        });
        return;
      }
      stack.push(e);
    }
    // Every layer's index is read (and verified) first: the store deletes an entry whose index it
    // finds damaged while building a stack, and this build's own root may be mounted from it.
    for (const e of stack) void e.index;
    if (signal?.aborted) return;
    await store.stackIndex(stack);
    report({
      kind: "debug",
      message: `layer store: stack index of ${stack.length} layers up to ${stack[stack.length - 1]?.diffId ?? ""} prepared in ${Date.now() - t0} ms`,
    });
  };

  return {
    stored(entry) {
      entries.set(entry.diffId, entry);
    },
    prepare(layers, ready, signal) {
      if (layers.length < 2) return;
      queue = queue
        .then(() => ready)
        .then((go) => (go ? prepareNow(layers, signal) : undefined))
        .catch((err: unknown) => {
          report({
            kind: "debug",
            message: `layer store: no stack index prepared for ${layers.length} layers: ${err instanceof Error ? err.message : String(err)}`,
          });
        });
    },
    settled: () => queue,
  };
}
