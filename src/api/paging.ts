// Paged reads: `?limit=N&continue=TOKEN` on the list routes, shaped like the Kubernetes API's
// (`metadata.continue`, `metadata.remainingItemCount`). A list is sorted by its key and the token
// is the last key of the page (base64url), so a page costs a sort of the keys, never a body of the
// whole state: at 10k services an unpaged GET /api/v1/counters was 13 MB. Objects added or removed
// between pages are seen or not, as with a Kubernetes list that outlived its resourceVersion.

/** Items per page when the request names no limit. */
export const DEFAULT_PAGE_LIMIT = 500;
/** The largest limit a request may ask for. */
export const MAX_PAGE_LIMIT = 10000;

export interface PageRequest { limit: number; after: string | null }

export class PageError extends Error {
  constructor(message: string) { super(message); this.name = 'PageError'; }
}

export function encodeContinue(key: string): string { return Buffer.from(key, 'utf8').toString('base64url'); }

/** The page a query asks for; PageError (a 400) for a bad limit or token. */
export function pageRequest(query: unknown): PageRequest {
  const q = (query ?? {}) as { limit?: unknown; continue?: unknown };
  let limit = DEFAULT_PAGE_LIMIT;
  if (q.limit !== undefined && q.limit !== '') {
    // decimal digits only, as the Kubernetes API parses it: Number() also reads "1e3", "0x10", " 5"
    const n = typeof q.limit === 'string' && /^\d{1,9}$/.test(q.limit) ? Number(q.limit) : NaN;
    if (!Number.isInteger(n) || n < 1 || n > MAX_PAGE_LIMIT) throw new PageError(`limit: must be an integer from 1 to ${MAX_PAGE_LIMIT}, got ${JSON.stringify(q.limit)}`);
    limit = n;
  }
  let after: string | null = null;
  if (q.continue !== undefined && q.continue !== '') {
    if (typeof q.continue !== 'string' || !/^[A-Za-z0-9_-]{1,1400}$/.test(q.continue)) throw new PageError('continue: not a token this API returned');
    after = Buffer.from(q.continue, 'base64url').toString('utf8');
  }
  return { limit, after };
}

/** A query parameter that filters (namespace, service): its one value, or undefined when absent.
 * Given twice (`?namespace=a&namespace=b`) it would be an array that matches nothing, or only
 * one of the two: refused (PageError, a 400) instead of answering a list the client did not ask for. */
export function singleQuery(query: unknown, name: string): string | undefined {
  const v = (query as Record<string, unknown> | null | undefined)?.[name];
  if (v === undefined || typeof v === 'string') return v;
  throw new PageError(`${name}: given ${Array.isArray(v) ? v.length : 'several'} times: give it once`);
}

/** A Service's key as a `service` filter gives it: `namespace/name`. */
export const SERVICE_KEY = /^[a-z0-9-]+\/[a-z0-9.-]+$/;

/** The `service` filter (singleQuery): refused (PageError, a 400) when it cannot name a Service —
 * a bare name or another shape would match nothing and answer an empty list, which reads as a
 * Service that exists and has nothing. */
export function serviceQuery(query: unknown): string | undefined {
  const v = singleQuery(query, 'service');
  if (v !== undefined && !SERVICE_KEY.test(v)) throw new PageError(`service: must be namespace/name, got ${JSON.stringify(v.slice(0, 300))}`);
  return v;
}

/** The dryRun query parameter of a change: absent, "false" or "0" is a real change; "true", "1",
 * "" or "All" (the Kubernetes API's value) a dry run. Anything else — another value, values that
 * disagree, another parameter — is refused (PageError, a 400): read as a real change, a dry run
 * asked as `dryRun=yes` or `dryrun=true` would have applied it. */
export function dryRunOf(query: unknown, also: readonly string[] = []): boolean {
  // a change takes no other parameter: a misspelt one (`dryrun=true`) must not make it a real change
  for (const k of Object.keys((query ?? {}) as object)) {
    if (k !== 'dryRun' && !also.includes(k)) throw new PageError(`unknown query parameter ${JSON.stringify(k.slice(0, 64))} (a change takes ${['dryRun', ...also].join(' and ')} only): nothing was changed`);
  }
  const v = (query as Record<string, unknown> | null | undefined)?.dryRun;
  if (v === undefined) return false;
  const one = (x: unknown): boolean => {
    if (x === 'true' || x === '1' || x === '' || x === 'All') return true;
    if (x === 'false' || x === '0') return false;
    throw new PageError(`dryRun: must be true or All (a dry run) or false, got ${JSON.stringify(String(x).slice(0, 64))}: nothing was changed`);
  };
  if (!Array.isArray(v)) return one(v);
  const all = v.map(one);
  if (all.some((x) => x !== all[0])) throw new PageError('dryRun: given with values that disagree: nothing was changed');
  return all[0];
}

export interface Page<T> { items: T[]; metadata: { continue?: string; remainingItemCount?: number } }

/** One page of `sorted` (ascending by `key`): the items after the request's token, at most its limit. */
export function page<T>(sorted: readonly T[], key: (x: T) => string, req: PageRequest): Page<T> {
  let lo = 0;
  if (req.after !== null) {
    // first index whose key is greater than the token's
    let hi = sorted.length;
    while (lo < hi) { const mid = (lo + hi) >>> 1; if (key(sorted[mid]) <= req.after) lo = mid + 1; else hi = mid; }
  }
  const items = sorted.slice(lo, lo + req.limit);
  const remaining = sorted.length - lo - items.length;
  return { items, metadata: remaining > 0 ? { continue: encodeContinue(key(items[items.length - 1])), remainingItemCount: remaining } : {} };
}

/** The field validation an apply asks for (the Kubernetes API's `fieldValidation`): what is done
 * with an object's unknown fields and a JSON key given twice. */
export type FieldValidation = 'Ignore' | 'Warn' | 'Strict';
const FIELD_VALIDATIONS: readonly string[] = ['Ignore', 'Strict', 'Warn'];

/** The fieldValidation query parameter: absent or empty is Warn (the API server's default for a
 * request that does not ask; kubectl asks Strict), else exactly Ignore, Warn or Strict. Anything
 * else, or values given twice that disagree, is refused (PageError, a 400): nothing is changed. */
export function fieldValidationOf(query: unknown): FieldValidation {
  const v = (query as Record<string, unknown> | null | undefined)?.fieldValidation;
  const vs = v === undefined ? [] : Array.isArray(v) ? v : [v];
  const given = vs.filter((x) => x !== '');
  for (const x of given) {
    if (typeof x !== 'string' || !FIELD_VALIDATIONS.includes(x)) {
      throw new PageError(`fieldValidation: Unsupported value: ${JSON.stringify(String(x).slice(0, 64))}: supported values: ${FIELD_VALIDATIONS.map((f) => JSON.stringify(f)).join(', ')}: nothing was changed`);
    }
  }
  if (given.some((x) => x !== given[0])) throw new PageError('fieldValidation: given with values that disagree: nothing was changed');
  return (given[0] as FieldValidation | undefined) ?? 'Warn';
}
