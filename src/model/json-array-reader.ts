// A request body parsed while it arrives. A full sync is one JSON array of 20k objects (13 MB);
// read whole and then parsed, the body's bytes are copied twice, scanned for depth and parsed on the
// main thread after the last byte came, while the main thread had mostly waited for the client
// during the upload (~0.15 s at 10k Services). Here each chunk is copied once into one buffer,
// scanned as it comes (depth, strings, the array's separators), and each element object is parsed
// with JSON.parse as soon as its closing brace arrived.
//
// Only the common shapes take this path: a JSON array (JSON whitespace around it), or a List
// object ({"kind": "List", "items": [...]}, as `wdp apply` sends), whose every element (item) is an
// object that is not a List, everything within MAX_DEPTH and each element spanning fewer than
// SPAN_WITHIN_LIMIT bytes (a List's other members fewer together, no escape in their top-level
// strings), the text all ASCII. Anything else — YAML, nested Lists, a syntax error, something too
// deep or too large, non-ASCII text — turns the reader off, and the caller parses the whole text
// as before (src/model/load.ts), so every error message is the one it always was. The result
// equals parseManifestSources' for the same text (a test compares them): the objects, and for an
// array each element's span in the text.
import { isAscii } from 'node:buffer';
import { MAX_DEPTH, SPAN_WITHIN_LIMIT } from './limits.js';
import { bodySlice, type BodyText } from '../util/body-text.js';
import type { ObjectTexts } from './load.js';

// where the scan is, outside the elements
const BEFORE = 0;      // before the root '[' or '{'
const FIRST = 1;       // after the array's '[': an element or ']'
const NEXT = 2;        // after ',': an element
const AFTER = 3;       // after an element: ',' or ']'
const IN = 4;          // inside an element
const DONE = 5;        // after the root's ']' or '}'
const OFF = 6;         // not a common shape: the caller parses the whole text
const ROOT = 7;        // in a root object (a List), outside its items array

/** The bytes of "items" (with its quotes): a List's member that holds the objects. */
const ITEMS = Buffer.from('"items"');

function isSpace(c: number): boolean { return c === 32 || c === 10 || c === 13 || c === 9; }

export class JsonArrayReader {
  private buf: Buffer;
  private len = 0;
  /** The next byte to scan (past `len` when an escape's second byte has not arrived yet). */
  private pos = 0;
  private phase = BEFORE;
  private depth = 0;
  private inString = false;
  private elemStart = 0;
  /** The depth of the array whose elements are the objects: 1 (the root), 2 (a List's items). */
  private base = 1;
  // a root object: where its items array opens and closes; whether the last thing read at its
  // top level was the key "items", then its ':'
  private itemsOpen = -1;
  private itemsClose = -1;
  private itemsKey = false;
  private itemsValue = false;
  private stringStart = 0;
  private readonly objs: unknown[] = [];
  private readonly spans: number[] = [];
  /** ':' read outside strings so far, and when the element being read started: each is one
   * key of an object, so an element's count is its keys as written, duplicates included
   * (keyCount: JSON.parse keeps the last of a key given twice). */
  private colons = 0;
  private elemColons = 0;
  private readonly keyCounts: number[] = [];
  /** Elements closed (their spans the last ones) but not parsed yet. */
  private pending = 0;

  /** `expected`: the body's announced length, if any (the buffer grows beyond it if needed; it is
   * not allocated whole before the bytes come: a client announcing 16 MB and sending nothing
   * holds little). `parse`: false only collects the bytes. `onObject`: called with each object
   * as it is parsed (and the objects so far, it included); its work is done while the rest of
   * the body arrives. Nothing it is told counts until finish() answers `parsed`. */
  constructor(expected = 0, parse = true, private readonly onObject?: (o: unknown, objs: readonly unknown[]) => void) {
    this.buf = Buffer.allocUnsafe(Math.max(4096, Math.min(expected, 1 << 20)));
    this.expected = expected;
    if (!parse) this.phase = OFF;
  }
  private readonly expected: number;

  get length(): number { return this.len; }

  push(chunk: Buffer): void {
    const need = this.len + chunk.length;
    if (need > this.buf.length) {
      let size = this.buf.length * 2;
      if (this.expected >= need && this.expected > size) size = this.expected; // the rest as announced
      const next = Buffer.allocUnsafe(Math.max(size, need));
      this.buf.copy(next, 0, 0, this.len);
      this.buf = next;
    }
    chunk.copy(this.buf, this.len);
    this.len = need;
    if (this.phase !== OFF) this.scan();
  }

  /** The body's objects when the reader parsed them all — `texts` as parseManifestSources answers
   * them (null for a List), over the body's bytes when they are all ASCII (the caller owns them
   * then: no decoded copy of the whole body is made) — else the body's text, to be parsed whole. */
  finish(): { parsed: { objs: unknown[]; texts: ObjectTexts | null }; text?: undefined } | { parsed: null; text: string } {
    const bytes = this.buf.subarray(0, this.len);
    // all ASCII (a vectorised check): a byte is a character, so the spans (byte offsets) are the
    // text's character offsets and the bytes can stand for the text
    const ascii = isAscii(bytes);
    if (this.phase === DONE && ascii) {
      if (this.base === 1) return { parsed: { objs: this.objs, texts: { text: bytes, spans: this.spans } } };
      if (this.isList(bytes)) return { parsed: { objs: this.objs, texts: null } };
    }
    // (decoded as one byte per character when ASCII: a copy; utf8 validates)
    const text = bytes.toString(ascii ? 'latin1' : 'utf8');
    // not ASCII but one character per byte (each byte that is not UTF-8 one replacement
    // character): the spans hold on the decoded text
    if (this.phase !== DONE || ascii || text.length !== this.len) return { text, parsed: null };
    if (this.base === 1) return { parsed: { objs: this.objs, texts: { text, spans: this.spans } } };
    return this.isList(text) ? { parsed: { objs: this.objs, texts: null } } : { text, parsed: null };
  }

  /** Whether the root object, its items aside, is a List (small enough that no object in it can
   * be over the size limit unmeasured): parseManifestSources then answers its items. */
  private isList(body: BodyText): boolean {
    if (this.itemsOpen < 0 || this.itemsClose < 0) return false;
    // (the text without the items' elements: the List's own members, and "[]" for the items)
    if (this.itemsOpen + 2 + body.length - (this.itemsClose + 1) >= SPAN_WITHIN_LIMIT) return false;
    const rest = `${bodySlice(body, 0, this.itemsOpen)}[]${bodySlice(body, this.itemsClose + 1, body.length)}`;
    let root: unknown;
    try { root = JSON.parse(rest); } catch { return false; }
    const kind = (root as { kind?: unknown }).kind;
    return typeof kind === 'string' && kind.endsWith('List');
  }

  private off(): void { this.phase = OFF; this.objs.length = 0; this.spans.length = 0; this.keyCounts.length = 0; this.pending = 0; }

  /** The keys element `i` (in the order read) gives its objects in its text, a key given twice
   * counted twice. */
  keyCount(i: number): number { return this.keyCounts[i]; }

  /** Element `i`'s text (while the reader is on: its bytes are still here). */
  elementText(i: number): string {
    // (an element starts and ends with an ASCII byte: decoded alone as the whole text is)
    return this.buf.toString('utf8', this.spans[2 * i], this.spans[2 * i + 1]);
  }

  /** Whether buf[start, end) is "items" in quotes. */
  private isItemsKey(start: number, end: number): boolean {
    return end - start === ITEMS.length && this.buf.compare(ITEMS, 0, ITEMS.length, start, end) === 0;
  }

  /** Whether buf[start, end) holds a backslash. */
  private hasEscape(start: number, end: number): boolean {
    for (let k = start; k < end; k++) if (this.buf[k] === 92) return true;
    return false;
  }

  private scan(): void {
    const b = this.buf, n = this.len, base = this.base;
    let i = this.pos, depth = this.depth, inString = this.inString, phase = this.phase, colons = this.colons;
    while (i < n) {
      if (phase === IN || phase === ROOT) {
        if (inString) {
          // to the closing quote, in a loop of its own (most of a manifest's bytes are in
          // strings); a backslash skips the next byte, which may not be here yet (pos past len)
          while (i < n) {
            const d = b[i];
            if (d === 34) break;
            i += d === 92 ? 2 : 1;
          }
          if (i >= n) break;
          inString = false;
          i++;
          if (phase === ROOT && depth === 1) {
            // a top-level string with an escape may be "items" spelled otherwise ("ite\u006dms"),
            // which JSON.parse takes as the items when it comes last: the whole text decides
            if (this.hasEscape(this.stringStart, i)) { this.off(); return; }
            this.itemsKey = this.isItemsKey(this.stringStart, i);
          }
          continue;
        }
        const c = b[i++];
        if (phase === ROOT && depth === 1) {
          // a List's top level: find its "items": [ (once); its other members are skipped here
          // and parsed at the end (isList)
          if (isSpace(c)) continue;
          const itemsValue = this.itemsValue;
          this.itemsValue = c === 58 && this.itemsKey;
          this.itemsKey = false;
          if (itemsValue) {
            if (c !== 91 || this.itemsOpen >= 0) { this.off(); return; }
            this.itemsOpen = i - 1;
            phase = FIRST; depth = 2;
            continue;
          }
          if (c === 34) this.stringStart = i - 1;
        }
        if (c === 34) inString = true;
        else if (c === 58) colons++;
        else if (c === 123 || c === 91) {
          if (++depth > MAX_DEPTH) { this.off(); return; }
        } else if (c === 125 || c === 93) {
          --depth;
          if (phase === IN && depth === base) {
            if (!this.element(this.elemStart, i, colons)) return;
            phase = AFTER;
          } else if (phase === ROOT && depth === 0) phase = DONE;
        }
        continue;
      }
      const c = b[i++];
      if (isSpace(c)) continue;
      if (phase === BEFORE) {
        if (c === 91) { phase = FIRST; depth = 1; }
        else if (c === 123) { phase = ROOT; depth = 1; this.base = 2; this.colons = colons; return this.resume(i, depth, inString, phase); }
        else { this.off(); return; }
      } else if (phase === FIRST || phase === NEXT) {
        if (c === 123) { phase = IN; depth = base + 1; this.elemStart = i - 1; this.elemColons = colons; }
        else if (c === 93 && phase === FIRST) phase = this.closeArray(i);
        else { this.off(); return; }
      } else if (phase === AFTER) {
        if (c === 44) phase = NEXT;
        else if (c === 93) phase = this.closeArray(i);
        else { this.off(); return; }
      } else { this.off(); return; } // DONE: text after the root
      if (phase === ROOT) depth = 1;
    }
    this.pos = i; this.depth = depth; this.inString = inString; this.phase = phase; this.colons = colons;
    if (this.pending) this.parsePending();
  }

  /** Continues the scan from i in that state (after `base` changed). */
  private resume(i: number, depth: number, inString: boolean, phase: number): void {
    this.pos = i; this.depth = depth; this.inString = inString; this.phase = phase;
    this.scan();
  }

  /** The phase after the objects' array closed (its ']' at i - 1): the root's end, or back in the
   * List's top level. */
  private closeArray(i: number): number {
    if (this.base === 1) return DONE;
    this.itemsClose = i - 1;
    return ROOT;
  }

  /** Takes the element at [start, end) (parsed with the chunk's others: parsePending); false (and
   * off) when it is too large to be taken as within the object size limit unmeasured. */
  private element(start: number, end: number, colons: number): boolean {
    if (end - start >= SPAN_WITHIN_LIMIT) { this.off(); return false; } // its size is measured on the parsed text
    this.spans.push(start, end);
    this.keyCounts.push(colons - this.elemColons);
    this.pending++;
    return true;
  }

  /** Parses the elements that closed in this chunk, in one JSON.parse: the text from the first's
   * start to the last's end, in brackets, is an array of exactly them (the separators between
   * them were scanned); one decode and one parse per chunk instead of per object. Off when it
   * does not parse, an element is a List, or onObject throws. */
  private parsePending(): void {
    const k = this.pending, sp = this.spans;
    this.pending = 0;
    const first = sp[sp.length - 2 * k], last = sp[sp.length - 1];
    let arr: unknown;
    // (decoded alone as the whole text is: an element starts and ends with an ASCII byte)
    try { arr = JSON.parse(`[${this.buf.toString('utf8', first, last)}]`); } catch { this.off(); return; }
    if (!Array.isArray(arr) || arr.length !== k) { this.off(); return; }
    for (let i = 0; i < k; i++) {
      const o = arr[i] as { kind?: unknown; items?: unknown };
      if (typeof o.kind === 'string' && o.kind.endsWith('List') && Array.isArray(o.items)) { this.off(); return; }
      this.objs.push(o);
      // (it runs in the request's data listener, where a throw would be uncaught: the whole text's
      // path meets the same error in the handler, which answers it)
      if (this.onObject) try { this.onObject(o, this.objs); } catch { this.off(); return; }
    }
  }
}
