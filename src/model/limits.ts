// Bounds on client data, checked before anything walks it recursively: a body of millions of
// nested arrays (8 MB of "[") ran the daemon out of heap while the YAML parser built it, and an
// object 5,000 levels deep overflowed the stack of the code that compared and stored it.
//
// Nesting depth is checked on the TEXT, before any parser runs (one pass over the characters, no
// allocation): JSON's brackets exactly, YAML's flow brackets and block indentation as an upper
// bound of the parser's recursion. After parsing, one iterative walk per object checks the exact
// depth and the object's size (as JSON), so nothing later (validation, comparison, the store)
// sees an object deeper than MAX_DEPTH or larger than MAX_OBJECT_BYTES.
import { fieldError, ValidationError, type FieldError } from './types.js';

/** Levels of nesting in a request body, the document's root included. A Service with
 * managedFields is ~12 deep inside a List; the objects wdp reads are at most 6. */
export const MAX_DEPTH = 64;
/** The size of one object as JSON: the Kubernetes API server's own limit (etcd's request size). */
export const MAX_OBJECT_BYTES = 1536 * 1024;
/** Objects in one request body. A full sync of 10k Services x 10 endpoints is 20k objects; a body
 * of a million empty objects ({} is 3 bytes) held ~1 GB while each got its validation errors. */
export const MAX_OBJECTS = 100_000;
/** A YAML body the API parses (src/api): the YAML parser takes ~1-3 µs a byte on the API's one
 * thread (a 16 MiB body held every request, healthz included, for 24 s on a loaded node: long
 * enough for a liveness probe to restart the daemon), JSON ~0.01. wdp's CLI and kubectl send
 * JSON; a larger YAML body is refused (413) before it is parsed. */
export const MAX_YAML_BODY_BYTES = 2 << 20;

/** YAML: columns of indentation (and block-sequence "- " indicators) before a line's content. A
 * block level needs at least one column, so this bounds the parser's block recursion. */
const MAX_YAML_INDENT = 4 * MAX_DEPTH;

/** Why a body is refused before it is parsed; `status` is the HTTP code. */
export class BodyLimitError extends ValidationError {
  constructor(readonly status: 400 | 413, error: FieldError) { super([error]); this.name = 'BodyLimitError'; }
}

/** Why a YAML text is too long to parse (more than `max` characters), or null. */
export function yamlTooLong(text: string, source: string, max: number | undefined): string | null {
  return max !== undefined && text.length > max ? `${source}: ${text.length} characters of YAML, more than ${max}: send it as JSON (wdp apply does), or in several requests` : null;
}

/** A YAML text longer than `max` characters, refused before the YAML parser runs (413). */
export function checkYamlSize(text: string, source: string, max: number | undefined): void {
  const why = yamlTooLong(text, source, max);
  if (why) throw new BodyLimitError(413, { kind: '<document>', name: source, field: '', reason: 'FieldValueTooLong', message: why });
}

/** A body of more than MAX_OBJECTS objects (counted after parsing: the count, not their sizes). */
export function tooManyObjects(count: number, source: string): BodyLimitError {
  return new BodyLimitError(413, fieldError('<document>', undefined, source, '', 'FieldValueTooLong',
    `${source}: ${count} objects, more than ${MAX_OBJECTS} in one request: send them in several`));
}

function tooDeep(source: string, where: string): BodyLimitError {
  return new BodyLimitError(400, fieldError('<document>', undefined, source, '', 'ParseError',
    `${source}: nested deeper than ${MAX_DEPTH} levels (${where}): refused before parsing`));
}

/** An object whose JSON text spans at most this many characters is within MAX_OBJECT_BYTES as
 * measure() counts it: each of its counts is at most 5x the characters of the token it counts (a
 * number, at least one character, counts 5; a string its length + 2, at most its text's; an
 * array or object at most its brackets, commas, colons and quoted keys). */
export const SPAN_WITHIN_LIMIT = Math.floor(MAX_OBJECT_BYTES / 5);

// the JSON scan's stack: where each open object started (-1: an array), by depth
const openedAt = new Int32Array(MAX_DEPTH + 2);

/** JSON text: bracket depth outside strings. Throws BodyLimitError beyond MAX_DEPTH. Strings
 * (most of a manifest's characters) are skipped with indexOf, a native scan. Returns whether an
 * object below the root ('{' at depth 2 or more) spans more than SPAN_WITHIN_LIMIT characters:
 * when none does, only the root itself can be over the object size limit (parseManifests).
 * `elementSpans`, when given, receives the first and last character index of each object that
 * is an element of a root array (the text the store keeps for it: src/model/load.ts). */
export function checkJsonDepth(text: string, source: string, elementSpans?: number[]): boolean {
  let depth = 0, bigInner = false;
  for (let i = 0, n = text.length; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 34) {
      // to the closing quote: one not preceded by an odd number of backslashes
      for (;;) {
        const j = text.indexOf('"', i + 1);
        if (j < 0) return bigInner; // unterminated: JSON.parse reports it
        let k = j - 1;
        while (text.charCodeAt(k) === 92) k--;
        i = j;
        if ((j - 1 - k) % 2 === 0) break;
      }
    } else if (c === 91 || c === 123) {
      if (++depth > MAX_DEPTH) throw tooDeep(source, `at character ${i}`);
      openedAt[depth] = c === 123 ? i : -1;
    } else if (c === 93 || c === 125) {
      if (depth >= 2 && openedAt[depth] >= 0) {
        if (i - openedAt[depth] >= SPAN_WITHIN_LIMIT) bigInner = true;
        if (depth === 2 && elementSpans && openedAt[1] === -1) elementSpans.push(openedAt[2], i);
      }
      depth--;
    }
  }
  return bigInner;
}

/** YAML text: flow-bracket depth (outside quotes and comments) plus each line's leading indentation
 * and "- "/"? "/": " indicators, as an upper bound of the nesting the parser will build. */
export function checkYamlDepth(text: string, source: string): void {
  let flow = 0, line = 1;
  let i = 0;
  const n = text.length;
  while (i < n) {
    // leading run of the line: spaces and block indicators, each at least one level
    let lead = 0;
    for (;;) {
      const c = text.charCodeAt(i);
      if (c === 32 || c === 9) { lead++; i++; continue; }
      if ((c === 45 || c === 63 || c === 58) && (i + 1 >= n || text.charCodeAt(i + 1) === 32 || text.charCodeAt(i + 1) === 10)) { lead += 2; i++; continue; }
      break;
    }
    if (lead > MAX_YAML_INDENT) throw tooDeep(source, `line ${line}: ${lead} columns of indentation`);
    // the rest of the line: flow brackets outside quotes, up to a comment
    let quote = 0;
    for (; i < n; i++) {
      const c = text.charCodeAt(i);
      if (c === 10) { i++; line++; break; }
      if (quote) {
        if (quote === 34 && c === 92) i++;
        else if (c === quote) quote = 0;
      } else if ((c === 34 || c === 39) && tokenStart(text, i)) quote = c;
      else if (c === 35 && (i === 0 || text.charCodeAt(i - 1) === 32)) { while (i < n && text.charCodeAt(i) !== 10) i++; }
      else if (c === 91 || c === 123) { if (++flow > MAX_DEPTH) throw tooDeep(source, `line ${line}`); }
      else if ((c === 93 || c === 125) && flow > 0) flow--;
    }
  }
}

/** A quote opens a quoted scalar only where a token starts (YAML: after indentation, a space or a
 * flow indicator); inside a plain scalar ("it's") it is a character. Counting it as a quote there
 * would hide the brackets after it from the depth check. */
function tokenStart(text: string, i: number): boolean {
  if (i === 0) return true;
  const p = text.charCodeAt(i - 1);
  return p === 32 || p === 9 || p === 10 || p === 91 || p === 123 || p === 44 || p === 58;
}

function isContainer(v: unknown): v is object { return typeof v === 'object' && v !== null; }

/** Approximate size of `obj` as JSON (exact for ASCII strings without escapes) and its depth,
 * iteratively. Stops as soon as either limit is passed. */
function measure(obj: unknown): { bytes: number; depth: number; tooDeep: boolean } {
  let bytes = 0, maxDepth = 0;
  const stack: unknown[] = [obj];
  const depths: number[] = [1];
  while (stack.length) {
    const v = stack.pop();
    const d = depths.pop()!;
    if (typeof v === 'string') bytes += v.length + 2;
    else if (isContainer(v)) {
      if (d > maxDepth) { maxDepth = d; if (d > MAX_DEPTH) return { bytes, depth: d, tooDeep: true }; }
      if (Array.isArray(v)) {
        bytes += 1 + v.length;
        for (let i = 0; i < v.length; i++) { stack.push(v[i]); depths.push(d + 1); }
      } else {
        bytes += 1;
        for (const k in v) { bytes += k.length + 4; stack.push((v as Record<string, unknown>)[k]); depths.push(d + 1); }
      }
    } else bytes += 5; // number, boolean, null: a typical width
    if (bytes > MAX_OBJECT_BYTES) return { bytes, depth: maxDepth, tooDeep: false };
  }
  return { bytes, depth: maxDepth, tooDeep: false };
}

function label(o: unknown): { kind: string; namespace?: string; name?: string } {
  if (!isContainer(o) || Array.isArray(o)) return { kind: '<object>' };
  const r = o as Record<string, unknown>;
  const md = isContainer(r.metadata) ? r.metadata as Record<string, unknown> : {};
  return {
    kind: typeof r.kind === 'string' ? r.kind.slice(0, 64) : '<object>',
    namespace: typeof md.namespace === 'string' ? md.namespace.slice(0, 64) : undefined,
    name: typeof md.name === 'string' ? md.name.slice(0, 253) : undefined,
  };
}

/** Every object of a parsed body: depth (from the object; `baseDepth` levels above it in the
 * document) and size. Throws BodyLimitError (400 too deep, 413 too large) naming the object. */
export function checkObjects(objs: readonly unknown[]): void {
  for (const o of objs) {
    const m = measure(o);
    const l = label(o);
    if (m.tooDeep) throw new BodyLimitError(400, fieldError(l.kind, l.namespace, l.name, '', 'FieldValueInvalid', `Invalid value: the object is nested deeper than ${MAX_DEPTH} levels`));
    if (m.bytes > MAX_OBJECT_BYTES) throw new BodyLimitError(413, fieldError(l.kind, l.namespace, l.name, '', 'FieldValueTooLong', `Too long: the object is larger than ${MAX_OBJECT_BYTES} bytes`));
  }
}
