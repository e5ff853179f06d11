/** Levenshtein edit distance between two strings. */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur[j] = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost);
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
}

const squash = (s: string): string => s.toLowerCase().replace(/[-_]/g, "");

/**
 * Picks the known flag name closest to `typed` for a "did you mean" hint: same name ignoring
 * case/`-`/`_` first, then the smallest edit distance within a third of the length (at least 2),
 * then a known name that contains or is contained in `typed`. Returns undefined if nothing is close.
 */
export function suggestFlag(typed: string, known: readonly string[]): string | undefined {
  const sq = squash(typed);
  const same = known.find((k) => squash(k) === sq);
  if (same !== undefined) return same;
  let best: string | undefined;
  let bestD = Math.max(2, Math.floor(typed.length / 3)) + 1;
  for (const k of known) {
    const d = editDistance(typed, k);
    if (d < bestD) [best, bestD] = [k, d];
  }
  if (best !== undefined) return best;
  if (sq.length >= 4) {
    const related = known.filter((k) => squash(k).includes(sq) || (squash(k).length >= 4 && sq.includes(squash(k))));
    return related.sort((a, b) => b.length - a.length)[0];
  }
  return undefined;
}
