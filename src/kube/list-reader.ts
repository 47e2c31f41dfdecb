// A list answer from the API server ({"kind": "ServiceList", "metadata": {...}, "items": [...]})
// parsed while it arrives. Read whole and then parsed, a 10k-Service list page (tens of MB) was
// decoded into one string and parsed in one go after the last byte came; every item — full API
// objects, managedFields and all — stayed alive until the whole page had been parsed and then
// trimmed, and the collector had to copy it all to the old generation (at 10k Services × 10
// endpoints: ~0.5 s of GC in the list window). Here the bytes are scanned as they come (depth,
// strings), the items array's elements are found, and the elements that closed in each chunk are
// parsed together (one JSON.parse of `[e1, e2, ...]`) and handed to `onItem` right away (the
// informer drops managedFields there), so the parts of an object never kept die young.
//
// Only the shape the API server sends takes this path: a root object whose one top-level "items"
// member is an array of objects, no escape in a top-level string (a key spelled with escapes
// could be "items"). Anything else — a Status, `"items": null`, an element that is not an
// object, something that does not parse — turns the reader off, and the caller parses the whole
// body as before (the chunks are kept for that: Buffers outside the JS heap, dropped with the
// reader), so every answer and error is the one it always was.

const BEFORE = 0;   // before the root '{'
const ROOT = 1;     // in the root object, outside the items array
const FIRST = 2;    // after the items' '[': an element or ']'
const NEXT = 3;     // after ',': an element
const AFTER = 4;    // after an element: ',' or ']'
const IN = 5;       // inside an element
const DONE = 6;     // after the root's '}'
const OFF = 7;      // not the common shape: the caller parses the whole body

const ITEMS = Buffer.from('"items"');

/** The bytes of elements parsed together (256 KiB: past V8's largest regular heap object). */
const BATCH = 256 * 1024;

function isSpace(c: number): boolean { return c === 32 || c === 10 || c === 13 || c === 9; }

export class ListReader<T = unknown> {
  /** Every chunk so far (for the whole-body fallback, and the elements' bytes). */
  private readonly chunks: Buffer[] = [];
  /** The absolute offset of chunks[i]'s first byte. */
  private readonly starts: number[] = [];
  private len = 0;
  /** The first chunk that may still hold bytes of an element not parsed yet. */
  private firstLive = 0;
  private phase = BEFORE;
  private depth = 0;
  private inString = false;
  /** A backslash ended the last chunk inside a string: the next byte is escaped. */
  private escaped = false;
  private stringStart = 0;
  private stringEscape = false;
  private itemsKey = false;
  private itemsColon = false;
  private itemsOpen = -1;
  private itemsClose = -1;
  private elemStart = 0;
  /** Spans [start, end) of elements closed and not parsed yet. */
  private readonly pending: number[] = [];
  readonly items: T[] = [];

  /** `parse`: false only collects the bytes (an error answer, a body that is no list). */
  constructor(private readonly onItem?: (item: T) => void, parse = true) { if (!parse) this.phase = OFF; }

  get length(): number { return this.len; }

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.starts.push(this.len);
    const base = this.len;
    this.len += chunk.length;
    if (this.phase === OFF) return;
    this.scan(chunk, base);
    const sp = this.pending;
    // (parsed in batches of at least BATCH bytes: the batch's text is then one string in V8's
    // large-object space, which the young-generation collector never copies)
    if (sp.length && (sp[sp.length - 1] - sp[0] >= BATCH || (this.phase !== IN && this.phase !== AFTER && this.phase !== NEXT))) this.parsePending();
    if (this.phase === OFF) this.items.length = 0;
  }

  /** The answer: `{ list }` (its items those parsed as they came) when the reader followed it to the
   * end, else `{ text }`, the whole body to be parsed as before. */
  finish(): { list: Record<string, unknown> & { items: T[] }; text?: undefined } | { list: null; text: string } {
    if (this.phase === DONE) {
      const rest = `${this.slice(0, this.itemsOpen)}[]${this.slice(this.itemsClose + 1, this.len)}`;
      let root: unknown;
      try { root = JSON.parse(rest); } catch { root = undefined; }
      if (root && typeof root === 'object' && !Array.isArray(root)) {
        (root as { items: T[] }).items = this.items;
        return { list: root as Record<string, unknown> & { items: T[] } };
      }
    }
    return { list: null, text: Buffer.concat(this.chunks, this.len).toString('utf8') };
  }

  private off(): void { this.phase = OFF; this.pending.length = 0; this.items.length = 0; }

  /** The body's bytes [start, end) decoded (spans start and end at ASCII bytes: decoded alone as
   * the whole text is). */
  private slice(start: number, end: number): string {
    if (end <= start) return '';
    const parts: Buffer[] = [];
    let i = this.chunkAt(start);
    for (; i < this.chunks.length && this.starts[i] < end; i++) {
      const c = this.chunks[i], s = this.starts[i];
      parts.push(c.subarray(Math.max(0, start - s), Math.min(c.length, end - s)));
    }
    return (parts.length === 1 ? parts[0] : Buffer.concat(parts)).toString('utf8');
  }

  /** `[` + the bytes [start, end) + `]`, decoded once (no concatenated copies). */
  private bracketed(start: number, end: number): string {
    const out = Buffer.allocUnsafeSlow(end - start + 2);
    out[0] = 91;
    let at = 1;
    for (let i = this.chunkAt(start); i < this.chunks.length && this.starts[i] < end; i++) {
      const c = this.chunks[i], s = this.starts[i];
      at += c.copy(out, at, Math.max(0, start - s), Math.min(c.length, end - s));
    }
    out[at] = 93;
    return out.toString('utf8');
  }

  /** The chunk holding byte `at` (a binary search over the chunks' starts). */
  private chunkAt(at: number): number {
    let lo = this.firstLive, hi = this.chunks.length - 1;
    if (this.starts[lo] > at) lo = 0;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid] <= at) lo = mid; else hi = mid - 1;
    }
    return lo;
  }

  /** Whether the top-level string at [start, end) (absolute, quotes included) is "items". */
  private isItemsKey(start: number, end: number): boolean {
    if (end - start !== ITEMS.length) return false;
    return this.slice(start, end) === '"items"';
  }

  private scan(b: Buffer, base: number): void {
    const n = b.length;
    if (!n) return;
    let i = 0, depth = this.depth, inString = this.inString, phase = this.phase;
    if (this.escaped) { this.escaped = false; i = 1; } // (the byte a backslash at the end of the last chunk escapes)
    while (i < n) {
      if (inString) {
        // to the closing quote (most bytes are in strings); a backslash skips the next byte
        while (i < n) {
          const d = b[i];
          if (d === 34) break;
          if (d === 92) {
            if (phase === ROOT) this.stringEscape = true;
            if (i + 1 >= n) { this.escaped = true; i = n; break; }
            i += 2;
          } else i++;
        }
        if (i >= n) break;
        inString = false;
        i++;
        if (phase === ROOT && depth === 1) {
          // a top-level string with an escape may be "items" spelled otherwise: the whole body decides
          if (this.stringEscape) { this.off(); return; }
          this.itemsKey = this.isItemsKey(this.stringStart, base + i);
        }
        continue;
      }
      const c = b[i++];
      if (phase === IN) {
        if (c === 34) inString = true;
        else if (c === 123 || c === 91) depth++;
        else if (c === 125 || c === 93) {
          if (--depth === 2) { this.pending.push(this.elemStart, base + i); phase = AFTER; }
        }
        continue;
      }
      if (isSpace(c)) continue;
      if (phase === ROOT) {
        if (depth === 1) {
          const afterColon = this.itemsColon;
          this.itemsColon = false;
          if (afterColon) {
            if (c !== 91 || this.itemsOpen >= 0) { this.off(); return; } // not an array, or a second "items"
            this.itemsOpen = base + i - 1;
            phase = FIRST; depth = 2;
            continue;
          }
          this.itemsColon = c === 58 && this.itemsKey;
          this.itemsKey = false;
          if (c === 34) { this.stringStart = base + i - 1; this.stringEscape = false; }
        }
        if (c === 34) inString = true;
        else if (c === 123 || c === 91) depth++;
        else if (c === 125 || c === 93) { if (--depth === 0) phase = DONE; }
        continue;
      }
      if (phase === BEFORE) {
        if (c !== 123) { this.off(); return; }
        phase = ROOT; depth = 1;
      } else if (phase === FIRST || phase === NEXT) {
        if (c === 123) { phase = IN; depth = 3; this.elemStart = base + i - 1; }
        else if (c === 93 && phase === FIRST) { phase = ROOT; depth = 1; this.itemsClose = base + i - 1; }
        else { this.off(); return; }
      } else if (phase === AFTER) {
        if (c === 44) phase = NEXT;
        else if (c === 93) { phase = ROOT; depth = 1; this.itemsClose = base + i - 1; }
        else { this.off(); return; }
      } else { this.off(); return; } // DONE: something after the root
    }
    this.depth = depth; this.inString = inString; this.phase = phase;
  }

  /** Parses the elements that closed in this chunk in one JSON.parse (the text from the first's
   * start to the last's end, in brackets: the separators between them were scanned) and hands
   * each to onItem. Off when it does not parse or onItem throws. */
  private parsePending(): void {
    const sp = this.pending, k = sp.length / 2;
    const first = sp[0], last = sp[sp.length - 1];
    sp.length = 0;
    let arr: unknown;
    try { arr = JSON.parse(this.bracketed(first, last)); } catch { this.off(); return; }
    if (!Array.isArray(arr) || arr.length !== k) { this.off(); return; }
    for (const o of arr as T[]) {
      if (this.onItem) try { this.onItem(o); } catch { this.off(); return; }
      this.items.push(o);
    }
    // (no element before `last` is read again; the chunks stay for the whole-body fallback)
    this.firstLive = this.chunkAt(last);
  }
}
