// Text → raw objects: JSON (one object, an array, or a List) or YAML (multi-document, Lists).
// Syntax errors carry the document index and position so a 200-object file points at the line.
import { isMap, isNode, isScalar, isSeq, LineCounter, parseAllDocuments, type Document, type YAMLError } from 'yaml';
import { fieldError, ValidationError, type FieldError } from './types.js';
import type { BodyText } from '../util/body-text.js';
import { duplicateKeys } from './json-keys.js';
import { BodyLimitError, checkJsonDepth, checkObjects, checkYamlDepth, checkYamlSize, yamlTooLong, MAX_DEPTH, MAX_OBJECT_BYTES, MAX_OBJECTS, tooManyObjects } from './limits.js';

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
 * depth and object size are bounded (src/model/limits.ts): BodyLimitError beyond them. A YAML
 * mapping with a key twice is refused with its line, as kubectl refuses it; so is a JSON object's
 * with `uniqueJsonKeys` (the CLI's files: kubectl reads JSON as YAML) — else JSON's last one wins,
 * as JSON.parse reads it (the API's JSON bodies: their fieldValidation reports it,
 * src/model/field-validation.ts). */
export function parseManifests(text: string, source = 'request body', { uniqueJsonKeys = false } = {}): unknown[] {
  if (uniqueJsonKeys && looksLikeJson(text)) refuseDuplicateJsonKey(text, (m) => new ValidationError([fieldError('<document>', undefined, source, '', 'ParseError', `${source}: cannot parse ${m}`)]));
  return parseManifestSources(text, source).objs;
}

/** Where a JSON text first gives an object a key it already has: "(line L, column C): key "k"
 * already set in this object", or null (src/model/json-keys.ts). */
export function duplicateJsonKey(text: string): string | null {
  const d = duplicateKeys(text, 1)[0];
  if (!d) return null;
  const before = text.slice(0, d.at);
  const line = before.split('\n').length;
  return `(line ${line}, column ${d.at - before.lastIndexOf('\n')}): key ${JSON.stringify(d.path[d.path.length - 1])} already set in this object`;
}

function refuseDuplicateJsonKey(text: string, error: (m: string) => Error): void {
  const dup = duplicateJsonKey(text);
  if (dup) throw error(dup);
}

/** The YAML parser itself, its stack running out told apart: it recurses once per line of a
 * document indented with tabs that another document follows (3000 list entries were enough),
 * which the depth check (indentation, brackets) does not bound. */
function parseYaml(text: string, lines: LineCounter): ReturnType<typeof parseAllDocuments> {
  try { return parseAllDocuments(text, { prettyErrors: true, uniqueKeys: false, lineCounter: lines, logLevel: 'error' }); } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    const tab = /^\t/m.exec(text);
    const line = tab ? text.slice(0, tab.index).split('\n').length : 0;
    throw new YamlStackError(tab ? `cannot parse (line ${line}, column 1): tabs are not allowed as indentation (the YAML parser ran out of stack on the lines after)` : 'cannot parse: nested deeper than the YAML parser can follow (it ran out of stack)');
  }
}

class YamlStackError extends Error {}

/** A YAML parser error as one line. */
function yamlErrorText(err: YAMLError): string {
  const pos = err.linePos?.[0];
  // the parser's pretty message ends its first line with " at line L, column C:" (a code frame
  // follows): said once, in front, and a tab says what to do instead
  let m = err.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
  if (err.code === 'TAB_AS_INDENT') m += '; indent with spaces';
  return `cannot parse${pos ? ` (line ${pos.line}, column ${pos.col})` : ''}: ${m}`;
}

/** Where a YAML document first gives a mapping a key it already has (as the object's key: 1 and
 * "1" are one), as kubectl refuses it: "cannot parse (line L, column C): key "k" already set in
 * this mapping", or a key that is a collection (`? [a, b]`: an object's key is a string), or
 * null. A set of keys per mapping, iteratively: the parser's own uniqueKeys compares every pair
 * (a mapping of 20k keys took 4 s). */
function yamlKeyProblem(doc: Document, lines: LineCounter): string | null {
  const stack: unknown[] = [doc.contents];
  while (stack.length) {
    const n = stack.pop();
    if (isMap(n)) {
      const seen = new Set<string>();
      for (const pair of n.items) {
        const k = pair.key;
        if (isScalar(k)) {
          const key = String(k.value);
          if (seen.has(key)) {
            const pos = k.range ? lines.linePos(k.range[0]) : null;
            return `cannot parse${pos ? ` (line ${pos.line}, column ${pos.col})` : ''}: key ${JSON.stringify(key)} already set in this mapping`;
          }
          seen.add(key);
        } else if (k) {
          const range = isNode(k) ? k.range : undefined;
          const pos = range ? lines.linePos(range[0]) : null;
          return `cannot parse${pos ? ` (line ${pos.line}, column ${pos.col})` : ''}: a mapping key must be a string, not a collection`;
        }
        stack.push(pair.value);
      }
    } else if (isSeq(n)) for (const item of n.items) stack.push(item);
  }
  return null;
}

/** Where each object of a body is in its text: objs[i] is text[spans[2i] .. spans[2i+1]]
 * (bodySlice: the text may be the body's ASCII bytes, src/util/body-text.ts). */
export interface ObjectTexts { text: BodyText; spans: number[] }

/** parseManifests, and when the body is a JSON array of objects, where each object's own text is
 * (null otherwise): what the store keeps for an object that validation did not change, instead
 * of serialising it again (~0.1 s and 13 MB of garbage at 20k objects). JSON.parse of that text
 * gives the same object: a JSON value parses the same wherever it is. `doc`: a JSON body's root
 * value (absent for YAML). */
export function parseManifestSources(text: string, source = 'request body', { maxYamlBytes }: { maxYamlBytes?: number } = {}): { objs: unknown[]; texts: ObjectTexts | null; doc?: unknown } {
  const r = parseText(text, source, maxYamlBytes);
  // JSON's depth was checked exactly on the text, and its objects' sizes bounded by their text
  // when that was enough (parseText): the walk over every object (~0.1 s at 20k) only otherwise
  if (!r.sized) checkObjects(r.objs);
  return r.doc === undefined ? { objs: r.objs, texts: r.texts } : { objs: r.objs, texts: r.texts, doc: r.doc };
}

function looksLikeJson(text: string): boolean {
  const t = text.trimStart();
  return t.startsWith('{') || t.startsWith('[');
}

/** The body's objects; `sized`: every one is known to be within MAX_OBJECT_BYTES (JSON only);
 * `texts`: as parseManifestSources; `doc`: the root value of a body read as JSON. */
function parseText(text: string, source: string, maxYamlBytes?: number): { objs: unknown[]; sized: boolean; texts: ObjectTexts | null; doc?: unknown } {
  const errors: FieldError[] = [];
  if (looksLikeJson(text)) {
    const spans: number[] = [];
    const bigInner = checkJsonDepth(text, source, spans);
    let doc: unknown;
    try { doc = JSON.parse(text); } catch (e) {
      doc = undefined;
      // too large to be read again as YAML: JSON's own message (its position included)
      if (maxYamlBytes !== undefined && text.length > maxYamlBytes) {
        throw new ValidationError([{ kind: '<document>', name: source, field: '', reason: 'ParseError', message: `${source}: cannot parse as JSON: ${(e as Error).message}` }]);
      }
    }
    // not JSON: on to YAML (a superset of JSON), for its position reporting
    if (doc !== undefined) {
      const objs = flattenObjects(doc);
      if (objs.length > MAX_OBJECTS) throw tooManyObjects(objs.length, source);
      // a small body's objects are as small (as before); in a larger one, an object below the
      // root spans little enough text to be within the limit, and the root is a list (an array
      // or a List: not an object of its own) rather than one of the objects
      const sized = text.length <= MAX_OBJECT_BYTES || (!bigInner && !objs.includes(doc));
      return { objs, sized, texts: elementTexts(text, doc, objs, spans), doc };
    }
  }
  checkYamlDepth(text, source);
  checkYamlSize(text, source, maxYamlBytes);
  let docs: ReturnType<typeof parseAllDocuments>;
  const lines = new LineCounter();
  try { docs = parseYaml(text, lines); } catch (e) {
    const m = e instanceof YamlStackError ? e.message : `cannot parse: ${(e as Error).message.split('\n')[0]}`;
    throw new ValidationError([{ kind: '<document>', name: source, field: '', reason: 'ParseError', message: `${source}: ${m}` }]);
  }
  const list = Array.isArray(docs) ? docs : [docs];
  if (list.length > MAX_OBJECTS) throw tooManyObjects(list.length, source);
  const out: unknown[] = [];
  list.forEach((d, i) => {
    for (const err of d.errors) errors.push(fieldError('<document>', undefined, `${source}#${i + 1}`, '', 'ParseError', yamlErrorText(err)));
    if (d.errors.length) return;
    const dup = yamlKeyProblem(d, lines);
    if (dup) { errors.push(fieldError('<document>', undefined, `${source}#${i + 1}`, '', 'ParseError', dup)); return; }
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
 * the daemon out of heap). Several documents are refused. `uniqueKeys`: a mapping (a JSON object)
 * with a key twice is an error, its line named. Throws DocumentError, its message starting with
 * `source`. */
export function parseSingleDocument(text: string, source: string, { uniqueKeys = true, maxYamlBytes }: { uniqueKeys?: boolean; maxYamlBytes?: number } = {}): unknown {
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
    try { v = JSON.parse(text); } catch (e) {
      v = undefined;
      // too large to be read again as YAML: JSON's own message (its position included)
      if (maxYamlBytes !== undefined && text.length > maxYamlBytes) throw new DocumentError(`${source}: cannot parse as JSON: ${(e as Error).message}`, 400);
    }
    if (v !== undefined) {
      if (uniqueKeys) refuseDuplicateJsonKey(text, (m) => new DocumentError(`${source}: cannot parse ${m}`, 400));
      return sized(v);
    }
    // not JSON: on to YAML (a superset of JSON), for its position reporting
  }
  limits(() => checkYamlDepth(text, source));
  const tooLong = yamlTooLong(text, source, maxYamlBytes);
  if (tooLong) throw new DocumentError(tooLong, 413);
  const lines = new LineCounter();
  let docs: ReturnType<typeof parseAllDocuments>;
  try { docs = parseYaml(text, lines); } catch (e) {
    if (e instanceof YamlStackError) throw new DocumentError(`${source}: ${e.message}`, 400);
    throw e;
  }
  const list = Array.isArray(docs) ? docs : [docs];
  if (list.length > 1) throw new DocumentError(`${source}: ${list.length} YAML documents: expected one`, 400);
  if (!list.length) return null;
  const d = list[0];
  const err = d.errors[0];
  if (err) throw new DocumentError(`${source}: ${yamlErrorText(err)}`, 400);
  const dup = uniqueKeys ? yamlKeyProblem(d, lines) : null;
  if (dup) throw new DocumentError(`${source}: ${dup}`, 400);
  let v: unknown;
  try { v = d.toJS({ maxAliasCount: 100 }); } catch (e) { throw new DocumentError(`${source}: cannot parse: ${(e as Error).message.split('\n')[0]}`, 400); }
  return sized(v);
}
