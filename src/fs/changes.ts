/**
 * The difference between a root and its index: `changed` (added or modified) and `deleted` container
 * paths, and `opaqueDirs` whose lower content is entirely replaced (produced by overlay upper-dir diffs).
 * All lists are sorted bytewise; children of a deleted directory are not listed.
 */
export interface Changes {
  changed: string[];
  deleted: string[];
  opaqueDirs: string[];
}
