/**
 * Finding the known word closest to a misspelt one, for "did you mean" hints.
 *
 * @module
 */

/** The largest edit distance at which a known word is still suggested. */
const MAX_DISTANCE = 2;

/**
 * Returns the candidate closest to `word`, ignoring case, if it is at most two edits away.
 *
 * @param word the unknown word, e.g. `PROT`
 * @param candidates the known words
 * @returns e.g. `PORT`, or `undefined` when nothing is close enough
 */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = MAX_DISTANCE + 1;
  for (const candidate of candidates) {
    const distance = editDistance(word.toUpperCase(), candidate.toUpperCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** Levenshtein distance: insertions, deletions and substitutions, one row at a time. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1);
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, substitution);
    }
    previous = current;
  }
  return previous[b.length];
}
