// A model object's raw form kept as its JSON text instead of the object JSON.parse made of it.
//
// A full sync's 20k parsed objects would otherwise all live as long as the model: each is made
// young by JSON.parse, so every scavenge while the body arrives copies it and the next promotes
// it. An object that validation took as it was (nothing pruned) is kept as its place in the
// request's text — the text held once, outside the JS heap when it is the body's ASCII bytes —
// and `raw` parses that place when something reads it (GET, the store's undo, the watcher's
// comparison). JSON.parse of an element's text gives the element's value wherever it stands.
import type { BodyText } from '../util/body-text.js';
import { bodySlice } from '../util/body-text.js';
import { jsonEqual } from '../util/json-equal.js';

/** One request body's text, shared by the model objects kept as places in it. `live`: the
 * characters of those places still in the model (release() counts them down), which tells when
 * most of the text is held for nothing (compact()). */
export class KeptText {
  /** Set once the body is complete (its places are known while it arrives). */
  text: BodyText = '';
  live = 0;
}

/** Where a model object's JSON text is: kept.text[start, end). */
export class KeptSpan {
  constructor(public kept: KeptText, public start: number, public end: number) {}
  /** The object, parsed anew on every call (nothing of it is kept). */
  parse(): Record<string, unknown> { return JSON.parse(bodySlice(this.kept.text, this.start, this.end)) as Record<string, unknown>; }
  text(): string { return bodySlice(this.kept.text, this.start, this.end); }
}

/** What a Service's or an EndpointSlice's model object keeps of its raw form: the object, or
 * where its text is. */
export type RawSource = Record<string, unknown> | KeptSpan;

interface HasSource { src?: RawSource; raw?: unknown }

/** The prototype of the model's Services and EndpointSlices: `raw` is their `src`, parsed when it
 * is a place in a text. (Objects made elsewhere with `raw` of their own shadow it.) */
export const RAW_FROM_SOURCE: object = Object.freeze(Object.create(Object.prototype, {
  raw: {
    get(this: HasSource) { const s = this.src; return s instanceof KeptSpan ? s.parse() : s; },
    enumerable: false,
    configurable: false,
  },
}));

/** The place `o`'s raw form is kept at, or null when it keeps the object. */
export function keptSpan(o: object): KeptSpan | null {
  const s = (o as HasSource).src;
  return s instanceof KeptSpan ? s : null;
}

/** Whether two model objects' raw forms are the same JSON value (key order aside): equal texts
 * are (a parse of one text is one value); other texts are compared as parsed. */
export function sameRaw(a: { raw: unknown }, b: { raw: unknown }): boolean {
  const x = keptSpan(a), y = keptSpan(b);
  if (x && y && spanEqual(x, y)) return true;
  return jsonEqual(a.raw, b.raw);
}

function spanEqual(x: KeptSpan, y: KeptSpan): boolean {
  const n = x.end - x.start;
  if (n !== y.end - y.start) return false;
  const s = x.kept.text, t = y.kept.text;
  if (typeof s !== 'string' && typeof t !== 'string') return s.compare(t, y.start, y.end, x.start, x.end) === 0;
  return bodySlice(s, x.start, x.end) === bodySlice(t, y.start, y.end);
}

/** Counts `o`'s text out of its body's (o left the model). */
export function release(o: object): void {
  const s = keptSpan(o);
  if (s) s.kept.live -= s.end - s.start;
}

/** Texts of at least this many characters are compacted once less than half of them is live. */
const COMPACT_MIN = 1 << 16;

/** Whether `s`'s text holds more for nothing than for the model. */
export function wasteful(s: KeptSpan): boolean {
  const k = s.kept;
  return k.text.length >= COMPACT_MIN && 2 * k.live < k.text.length;
}

/** Moves `spans` (every live place in one or more wasteful texts) into one text of their own,
 * that many characters long: the old texts are then held by no model object. */
export function compact(spans: KeptSpan[]): void {
  if (!spans.length) return;
  const next = new KeptText();
  const bytes = spans.every((s) => typeof s.kept.text !== 'string');
  const parts: Array<string | Buffer> = [];
  let at = 0;
  for (const s of spans) {
    const t = s.kept.text;
    parts.push(bytes ? (t as Buffer).subarray(s.start, s.end) : bodySlice(t, s.start, s.end));
    const n = s.end - s.start;
    s.kept = next; s.start = at; s.end = at + n;
    at += n;
  }
  next.text = bytes ? Buffer.concat(parts as Buffer[], at) : (parts as string[]).join('');
  next.live = at;
}
