// A request body parsed while it arrives. A full sync is one JSON array of 20k objects (13 MB);
// read whole and then parsed, the body's bytes are copied twice, scanned for depth and parsed on the
// main thread after the last byte came, while the main thread had mostly waited for the client
// during the upload (~0.15 s at 10k Services). Here each chunk is copied once into one buffer,
// scanned as it comes (depth, strings, the array's separators), and each element object is parsed
// with JSON.parse as soon as its closing brace arrived.
//
// Only the common shape takes this path: a JSON array (JSON whitespace around it) whose every
// element is an object that is not a List, every element within MAX_DEPTH and spanning fewer than
// SPAN_WITHIN_LIMIT bytes, the text all ASCII. Anything else — YAML, a List, a syntax error, an
// element too deep or too large, non-ASCII text — turns the reader off, and the caller parses the
// whole text as before (src/model/load.ts), so every error message is the one it always was. The
// result equals parseManifestSources' for the same text (a test compares them): the elements, and
// each element's span in the text.
import { isAscii } from 'node:buffer';
import { MAX_DEPTH, SPAN_WITHIN_LIMIT } from './limits.js';
import type { ObjectTexts } from './load.js';

// where the scan is, outside the elements
const BEFORE = 0;      // before the root '['
const FIRST = 1;       // after '[': an element or ']'
const NEXT = 2;        // after ',': an element
const AFTER = 3;       // after an element: ',' or ']'
const IN = 4;          // inside an element
const DONE = 5;        // after the root's ']'
const OFF = 6;         // not the common shape: the caller parses the whole text

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
  private readonly objs: unknown[] = [];
  private readonly spans: number[] = [];
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

  /** The body as text, and its objects when the reader parsed them all (null: parse the text). */
  finish(): { text: string; parsed: { objs: unknown[]; texts: ObjectTexts } | null } {
    const bytes = this.buf.subarray(0, this.len);
    // all ASCII (a vectorised check): decoded as one byte per character, a copy (utf8 validates);
    // the spans (byte offsets) are then the text's character offsets
    const ascii = isAscii(bytes);
    const text = bytes.toString(ascii ? 'latin1' : 'utf8');
    const whole = this.phase === DONE && (ascii || text.length === this.len);
    return { text, parsed: whole ? { objs: this.objs, texts: { text, spans: this.spans } } : null };
  }

  private off(): void { this.phase = OFF; this.objs.length = 0; this.spans.length = 0; this.pending = 0; }

  private scan(): void {
    const b = this.buf, n = this.len;
    let i = this.pos, depth = this.depth, inString = this.inString, phase = this.phase;
    while (i < n) {
      if (phase === IN) {
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
          continue;
        }
        const c = b[i++];
        if (c === 34) inString = true;
        else if (c === 123 || c === 91) {
          if (++depth > MAX_DEPTH) { this.off(); return; }
        } else if ((c === 125 || c === 93) && --depth === 1) {
          if (!this.element(this.elemStart, i)) return;
          phase = AFTER;
        }
        continue;
      }
      const c = b[i++];
      if (isSpace(c)) continue;
      if (phase === BEFORE) {
        if (c !== 91) { this.off(); return; }
        phase = FIRST; depth = 1;
      } else if (phase === FIRST || phase === NEXT) {
        if (c === 123) { phase = IN; depth = 2; this.elemStart = i - 1; }
        else if (c === 93 && phase === FIRST) phase = DONE;
        else { this.off(); return; }
      } else if (phase === AFTER) {
        if (c === 44) phase = NEXT;
        else if (c === 93) phase = DONE;
        else { this.off(); return; }
      } else { this.off(); return; } // DONE: text after the root
    }
    this.pos = i; this.depth = depth; this.inString = inString; this.phase = phase;
    if (this.pending) this.parsePending();
  }

  /** Takes the element at [start, end) (parsed with the chunk's others: parsePending); false (and
   * off) when it is too large to be taken as within the object size limit unmeasured. */
  private element(start: number, end: number): boolean {
    if (end - start >= SPAN_WITHIN_LIMIT) { this.off(); return false; } // its size is measured on the parsed text
    this.spans.push(start, end);
    this.pending++;
    return true;
  }

  /** Parses the elements that closed in this chunk, in one JSON.parse: the text from the first's
   * start to the last's end, in brackets, is an array of exactly them (the separators between
   * them were scanned); one decode and one parse per chunk instead of per object. Off when it
   * does not parse or an element is a List. */
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
      this.onObject?.(o, this.objs);
    }
  }
}
