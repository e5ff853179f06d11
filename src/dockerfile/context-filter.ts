import { PatternMatcher } from "./pattern-matcher.js";

/** One entry of a build-context listing, slash-separated and relative to the context root. */
export interface ContextEntry {
  path: string;
  type: "file" | "dir";
}

/** Include/exclude patterns of {@link filterContext}. */
export interface ContextFilter {
  /** BuildKit include filter (COPY source selection): when non-empty, only matches and their parents are kept. */
  includePatterns?: string[];
  /** .dockerignore patterns. */
  excludePatterns?: string[];
}

interface TreeNode {
  name: string;
  path: string;
  type: "file" | "dir";
  children: Map<string, TreeNode>;
}

/**
 * Filters a context listing the way BuildKit's fsutil walker does and returns the kept entries in
 * walk order (depth first, names in byte order). An excluded directory is still descended into when
 * `!` exceptions exist and is emitted only if something below it is kept; parent directories of
 * included entries are emitted. Throws DockerfileError for malformed patterns.
 */
export function filterContext(entries: readonly ContextEntry[], filter: ContextFilter = {}): ContextEntry[] {
  const root: TreeNode = { name: "", path: "", type: "dir", children: new Map() };
  for (const e of entries) {
    const parts = e.path.split("/").filter((p) => p !== "" && p !== ".");
    let node = root;
    parts.forEach((part, i) => {
      let child = node.children.get(part);
      if (!child) {
        const path = parts.slice(0, i + 1).join("/");
        child = { name: part, path, type: i === parts.length - 1 ? e.type : "dir", children: new Map() };
        node.children.set(part, child);
      } else if (i === parts.length - 1) {
        child.type = e.type;
      }
      node = child;
    });
  }
  const include = filter.includePatterns?.length ? new PatternMatcher(filter.includePatterns) : undefined;
  const exclude = filter.excludePatterns?.length ? new PatternMatcher(filter.excludePatterns) : undefined;
  const out: ContextEntry[] = [];

  /** Walks `node`'s children; `pending` are ancestors not yet emitted. Returns whether anything was emitted. */
  const walk = (node: TreeNode, pending: TreeNode[], parentIncluded: boolean): void => {
    const names = [...node.children.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (const name of names) {
      const child = node.children.get(name) as TreeNode;
      const excluded = exclude?.matches(child.path) ?? false;
      const included = parentIncluded || !include || include.matches(child.path);
      const keep = included && !excluded;
      if (keep) {
        for (const p of pending) out.push({ path: p.path, type: "dir" });
        pending.length = 0;
        out.push({ path: child.path, type: child.type });
      }
      if (child.type !== "dir") continue;
      if (excluded && !exclude?.exclusions) continue;
      const below = keep ? [] : [...pending, child];
      walk(child, below, keep && include !== undefined);
      // Ancestors emitted while walking below must not be emitted again by a later sibling.
      if (below.length < pending.length + (keep ? 0 : 1)) pending.length = 0;
    }
  };
  walk(root, [], false);
  return out;
}
