// The keys of a JSON text's objects as the text gives them: JSON.parse keeps the last of a key
// given twice, so what it made cannot tell. Used where a key twice is an error (the CLI's files,
// one-object bodies: src/model/load.ts) or a field problem (an apply's fieldValidation:
// src/model/field-validation.ts).

/** Index of the '"' closing the string that opens at `i` (one not preceded by an odd number of
 * backslashes), or -1 when it is not closed. */
function stringEnd(text: string, i: number): number {
  let j = i;
  for (;;) {
    j = text.indexOf('"', j + 1);
    if (j < 0) return -1;
    let k = j - 1;
    while (text.charCodeAt(k) === 92) k--;
    if ((j - 1 - k) % 2 === 0) return j;
  }
}

/** A key an object of the text gives a second time: its path from the text's root value (the
 * key last) and where the key's text starts. */
export interface DuplicateKey { path: (string | number)[]; at: number }

/** Every key a JSON text gives an object it gave already (at most `max`), compared as JSON.parse
 * reads keys (escapes resolved). One pass, a set of keys per open object; a text that is not
 * JSON may give any answer (JSON.parse reports it). */
export function duplicateKeys(text: string, max = 100): DuplicateKey[] {
  const out: DuplicateKey[] = [];
  // per open bracket: an object's keys (null for an array); the path, one entry per bracket
  const keys: (Set<string> | null)[] = [];
  const path: (string | number)[] = [];
  let expectKey = false;
  for (let i = 0, n = text.length; i < n && out.length < max; i++) {
    const c = text.charCodeAt(i);
    if (c === 34) {
      const j = stringEnd(text, i);
      if (j < 0) return out;
      const set = keys[keys.length - 1];
      if (expectKey && set) {
        let key: string;
        try { key = JSON.parse(text.slice(i, j + 1)) as string; } catch { return out; }
        path[path.length - 1] = key;
        if (set.has(key)) out.push({ path: path.slice(), at: i });
        set.add(key);
      }
      expectKey = false;
      i = j;
    } else if (c === 123) { keys.push(new Set()); path.push(''); expectKey = true; }
    else if (c === 91) { keys.push(null); path.push(0); expectKey = false; }
    else if (c === 125 || c === 93) { keys.pop(); path.pop(); expectKey = false; }
    else if (c === 44) {
      const set = keys[keys.length - 1];
      if (set === null && keys.length) (path[path.length - 1] as number)++;
      expectKey = !!set;
    }
  }
  return out;
}

/** ':' outside strings in a JSON text: the keys its objects give, each time given. */
export function countJsonKeys(text: string): number {
  let n = 0;
  for (let i = 0, len = text.length; i < len; i++) {
    const c = text.charCodeAt(i);
    if (c === 58) n++;
    else if (c === 34) {
      i = stringEnd(text, i);
      if (i < 0) return n;
    }
  }
  return n;
}
