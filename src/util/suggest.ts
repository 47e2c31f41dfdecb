// "did you mean ...?" for a name that is not one of the known ones: a config file's unknown key,
// the CLI's unknown flag, command (src/util/cli-hints.ts, in place of commander's own hint) or
// `wdp get` resource. One rule for all: a name is suggested when it is within 2 edits of the word (insert, delete,
// substitute, swap two neighbours; case ignored) or when one is a prefix of the other ("worker"
// for "workers"). Cost: a (|word|+1) x (|name|+1) table per known name, for names of ~20 chars.

const MAX_EDITS = 2;
/** A prefix shorter than this suggests nothing ("a" is a prefix of too much). */
const MIN_PREFIX = 3;

/** The optimal-string-alignment distance between a and b; MAX_EDITS + 1 once it is larger. */
function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > MAX_EDITS) return MAX_EDITS + 1;
  const d: number[][] = [];
  for (let i = 0; i <= a.length; i++) d.push([i]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/** The known names close to `word` (the closest ones, at most three, sorted); none when none is. */
export function similarNames(word: string, known: Iterable<string>): string[] {
  const w = word.toLowerCase();
  let best = Infinity, out: string[] = [];
  for (const name of new Set(known)) {
    if (name === word) continue;
    const n = name.toLowerCase();
    let d = editDistance(w, n);
    // a prefix ranks after every name within the edit limit
    if (d > MAX_EDITS && Math.min(w.length, n.length) >= MIN_PREFIX && (n.startsWith(w) || w.startsWith(n))) d = MAX_EDITS + 1;
    else if (d > MAX_EDITS) continue;
    if (d < best) { best = d; out = [name]; } else if (d === best) out.push(name);
  }
  return out.sort().slice(0, 3);
}

/** `did you mean "workers"?` (or `one of "a", "b"?`) for `word` among `known`; '' when nothing is close. */
export function didYouMean(word: string, known: Iterable<string>): string {
  const s = similarNames(word, known);
  if (!s.length) return '';
  return `did you mean ${s.length > 1 ? 'one of ' : ''}${s.map((x) => JSON.stringify(x)).join(', ')}?`;
}
