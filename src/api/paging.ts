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
    const n = Number(q.limit);
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
