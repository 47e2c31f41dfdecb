// One resource kept in sync with the API server: @kubernetes/client-node's ListWatch (list, then
// watch from the list's resourceVersion; a 410 Gone — as an ERROR event or as the watch's HTTP
// status — clears the resourceVersion and the next round re-lists, reporting objects that vanished
// meanwhile as deletes), with what that class leaves to its user:
//
// * It stops for good after any other error (a list that failed, a watch connection reset): the
//   library calls the error callbacks and returns (kubernetes-client/javascript#1496, #364). Here
//   every error schedules one restart with client-go's reflector backoff (src/kube/backoff.ts:
//   0.8 s doubling to 30 s, each wait jittered up to twice it, back to 0.8 s after 2 minutes
//   without a failure), or longer when the server said when to retry (Retry-After on a 429 or
//   5xx, as client-go's request retries honour it; at most MAX_RETRY_AFTER_MS). Exactly one restart is
//   pending at a time: restarting from several error callbacks multiplied the watches
//   (kubernetes-client/javascript#1933).
// * Its watch requests neither bookmarks nor a timeout. The watch here asks for
//   allowWatchBookmarks (bookmarks advance the resourceVersion without changes, so a resume after a
//   quiet period does not fall behind the server's history and re-list) and for timeoutSeconds
//   (a random 5-10 minutes, as client-go): the server ends the watch and the next one starts
//   from the last resourceVersion. A client-side deadline 30 s later aborts a watch the server
//   never ended.
// * stop() during a list let the library start a watch anyway; the watch here refuses to start
//   once stopped.
// * A watch that ends at once with nothing delivered is re-opened by the library immediately
//   (a busy loop against a server or proxy that closes watches); here the next one waits,
//   doubling from 0.2 s.
// * Its lists (the function it is given) are the caller's. They are made here as client-go's
//   reflector makes them, so that thousands of nodes (re-)listing at once — a DaemonSet rollout,
//   every watch expiring after an API server restart — are answered from the API server's watch
//   cache, not each read from etcd: the first list asks for resourceVersion "0" (any state),
//   a re-list for "not older than" the last resourceVersion seen (unpaged: the cache serves only
//   unpaged lists of a given version); only when that resourceVersion is unavailable (410, or
//   too large for a lagging server) does it fall back at once to a consistent paged read ("").
//   A first list that came in pages says the cache is off: later lists are paged too.
// * Its watch has no timeout of its own: a server that accepts and never answers holds it
//   forever, a connection that dies silently is noticed when TCP gives up. The watch here is
//   client.ts's openWatch: the socket may stay silent for at most watchIdleSeconds (2 minutes;
//   the server sends bookmarks about every minute), then the watch fails and resumes from its
//   resourceVersion.
import { Backoff } from './backoff.js';
import { ListWatch, Watch, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { isExpired, isTooLargeResourceVersion, KubeApiError, listAll, openWatch, WATCH_IDLE_MS, type KubeObject } from './client.js';

/** The longest Retry-After honoured: the API server asks for a second or a few (its
 * max-in-flight and priority-and-fairness filters, a shutdown); a figure past any reason (or
 * past what a timer can hold) is not a reason to stop watching for longer. */
export const MAX_RETRY_AFTER_MS = 60_000;

/** The informer's cache keeps every object: managedFields (often larger than the rest of the
 * object, and never read here) are dropped on the way in, as kube-proxy's informers do. */
function stripManagedFields(obj: unknown): void {
  const md = (obj as { metadata?: { managedFields?: unknown } } | null)?.metadata;
  if (md && md.managedFields !== undefined) delete md.managedFields;
}

export interface InformerOptions {
  /** API path of the collection: /api/v1/services, /apis/discovery.k8s.io/v1/endpointslices, ... */
  path: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Page size of lists (client-go's reflector: 500). */
  pageSize?: number;
  /** Watch timeout range in seconds (server-side, then the client's deadline 30 s later). */
  watchTimeoutSeconds?: [number, number];
  /** How long a watch's connection may stay silent before it is given up (default 120 s). */
  watchIdleSeconds?: number;
  /** How long a list's connection may stay silent before it is given up (default 60 s). */
  listTimeoutSeconds?: number;
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /** A failure this long after the one before starts the backoff over (client-go: 2 min). */
  backoffResetMs?: number;
  /** Drops what the handlers never read from each listed or watched object (managedFields always
   * go), before the handlers and the cache see it: the cache keeps every object for as long as it
   * lives, and the collector walks what it keeps. */
  trim?(obj: KubeObject): void;
  onAdd(obj: KubeObject): void;
  onUpdate(obj: KubeObject): void;
  onDelete(obj: KubeObject): void;
  /** After each list has been delivered (the first one: the informer is synced). */
  onListed?(): void;
  /** true: a list's items are about to be handed to the handlers — the library does it in one
   * loop right after the list resolves, with nothing but promise callbacks in between; false: they
   * have been (or the round failed). The handlers may sum per-object bookkeeping meanwhile
   * (KubeSync.hold). */
  onDelivery?(delivering: boolean): void;
  onError?(err: unknown, retryInMs: number): void;
  /** onAdd / onUpdate / onDelete threw for `obj` (the watch goes on). */
  onHandlerError?(err: unknown, obj: KubeObject): void;
  /** A watch event was dropped (`what` it was: an unknown type, a BOOKMARK without a
   * resourceVersion); the watch goes on. */
  onIgnoredEvent?(what: string): void;
}

/** The watch event types of the Kubernetes API (watch.EventType). */
const WATCH_EVENT_TYPES = new Set(['ADDED', 'MODIFIED', 'DELETED', 'BOOKMARK', 'ERROR']);

/** A Watch that asks for bookmarks and a timeout, tracks its request, and knows when a list
 * round is over (ListWatch calls watch() right after delivering a list's items). */
class BookmarkWatch extends Watch {
  stopped = false;
  lastController: AbortController | null = null;
  private deadline: NodeJS.Timeout | undefined;
  private startedAt = 0;
  private events = 0;
  private emptyWatches = 0;
  private endedInError = false;
  constructor(private readonly kc: KubeConfig, private readonly informer: ResilientInformer) { super(kc); }

  override async watch(path: string, queryParams: Record<string, string | number | boolean | undefined>, callback: (phase: string, apiObj: any, watchObj?: any) => void, done: (err: any) => void): Promise<AbortController> {
    this.informer.delivered(); // (a list's items, if any, are with the handlers: stopped or not)
    if (this.stopped) { const c = new AbortController(); c.abort(); return c; }
    this.informer.watchStarting();
    // A watch the server (or a proxy) ends at once, with nothing delivered, is re-opened by the
    // library straight away: without a pause that is a busy loop of requests.
    // (only a watch that ended cleanly: one that failed is restarted after the informer's own
    // backoff, and counting it here too stacked a second, uncapped-by-config pause on it — after
    // a burst of dropped connections the informer sat up to 30 s without a watch, its changes
    // waiting, whatever backoffMaxMs said; found by test/kube-converge-fuzz.test.js)
    if (this.startedAt && !this.events && !this.endedInError && Date.now() - this.startedAt < 1000) {
      this.emptyWatches++;
      await new Promise((r) => setTimeout(r, Math.min(100 * 2 ** this.emptyWatches, 30_000)));
      if (this.stopped) { const c = new AbortController(); c.abort(); return c; }
    } else this.emptyWatches = 0;
    this.startedAt = Date.now();
    this.events = 0;
    const [lo, hi] = this.informer.timeoutRange;
    const timeout = Math.round(lo + Math.random() * (hi - lo));
    const params = { ...queryParams, allowWatchBookmarks: true, timeoutSeconds: timeout };
    clearTimeout(this.deadline);
    const onEvent = (phase: string, obj: any, w?: any) => {
      this.events++;
      // The library takes every event but an ERROR's resourceVersion as its own, '' when there is
      // none: an event of a type it does not know, or a BOOKMARK without one, made the next watch
      // a full re-list. Such events carry nothing to apply: dropped (counted, reported).
      const rv = obj?.metadata?.resourceVersion;
      if (!WATCH_EVENT_TYPES.has(phase) || (phase === 'BOOKMARK' && !(typeof rv === 'string' && rv))) {
        this.informer.ignored(phase === 'BOOKMARK' ? 'a BOOKMARK without a resourceVersion' : `an event of unknown type ${JSON.stringify(String(phase).slice(0, 32))}`);
        return;
      }
      if (phase !== 'ERROR') this.informer.seen(rv);
      stripManagedFields(obj);
      if (phase !== 'ERROR' && phase !== 'BOOKMARK' && obj && typeof obj === 'object') this.informer.trim?.(obj);
      callback(phase, obj, w);
    };
    // (a 410 is no failure here: the library re-lists and watches again at once, without the
    // informer's backoff, so a server answering every watch with one must still meet the pause)
    const onDone = (err: any) => { clearTimeout(this.deadline); this.endedInError = !!err && !isExpired(err); done(err); };
    const c = await openWatch(this.kc, path, params, onEvent, onDone, this.informer.watchIdleMs);
    this.lastController = c;
    if (this.stopped) { c.abort(); return c; } // stopped while the request was being prepared
    this.deadline = setTimeout(() => c.abort(new Error(`the watch of ${path} outlived its timeout (${timeout} s) by 30 s`)), (timeout + 30) * 1000);
    this.deadline.unref?.();
    return c;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.deadline);
    this.lastController?.abort();
  }
}

export class ResilientInformer {
  private readonly lw: ListWatch<KubernetesObject>;
  private readonly watch: BookmarkWatch;
  private stopped = false;
  private restartTimer: NodeJS.Timeout | undefined;
  private readonly backoff: Backoff;
  private listedOnce = false;
  private listing = false;
  /** client-go's lastSyncResourceVersion (the newest resourceVersion seen, by a list or an
   * event), whether the server said it was unavailable, and whether lists are served in pages. */
  private lastSyncResourceVersion = '';
  private lastSyncUnavailable = false;
  private pagedLists = false;
  readonly timeoutRange: [number, number];
  readonly watchIdleMs: number;
  readonly trim: ((obj: KubeObject) => void) | undefined;
  /** Counters the tests and metrics read. */
  readonly stats = { lists: 0, watches: 0, errors: 0, restarts: 0, handlerErrors: 0, ignoredEvents: 0 };

  constructor(kc: KubeConfig, private readonly o: InformerOptions) {
    this.timeoutRange = o.watchTimeoutSeconds ?? [300, 600];
    this.trim = o.trim;
    this.watchIdleMs = o.watchIdleSeconds !== undefined ? o.watchIdleSeconds * 1000 : WATCH_IDLE_MS;
    this.backoff = new Backoff({ initialMs: o.backoffInitialMs ?? 800, capMs: o.backoffMaxMs ?? 30_000, ...(o.backoffResetMs !== undefined ? { resetMs: o.backoffResetMs } : {}) });
    this.watch = new BookmarkWatch(kc, this);
    const list = async () => {
      this.listing = true;
      this.stats.lists++;
      const pageSize = o.pageSize ?? 500;
      const at = (resourceVersion: string) => listAll(kc, o.path, {
        labelSelector: o.labelSelector, fieldSelector: o.fieldSelector, resourceVersion,
        ...(o.listTimeoutSeconds !== undefined ? { timeoutMs: o.listTimeoutSeconds * 1000 } : {}),
        limit: resourceVersion === '' || resourceVersion === '0' || this.pagedLists ? pageSize : 0,
      });
      const rv = this.lastSyncUnavailable ? '' : this.lastSyncResourceVersion || '0';
      let l;
      try { l = await at(rv); } catch (e) {
        if (rv === '' || (!isExpired(e) && !isTooLargeResourceVersion(e))) throw e;
        this.lastSyncUnavailable = true;
        l = await at('');
      }
      if (rv === '0' && l.paginated) this.pagedLists = true;
      this.lastSyncUnavailable = false;
      this.seen(l.metadata?.resourceVersion);
      for (const it of l.items) { stripManagedFields(it); if (it && typeof it === 'object') o.trim?.(it); }
      this.delivering = true;
      o.onDelivery?.(true);
      // (a round the library ends some other way — a throw in its delivery with no one to catch it —
      // is over by the next turn of the loop all the same)
      setImmediate(() => this.delivered());
      return l as never;
    };
    this.lw = new ListWatch(o.path, this.watch, list, false, o.labelSelector, o.fieldSelector);
    // The library calls these from an async function nobody awaits: a handler that throws would be
    // an unhandled rejection, which ends the daemon (and its forwarding). Caught here, reported;
    // the object stays in the cache, so the next full sync reconciles it.
    const deliver = (fn: (obj: KubeObject) => void) => (obj: unknown) => {
      try { fn(obj as KubeObject); } catch (e) { this.stats.handlerErrors++; o.onHandlerError?.(e, obj as KubeObject); }
    };
    this.lw.on('add', deliver(o.onAdd));
    this.lw.on('update', deliver(o.onUpdate));
    this.lw.on('delete', deliver(o.onDelete));
    this.lw.on('error', (err) => this.failed(err));
  }

  get synced(): boolean { return this.listedOnce; }
  get resourceVersion(): string { return this.lw.latestResourceVersion(); }

  start(): void {
    this.stopped = false;
    void this.lw.start().catch((e) => this.failed(e));
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    this.watch.stop();
    void this.lw.stop();
  }

  /** Every object the informer holds (the API's state as of its resourceVersion). */
  list(): readonly KubeObject[] { return this.lw.list() as KubeObject[]; }

  /** A list's items are being handed to the handlers (onDelivery). */
  private delivering = false;

  /** A list round's items (if any) have been handed to the handlers, or the round failed. */
  delivered(): void {
    if (!this.delivering) return;
    this.delivering = false;
    this.o.onDelivery?.(false);
  }

  /** Called by the watch before each watch request: a list round (if any) has been delivered. */
  watchStarting(): void {
    this.stats.watches++;
    if (this.listing) {
      this.listing = false;
      this.listedOnce = true;
      this.o.onListed?.();
    }
  }

  /** A watch event dropped (BookmarkWatch): counted and reported. */
  ignored(what: string): void { this.stats.ignoredEvents++; this.o.onIgnoredEvent?.(what); }

  /** The resourceVersion of a list or of a watch event (a bookmark's too). */
  seen(rv: unknown): void { if (typeof rv === 'string' && rv) this.lastSyncResourceVersion = rv; }

  private failed(err: unknown): void {
    this.delivered();
    this.listing = false;
    this.stats.errors++;
    if (this.stopped || this.restartTimer) return;
    const asked = err instanceof KubeApiError && err.retryAfterSeconds !== undefined ? Math.min(err.retryAfterSeconds * 1000, MAX_RETRY_AFTER_MS) : 0;
    const wait = Math.max(this.backoff.next(), asked);
    this.o.onError?.(err, wait);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.stopped) return;
      this.stats.restarts++;
      void this.lw.start().catch((e) => this.failed(e));
    }, wait);
  }
}
