// Text → raw objects: JSON (one object, an array, or a List) or YAML (multi-document, Lists).
// Syntax errors carry the document index and position so a 200-object file points at the line.
import { parseAllDocuments } from 'yaml';
import { fieldError, ValidationError, type FieldError } from './types.js';

function isObject(x: unknown): x is Record<string, unknown> { return typeof x === 'object' && x !== null && !Array.isArray(x); }

/** Flattens `kind: List` / `*List` objects and arrays into their items, dropping empty documents. */
export function flattenObjects(doc: unknown, out: unknown[] = []): unknown[] {
  if (doc === null || doc === undefined) return out;
  if (Array.isArray(doc)) { for (const d of doc) flattenObjects(d, out); return out; }
  if (isObject(doc) && typeof doc.kind === 'string' && doc.kind.endsWith('List') && Array.isArray(doc.items)) {
    for (const d of doc.items) flattenObjects(d, out);
    return out;
  }
  out.push(doc);
  return out;
}

/** Parses a manifest body. `source` names it in errors (a file name, or "request body"). */
export function parseManifests(text: string, source = 'request body'): unknown[] {
  const errors: FieldError[] = [];
  const trimmed = text.trimStart();
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    try { return flattenObjects(JSON.parse(text)); } catch (e) {
      // fall through to YAML (a superset of JSON) only for its better position reporting
      void e;
    }
  }
  const docs = parseAllDocuments(text, { prettyErrors: true, uniqueKeys: false });
  const list = Array.isArray(docs) ? docs : [docs];
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
  return out;
}
