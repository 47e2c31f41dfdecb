// Text → raw objects: JSON (one object, an array, or a List) or YAML (multi-document, Lists).
// Syntax errors carry the document index and position so a 200-object file points at the line.
import { parseAllDocuments } from 'yaml';
import { fieldError, ValidationError, type FieldError } from './types.js';
import type { BodyText } from '../util/body-text.js';
import { BodyLimitError, checkJsonDepth, checkObjects, checkYamlDepth, MAX_DEPTH, MAX_OBJECT_BYTES, MAX_OBJECTS, tooManyObjects } from './limits.js';

function isObject(x: unknown): x is Record<string, unknown> { return typeof x === 'object' && x !== null && !Array.isArray(x); }

/** Flattens `kind: List` / `*List` objects and arrays into their items, dropping empty documents.
 * Iterative (an explicit stack, in document order): the input is client data of any depth. */
export function flattenObjects(doc: unknown, out: unknown[] = []): unknown[] {
  const stack: unknown[] = [doc];
  while (stack.length) {
    const d = stack.pop();
    if (d === null || d === undefined) continue;
    const items = Array.isArray(d) ? d : isObject(d) && typeof d.kind === 'string' && d.kind.endsWith('List') && Array.isArray(d.items) ? d.items as unknown[] : null;
    if (items) { for (let i = items.length - 1; i >= 0; i--) stack.push(items[i]); continue; }
    out.push(d);
  }
  return out;
}

/** Parses a manifest body. `source` names it in errors (a file name, or "request body"). Nesting
 * depth and object size are bounded (src/model/limits.ts): BodyLimitError beyond them. */
export function parseManifests(text: string, source = 'request body'): unknown[] {
  return parseManifestSources(text, source).objs;
}

/** Where each object of a body is in its text: objs[i] is text[spans[2i] .. spans[2i+1]]
 * (bodySlice: the text may be the body's ASCII bytes, src/util/body-text.ts). */
export interface ObjectTexts { text: BodyText; spans: number[] }

/** parseManifests, and when the body is a JSON array of objects, where each object's own text is
 * (null otherwise): what the store keeps for an object that validation did not change, instead
 * of serialising it again (~0.1 s and 13 MB of garbage at 20k objects). JSON.parse of that text
 * gives the same object: a JSON value parses the same wherever it is. */
export function parseManifestSources(text: string, source = 'request body'): { objs: unknown[]; texts: ObjectTexts | null } {
  const r = parseText(text, source);
  // JSON's depth was checked exactly on the text, and its objects' sizes bounded by their text
  // when that was enough (parseText): the walk over every object (~0.1 s at 20k) only otherwise
  if (!r.sized) checkObjects(r.objs);
  return { objs: r.objs, texts: r.texts };
}

function looksLikeJson(text: string): boolean {
  const t = text.trimStart();
  return t.startsWith('{') || t.startsWith('[');
}

/** The body's objects; `sized`: every one is known to be within MAX_OBJECT_BYTES (JSON only);
 * `texts`: as parseManifestSources. */
function parseText(text: string, source: string): { objs: unknown[]; sized: boolean; texts: ObjectTexts | null } {
  const errors: FieldError[] = [];
  if (looksLikeJson(text)) {
    const spans: number[] = [];
    const bigInner = checkJsonDepth(text, source, spans);
    let doc: unknown;
    try { doc = JSON.parse(text); } catch { doc = undefined; }
    // not JSON: on to YAML (a superset of JSON), for its position reporting
    if (doc !== undefined) {
      const objs = flattenObjects(doc);
      if (objs.length > MAX_OBJECTS) throw tooManyObjects(objs.length, source);
      // a small body's objects are as small (as before); in a larger one, an object below the
      // root spans little enough text to be within the limit, and the root is a list (an array
      // or a List: not an object of its own) rather than one of the objects
      const sized = text.length <= MAX_OBJECT_BYTES || (!bigInner && !objs.includes(doc));
      return { objs, sized, texts: elementTexts(text, doc, objs, spans) };
    }
  }
  checkYamlDepth(text, source);
  let docs: ReturnType<typeof parseAllDocuments>;
  try { docs = parseAllDocuments(text, { prettyErrors: true, uniqueKeys: false }); } catch (e) {
    throw new ValidationError([fieldError('<document>', undefined, source, '', 'ParseError', `${source}: cannot parse: ${(e as Error).message.split('\n')[0]}`)]);
  }
  const list = Array.isArray(docs) ? docs : [docs];
  if (list.length > MAX_OBJECTS) throw tooManyObjects(list.length, source);
  const out: unknown[] = [];
  list.forEach((d, i) => {
    for (const err of d.errors) {
      const pos = err.linePos?.[0];
      errors.push(fieldError('<document>', undefined, `${source}#${i + 1}`, '', 'ParseError',
        `cannot parse${pos ? ` (line ${pos.line}, column ${pos.col})` : ''}: ${err.message.split('\n')[0]}`));
    }
    if (d.errors.length) return;
    try { flattenObjects(d.toJS({ maxAliasCount: 100 }), out); } catch (e) {
      // unresolved aliases, alias bombs: structural YAML problems found only when building values
      errors.push(fieldError('<document>', undefined, `${source}#${i + 1}`, '', 'ParseError', `cannot parse: ${(e as Error).message.split('\n')[0]}`));
    }
  });
  if (errors.length) throw new ValidationError(errors.map((e) => ({ ...e, message: `${source}: document ${e.name?.split('#')[1]}: ${e.message.replace(/^[^:]*: /, '')}` })));
  if (out.length > MAX_OBJECTS) throw tooManyObjects(out.length, source);
  return { objs: out, sized: false, texts: null };
}

/** Each object's text when the body is an array whose every element is one of the objects (no
 * List, array or null among them, which flattening expands or drops), else null. `spans` holds
 * each element object's first and last character (checkJsonDepth): made [start, end). */
function elementTexts(text: string, doc: unknown, objs: unknown[], spans: number[]): ObjectTexts | null {
  if (!Array.isArray(doc) || doc.length !== objs.length || spans.length !== 2 * objs.length) return null;
  for (let i = 0; i < objs.length; i++) {
    if (objs[i] !== doc[i]) return null;
    spans[2 * i + 1]++;
  }
  return { text, spans };
}

/** Why a one-document text (parseSingleDocument) is refused: `status` 400 (syntax, depth) or 413 (size). */
export class DocumentError extends Error {
  constructor(message: string, readonly status: 400 | 413) { super(message); this.name = 'DocumentError'; }
}

/** One JSON or YAML document of client text (a request body that is one object, a file read as
 * one): bounded as manifests are — nesting depth checked on the text before any parser runs,
 * aliases limited, the value's size after — so a body of millions of brackets is refused at once
 * instead of being built (the YAML parser recursed for seconds, then overflowed its stack or ran
 * the daemon out of heap). Several documents are refused. `uniqueKeys`: a YAML mapping with a key
 * twice is an error (JSON text: the last one wins, as JSON.parse reads it). Throws DocumentError,
 * its message starting with `source`. */
export function parseSingleDocument(text: string, source: string, { uniqueKeys = true } = {}): unknown {
  const limits = (check: () => void): void => {
    try { check(); } catch (e) {
      if (!(e instanceof BodyLimitError)) throw e;
      throw new DocumentError(`${source}: ${e.status === 413 ? `larger than ${MAX_OBJECT_BYTES} bytes` : `nested deeper than ${MAX_DEPTH} levels`}: refused`, e.status);
    }
  };
  const sized = (v: unknown): unknown => { if (v !== null && typeof v === 'object') limits(() => checkObjects([v])); return v; };
  if (looksLikeJson(text)) {
    limits(() => checkJsonDepth(text, source));
    let v: unknown;
    try { v = JSON.parse(text); } catch { v = undefined; }
    if (v !== undefined) return sized(v);
    // not JSON: on to YAML (a superset of JSON), for its position reporting
  }
  limits(() => checkYamlDepth(text, source));
  const docs = parseAllDocuments(text, { prettyErrors: true, uniqueKeys });
  const list = Array.isArray(docs) ? docs : [docs];
  if (list.length > 1) throw new DocumentError(`${source}: ${list.length} YAML documents: expected one`, 400);
  if (!list.length) return null;
  const d = list[0];
  const err = d.errors[0];
  if (err) {
    const pos = err.linePos?.[0];
    throw new DocumentError(`${source}: cannot parse${pos ? ` (line ${pos.line}, column ${pos.col})` : ''}: ${err.message.split('\n')[0]}`, 400);
  }
  let v: unknown;
  try { v = d.toJS({ maxAliasCount: 100 }); } catch (e) { throw new DocumentError(`${source}: cannot parse: ${(e as Error).message.split('\n')[0]}`, 400); }
  return sized(v);
}
