// Diff fields built only when read: a full compile's diff lists every frontend and backend, and
// the table writer reads them from the compiler's tables without objects (forEachUpsertBackend),
// so the lists are made only for readers that need them (a worker's message, a listing).
import type { IrDiff } from './ir.js';

/** obj[key] becomes make()'s value on first read (or whatever is assigned first), then a plain
 * data property; `settled` runs once either way. */
export function defineLazy<O extends object, K extends keyof O>(obj: O, key: K, make: () => O[K], settled?: () => void): void {
  const settle = (v: O[K]): O[K] => {
    Object.defineProperty(obj, key, { value: v, enumerable: true, writable: true, configurable: true });
    settled?.();
    return v;
  };
  Object.defineProperty(obj, key, { enumerable: true, configurable: true, get: () => settle(make()), set: (v: O[K]) => { settle(v); } });
}

/** Makes `diff[key]` the ids 1..n, built only if read (a fresh compile's undo removes everything
 * it made: read on rollback only). */
export function setLazyIdRange(diff: IrDiff, key: 'frontendsRemove' | 'backendsRemove', n: number): void {
  defineLazy(diff, key, () => { const out = new Array<number>(n); for (let i = 0; i < n; i++) out[i] = i + 1; return out; });
}
