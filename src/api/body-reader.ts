// Request bodies read by the API itself instead of fastify's string reader, with the same limits
// and errors (fastify's rawBody: 413 beyond the limit, announced or received; 400 when the bytes
// do not match Content-Length or the stream fails), so that an apply's JSON objects are parsed
// while the body is still arriving (src/model/json-array-reader.ts). The handler's `req.body` is
// the text, as before — or, for an apply body parsed on the way, its objects (earlyObjects).
import type { IncomingMessage } from 'node:http';
import { errorCodes, type FastifyRequest } from 'fastify';
import { JsonArrayReader } from '../model/json-array-reader.js';
import type { ObjectTexts } from '../model/load.js';
import { fastPathKeys, type Validated } from '../model/schema.js';
import { validateApiObject } from '../model/object-meta.js';
import { elementFieldProblems, type FieldProblems } from '../model/field-validation.js';
import { MAX_OBJECTS } from '../model/limits.js';

/** An apply body's objects, parsed and validated (validated[i] is objs[i]'s verdict, the API's:
 * validateApiObject) as it arrived; `texts` as parseManifestSources answers them (over the body's
 * bytes when ASCII); `fields`: the objects' unknown and duplicate fields, when asked for. */
export class EarlyObjects {
  constructor(readonly objs: unknown[], readonly texts: ObjectTexts | null, readonly validated: Validated[], readonly fields: FieldProblems[] | null) {}
}

/** The objects parsed from `req`'s body while it arrived (its body is then not a text), else null
 * (the body is its text: parse it). */
export function earlyObjects(req: FastifyRequest): EarlyObjects | null {
  return req.body instanceof EarlyObjects ? req.body : null;
}

/** A fastify content-type parser (the payload form): reads the body within `limit` bytes and
 * answers its text, or its EarlyObjects. `parseEarly(req)`: whether to parse and validate a JSON
 * array's objects on the way (null: no), and to check their fields (`fields`). */
export function bodyParser(limit: number, parseEarly: (req: FastifyRequest) => { fields: boolean } | null) {
  return (req: FastifyRequest, payload: IncomingMessage, done: (err: Error | null, body?: string | EarlyObjects) => void): void => {
    const announced = Number(req.headers['content-length']);
    if (announced > limit) { done(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE()); return; }
    const validated: Validated[] = [];
    const early = parseEarly(req);
    const fields: FieldProblems[] | null = early?.fields ? [] : null;
    // past MAX_OBJECTS the reader steps aside (a throw turns it off) and drops what it validated:
    // the whole text's parse then refuses the body with its count
    const reader: JsonArrayReader = new JsonArrayReader(Number.isFinite(announced) ? announced : 0, !!early, (o, objs) => {
      if (validated.length >= MAX_OBJECTS) { validated.length = 0; throw new Error('too many objects'); }
      const v = validateApiObject(o);
      validated.push(v);
      if (!fields) return;
      const i = objs.length - 1;
      // an object the fast path kept as it is has its keys counted as they were checked: with as
      // many as its text gave, it has no field problem (most of a full sync: nothing more is made)
      const clean = v.ok && v.obj.raw === o;
      if (clean && fastPathKeys() === reader.keyCount(i)) return;
      const p = elementFieldProblems(o, clean ? fastPathKeys() : null, reader.keyCount(i), () => reader.elementText(i));
      if (p) fields.push(p);
    });
    const stop = (): void => {
      payload.removeListener('data', onData);
      payload.removeListener('end', onEnd);
      payload.removeListener('error', onEnd);
    };
    const onData = (chunk: Buffer | string): void => {
      const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      if (reader.length + b.length > limit) { stop(); done(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE()); return; }
      reader.push(b);
    };
    function onEnd(err?: Error & { statusCode?: number }): void {
      stop();
      if (err) {
        if (!(typeof err.statusCode === 'number' && err.statusCode >= 400)) err.statusCode = 400;
        done(err);
        return;
      }
      if (!Number.isNaN(announced) && reader.length !== announced) { done(new errorCodes.FST_ERR_CTP_INVALID_CONTENT_LENGTH()); return; }
      const r = reader.finish();
      done(null, r.parsed ? new EarlyObjects(r.parsed.objs, r.parsed.texts, validated, fields) : r.text);
    }
    payload.on('data', onData);
    payload.on('end', onEnd);
    payload.on('error', onEnd);
    payload.resume();
  };
}
