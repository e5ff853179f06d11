/**
 * The difference between a root and its index: `changed` (added or modified) and `deleted` container
 * paths, and `opaqueDirs` whose lower content is entirely replaced (produced by overlay upper-dir diffs).
 * All lists are sorted bytewise; children of a deleted directory are not listed.
 */
export interface Changes {
  changed: string[];
  deleted: string[];
  opaqueDirs: string[];
  /**
   * `security.capability` already read by the producer (the overlay snapshotter reads it along with the
   * upper's overlay xattrs): `values` holds the container paths in `checked` that have it. The layer writer
   * reads the attribute itself only for regular files outside `checked`.
   */
  capabilities?: KnownCapabilities;
}

/** Capabilities known for a set of container paths (see {@link Changes.capabilities}). */
export interface KnownCapabilities {
  checked: ReadonlySet<string>;
  values: ReadonlyMap<string, Buffer>;
}
